"""Pluggable learning rules: BrainProp and the EBP baseline.

``rule_options_from_config(raw)`` validates the ``rule:`` section, ``needs_feedback(options)``
says which feedback weights the network needs, ``make_rule(options)`` builds the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neuroprop.rules.base import (
    LearningRule,
    RuleOptions,
    StepResult,
    needs_feedback,
    rule_options_from_config,
)
from neuroprop.rules.brainprop import BrainProp
from neuroprop.rules.ebp import EBP
from neuroprop.rules.selection import max_boltzmann

__all__ = [
    "EBP",
    "BrainProp",
    "RULES",
    "LearningRule",
    "RuleOptions",
    "StepResult",
    "make_rule",
    "max_boltzmann",
    "needs_feedback",
    "rule_options_from_config",
]


RULES: dict[str, Callable[[RuleOptions], LearningRule]] = {
    "brainprop": lambda options: BrainProp(options.epsilon, options.temperature),
    "ebp": lambda options: EBP(),
}


def make_rule(options: RuleOptions | str | dict[str, Any]) -> LearningRule:
    """The rule for validated options (or a raw ``rule:`` section, validated here)."""
    if not isinstance(options, RuleOptions):
        options = rule_options_from_config(options)
    return RULES[options.name](options)
