"""rule_options_from_config / make_rule / needs_feedback."""

from __future__ import annotations

import pytest

from neuroprop.errors import NeuropropError
from neuroprop.network import FeedbackOptions
from neuroprop.rules import (
    Autograd,
    BrainProp,
    RuleOptions,
    make_rule,
    needs_feedback,
    rule_options_from_config,
)


def test_brainprop_defaults_from_a_name() -> None:
    options = rule_options_from_config("brainprop")
    assert options == RuleOptions("brainprop", 0.02, 1.0, FeedbackOptions("tied", True))
    rule = make_rule(options)
    assert isinstance(rule, BrainProp) and rule.name == "brainprop"
    assert (rule.epsilon, rule.temperature) == (0.02, 1.0)
    assert needs_feedback(options) == FeedbackOptions("tied", True)


def test_brainprop_mapping_and_round_trip() -> None:
    raw = {"name": "brainprop", "epsilon": 0.1, "temperature": 2,
           "feedback": {"init": "random", "learn": False}}
    options = rule_options_from_config(raw)
    assert options.epsilon == 0.1 and options.temperature == 2.0
    assert needs_feedback(options) == FeedbackOptions("random", False)
    assert rule_options_from_config(options.to_dict()) == options
    rule = make_rule(raw)
    assert isinstance(rule, BrainProp) and rule.epsilon == 0.1


def test_brainprop_rewards() -> None:
    options = rule_options_from_config({"name": "brainprop", "reward": {"wrong": -1,
                                                                        "correct": 0}})
    assert options.reward == (-1.0, 0.0)
    assert rule_options_from_config(options.to_dict()) == options
    assert make_rule(options).reward == (-1.0, 0.0)
    assert rule_options_from_config("brainprop").reward == (0.0, 1.0)


def test_ebp_needs_no_feedback() -> None:
    options = rule_options_from_config({"name": "ebp"})
    assert options == rule_options_from_config("ebp")
    assert needs_feedback(options) is None
    assert isinstance(make_rule("ebp"), Autograd)
    assert rule_options_from_config(options.to_dict()) == options


@pytest.mark.parametrize(("raw", "expected"), [
    ("sgd", "rule.name: unknown rule 'sgd'; use one of brainprop, ebp, bptt"),
    (3, "rule: expected a rule name or a mapping with 'name', got 3"),
    ({"name": ["brainprop"]}, "rule.name: unknown rule ['brainprop']; use one of brainprop, "
     "ebp, bptt"),
    ({"name": "brainprop", "epsilon": 1.5}, "rule.epsilon: expected a number in [0, 1], got 1.5"),
    ({"name": "brainprop", "epsilon": "a"}, "rule.epsilon: expected a number in [0, 1], got 'a'"),
    ({"name": "brainprop", "temperature": 0},
     "rule.temperature: expected a positive number, got 0"),
    ({"name": "ebp", "epsilon": 0.1},
     "rule.epsilon: not an option of rule 'ebp'; allowed keys are name"),
    ({"name": "brainprop", "lr": 0.1},
     "rule.lr: not an option of rule 'brainprop'; allowed keys are name, epsilon, "
     "temperature, reward, feedback"),
    ({"name": "brainprop", "reward": 1},
     "rule.reward: expected a mapping like {correct: 1.0, wrong: 0.0}, got 1"),
    ({"name": "brainprop", "reward": {"right": 1}},
     "rule.reward.right: unknown key; valid keys are correct, wrong"),
    ({"name": "brainprop", "reward": {"correct": ".5"}},
     "rule.reward.correct: expected a number, got '.5'"),
    ({"name": "brainprop", "reward": {"correct": 0, "wrong": 0}},
     "rule.reward: correct (0) must exceed wrong (0); the rule learns to seek the larger "
     "reward"),
    ({"name": "brainprop", "feedback": {"init": "transposed"}},
     "rule.feedback.init: expected 'tied' or 'random', got 'transposed'"),
    ({"name": "brainprop", "feedback": {"learn": "yes"}},
     "rule.feedback.learn: expected true or false, got 'yes'"),
    ({"name": "brainprop", "feedback": {"mode": "x"}},
     "rule.feedback.mode: unknown key; allowed keys are init, learn"),
])
def test_errors(raw, expected: str) -> None:
    with pytest.raises(NeuropropError) as info:
        rule_options_from_config(raw)
    assert str(info.value) == expected
