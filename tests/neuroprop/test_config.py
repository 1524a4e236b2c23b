import pytest

from neuroprop.config import (
    DEFAULT_CONFIG,
    apply_overrides,
    config_from_dict,
    load_config,
    parse_override,
)
from neuroprop.errors import NeuropropError

NET = {"layers": [{"type": "dense", "units": 4}, {"type": "output"}]}


def test_default_config_is_the_digits_dense_experiment():
    config = load_config()
    assert DEFAULT_CONFIG.name == "digits_dense.yaml"
    assert config.dataset.name == "digits"
    assert config.rule_name == "brainprop"
    assert config.name == "digits_dense"


def test_overrides_set_nested_keys_and_turn_a_rule_name_into_a_section():
    raw = apply_overrides({"rule": "brainprop", "optimizer": {"lr": 0.1}},
                          ["optimizer.lr=0.5", "rule.epsilon=0.1", "training.seed=3"])
    assert raw == {"rule": {"name": "brainprop", "epsilon": 0.1}, "optimizer": {"lr": 0.5},
                   "training": {"seed": 3}}
    assert apply_overrides({"rule": "brainprop"}, ["rule=ebp"]) == {"rule": "ebp"}


def test_numbers_without_a_dot_are_numbers_on_the_command_line():
    """YAML 1.1 reads 1e-3 as a string; an override takes it as the number it is."""
    raw = apply_overrides({}, ["optimizer.lr=1e-3", "optimizer.weight_decay=5E-4",
                               "rule=ebp", "dataset.name=mnist"])
    assert raw == {"optimizer": {"lr": 0.001, "weight_decay": 0.0005}, "rule": "ebp",
                   "dataset": {"name": "mnist"}}
    assert config_from_dict({"network": NET, **raw}).optimizer.lr == 0.001


def test_ints_are_accepted_where_floats_are_expected():
    assert config_from_dict({"network": NET, "optimizer": {"lr": 1}}).optimizer.lr == 1.0


def test_time_to_accuracy_takes_one_threshold_or_a_list():
    def thresholds(value):
        return config_from_dict({"network": NET,
                                 "training": {"time_to_accuracy": value}}).training
    assert thresholds(0.98).time_to_accuracy == [0.98]
    assert thresholds([0.9, 1]).time_to_accuracy == [0.9, 1.0]
    assert thresholds([]).time_to_accuracy == []
    assert load_config().training.time_to_accuracy == [0.9, 0.95, 0.98]


@pytest.mark.parametrize(("raw", "message"), [
    ({"network": NET, "optimiser": {}}, "optimiser: unknown key; valid keys are"),
    ({"network": NET, "optimizer": {"lr": "fast"}}, "optimizer.lr: expected float, got 'fast'"),
    ({"network": NET, "training": {"batch_size": 1.5}}, "training.batch_size: expected int"),
    ({"network": NET, "training": {"batch_size": True}}, "training.batch_size: expected int"),
    ({"network": NET, "optimizer": {"lr": -1}}, "optimizer.lr: expected a positive number"),
    ({"network": NET, "optimizer": {"name": "lbfgs"}}, "optimizer.name: expected one of sgd"),
    ({"network": NET, "dataset": {"val_fraction": 1.5}}, "dataset.val_fraction"),
    ({"network": NET, "training": "fast"}, "training: expected a mapping"),
    ({"network": NET, "dataset": {"classes": [1, 1]}}, "dataset.classes: expected null or a"),
    ({"network": NET, "dataset": {"classes": "0-4"}}, "dataset.classes: expected null or a"),
    ({"network": NET, "dataset": {"shift": -1}}, "dataset.shift: expected an integer >= 0"),
    ({"network": NET, "training": {"time_to_accuracy": [0.5, 0]}},
     "training.time_to_accuracy: expected accuracies in"),
    ({"network": NET, "training": {"time_to_accuracy": None}},
     "training.time_to_accuracy: expected a float or a list"),
    ({}, "network: missing"),
])
def test_bad_configs_get_one_line_naming_the_key(raw, message):
    with pytest.raises(NeuropropError, match=message) as err:
        config_from_dict(raw)
    assert "\n" not in str(err.value)


def test_bad_override_syntax_is_explained():
    with pytest.raises(NeuropropError, match="expected key=value"):
        parse_override("optimizer.lr")


def test_config_file_errors(tmp_path):
    with pytest.raises(NeuropropError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("network: [unclosed\n")
    with pytest.raises(NeuropropError, match="not valid YAML at line"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(NeuropropError, match="expected a mapping"):
        load_config(listing)
