"""What every learning rule provides, and the validated ``rule:`` section of a config.

A rule's ``step(net, x, y)`` runs the forward pass, overwrites ``.grad`` of every
trainable parameter and reports the batch's reward and loss; the trainer then calls
``optimizer.step()``. Rules draw randomness from the global torch RNG.

Config forms: ``rule: brainprop``, ``rule: ebp``, ``rule: bptt``, or
``rule: {name: brainprop, epsilon: 0.02, temperature: 1.0,
reward: {correct: 1.0, wrong: 0.0}, feedback: {init: tied, learn: true}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

from neuroprop.network import FeedbackOptions, Network


@dataclass(frozen=True)
class StepResult:
    """One batch: rewarded trials (1 per correct action, whatever the reward values), summed
    loss, number of samples."""

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
    """A validated rule choice. ``epsilon``, ``temperature``, ``feedback`` and ``reward`` are
    BrainProp's (exploration rate, softmax temperature, feedback weights, the rewards
    (wrong, correct) of a trial); the autograd rules use none of them."""

    name: str
    epsilon: float | None = None
    temperature: float | None = None
    feedback: FeedbackOptions | None = None
    reward: tuple[float, float] = (0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """The config form that ``rule_options_from_config`` parses back to these options."""
        if self.feedback is None:
            return {"name": self.name}
        wrong, correct = self.reward
        return {"name": self.name, "epsilon": self.epsilon, "temperature": self.temperature,
                "reward": {"correct": correct, "wrong": wrong},
                "feedback": self.feedback.to_dict()}
