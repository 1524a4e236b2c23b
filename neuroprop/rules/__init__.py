"""Learning rules: BrainProp (local, no autograd) and the autograd baselines EBP and BPTT."""

from neuroprop.rules.base import LearningRule, RuleOptions, StepResult
from neuroprop.rules.brainprop import BrainProp, brainprop_feedback
from neuroprop.rules.ebp import Autograd
from neuroprop.rules.registry import (
    RULES,
    check_substrate,
    make_rule,
    needs_feedback,
    rule_options_from_config,
)
from neuroprop.rules.selection import max_boltzmann

__all__ = [
    "RULES",
    "Autograd",
    "BrainProp",
    "LearningRule",
    "RuleOptions",
    "StepResult",
    "brainprop_feedback",
    "check_substrate",
    "make_rule",
    "max_boltzmann",
    "needs_feedback",
    "rule_options_from_config",
]
