"""What every learning rule provides, and the validated ``rule:`` section of a config.

A rule's ``step(net, x, y)`` runs the forward pass, overwrites ``.grad`` of every
trainable parameter and reports the batch's reward and loss; the trainer then calls
``optimizer.step()``. Rules draw randomness from the global torch RNG.

Config forms: ``rule: brainprop``, ``rule: ebp``, or
``rule: {name: brainprop, epsilon: 0.02, temperature: 1.0,
feedback: {init: tied, learn: true}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

from neuroprop.errors import NeuropropError
from neuroprop.network import FeedbackOptions, Network

RULE_NAMES = ("brainprop", "ebp")
RULE_KEYS: dict[str, tuple[str, ...]] = {
    "brainprop": ("name", "epsilon", "temperature", "feedback"),
    "ebp": ("name",),
}


@dataclass(frozen=True)
class StepResult:
    """One batch: summed reward (1 per correct action), summed loss, number of samples."""

    reward_sum: float
    loss_sum: float
    count: int


class LearningRule(Protocol):
    name: str

    def step(self, net: Network, x: Tensor, y: Tensor) -> StepResult:
        """Forward pass on inputs x (B, C, H, W) with labels y (B,), then overwrite
        ``.grad`` of every trainable parameter of ``net``."""
        ...


@dataclass(frozen=True)
class RuleOptions:
    """A validated rule choice. ``epsilon``, ``temperature`` and ``feedback`` are BrainProp's
    (exploration rate, softmax temperature, feedback weights); None for EBP."""

    name: str
    epsilon: float | None = None
    temperature: float | None = None
    feedback: FeedbackOptions | None = None

    def to_dict(self) -> dict[str, Any]:
        """The config form that ``rule_options_from_config`` parses back to these options."""
        if self.name != "brainprop":
            return {"name": self.name}
        assert self.feedback is not None
        return {"name": self.name, "epsilon": self.epsilon, "temperature": self.temperature,
                "feedback": self.feedback.to_dict()}


def rule_options_from_config(raw: Any) -> RuleOptions:
    """Validate ``rule:`` (a name, or a mapping with ``name`` and the rule's options)."""
    section = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(section, dict):
        raise NeuropropError(
            f"rule: expected a rule name or a mapping with 'name', got {raw!r}"
        )
    name = section.get("name")
    if name not in RULE_NAMES:
        raise NeuropropError(f"rule.name: unknown rule {name!r}; use one of "
                             f"{', '.join(RULE_NAMES)}")
    for key in section:
        if key not in RULE_KEYS[name]:
            raise NeuropropError(
                f"rule.{key}: not an option of rule {name!r}; allowed keys are "
                f"{', '.join(RULE_KEYS[name])}"
            )
    if name == "ebp":
        return RuleOptions(name="ebp")
    epsilon = section.get("epsilon", 0.02)
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not (
        0 <= epsilon <= 1
    ):
        raise NeuropropError(f"rule.epsilon: expected a number in [0, 1], got {epsilon!r}")
    temperature = section.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not (
        temperature > 0
    ):
        raise NeuropropError(
            f"rule.temperature: expected a positive number, got {temperature!r}"
        )
    return RuleOptions(name="brainprop", epsilon=float(epsilon), temperature=float(temperature),
                       feedback=_feedback_options(section.get("feedback", {})))


def needs_feedback(options: RuleOptions) -> FeedbackOptions | None:
    """The feedback weights the rule's network must have (None: none, e.g. EBP)."""
    return options.feedback


def _feedback_options(raw: Any) -> FeedbackOptions:
    if not isinstance(raw, dict):
        raise NeuropropError(
            f"rule.feedback: expected a mapping like {{init: tied, learn: true}}, got {raw!r}"
        )
    for key in raw:
        if key not in ("init", "learn"):
            raise NeuropropError(f"rule.feedback.{key}: unknown key; allowed keys are init, learn")
    init = raw.get("init", "tied")
    if init not in ("tied", "random"):
        raise NeuropropError(f"rule.feedback.init: expected 'tied' or 'random', got {init!r}")
    learn = raw.get("learn", True)
    if not isinstance(learn, bool):
        raise NeuropropError(f"rule.feedback.learn: expected true or false, got {learn!r}")
    return FeedbackOptions(init=init, learn=learn)
