"""The rules: one entry each (its options, the substrate it trains, how to build it).

``rule_options_from_config(raw)`` validates the ``rule:`` section, ``check_substrate``
refuses a rule on a net it cannot train, ``make_rule(options)`` builds the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuroprop.errors import NeuropropError
from neuroprop.network import FeedbackOptions
from neuroprop.rules.base import LearningRule, RuleOptions
from neuroprop.rules.brainprop import BrainProp
from neuroprop.rules.ebp import Autograd


@dataclass(frozen=True)
class RuleKind:
    """``options``: keys beside ``name``; ``substrates``: the nets it trains."""

    options: tuple[str, ...]
    substrates: tuple[str, ...]
    build: Callable[[RuleOptions], LearningRule]


RULES: dict[str, RuleKind] = {
    "brainprop": RuleKind(("epsilon", "temperature", "reward", "feedback"), ("rate", "spiking"),
                          lambda options: BrainProp(options.epsilon, options.temperature,
                                                    options.reward)),
    "ebp": RuleKind((), ("rate",), lambda options: Autograd("ebp")),
    "bptt": RuleKind((), ("spiking",), lambda options: Autograd("bptt")),
}
AUTOGRAD_FOR = {"rate": "ebp", "spiking": "bptt"}


def rule_options_from_config(raw: Any) -> RuleOptions:
    """Validate ``rule:`` (a name, or a mapping with ``name`` and the rule's options)."""
    section = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(section, dict):
        raise NeuropropError(
            f"rule: expected a rule name or a mapping with 'name', got {raw!r}"
        )
    name = section.get("name")
    if not isinstance(name, str) or name not in RULES:
        raise NeuropropError(f"rule.name: unknown rule {name!r}; use one of "
                             f"{', '.join(RULES)}")
    allowed = ("name", *RULES[name].options)
    for key in section:
        if key not in allowed:
            raise NeuropropError(
                f"rule.{key}: not an option of rule {name!r}; allowed keys are "
                f"{', '.join(allowed)}"
            )
    if name != "brainprop":
        return RuleOptions(name=name)
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
                       feedback=FeedbackOptions.parse(section.get("feedback", {}),
                                                      "rule.feedback"),
                       reward=_rewards(section.get("reward", {})))


def _rewards(raw: Any) -> tuple[float, float]:
    """Validate ``rule.reward`` ({correct, wrong}) into (wrong, correct)."""
    if not isinstance(raw, dict):
        raise NeuropropError(f"rule.reward: expected a mapping like {{correct: 1.0, wrong: 0.0}}, "
                             f"got {raw!r}")
    for key in raw:
        if key not in ("correct", "wrong"):
            raise NeuropropError(f"rule.reward.{key}: unknown key; valid keys are correct, wrong")
    values = {"correct": raw.get("correct", 1.0), "wrong": raw.get("wrong", 0.0)}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value)
        ):
            raise NeuropropError(f"rule.reward.{key}: expected a number, got {value!r}")
    if values["correct"] <= values["wrong"]:
        raise NeuropropError(
            f"rule.reward: correct ({values['correct']}) must exceed wrong ({values['wrong']}); "
            "the rule learns to seek the larger reward"
        )
    return float(values["wrong"]), float(values["correct"])


def check_substrate(options: RuleOptions, substrate: str) -> None:
    """Refuse a rule on a substrate it does not train, naming the one that does."""
    if substrate not in RULES[options.name].substrates:
        raise NeuropropError(
            f"rule: {options.name} does not train {substrate} nets; use "
            f"{AUTOGRAD_FOR[substrate]} (or brainprop) for them"
        )


def needs_feedback(options: RuleOptions) -> FeedbackOptions | None:
    """The feedback weights the rule's network must have (None: none, e.g. EBP)."""
    return options.feedback


def make_rule(options: RuleOptions | str | dict[str, Any]) -> LearningRule:
    """The rule for validated options (or a raw ``rule:`` section, validated here)."""
    if not isinstance(options, RuleOptions):
        options = rule_options_from_config(options)
    return RULES[options.name].build(options)
