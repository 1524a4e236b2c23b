"""The learning plan (hardware.onchip.plan), action selection and the numpy model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hardware.errors import HardwareError
from hardware.graph import Layer
from hardware.onchip.model import learn, predict
from hardware.onchip.plan import CONNECTIONS, load_plan, plan_learning, save_plan
from hardware.onchip.selection import Selector


def _fixed(learnable, trials, **options):
    x, _ = trials(64)
    return plan_learning(learnable(), fixed=True, learning_rate=0.05, calibration=x, **options)


def test_fixed_plan_realises_the_learning_rate_within_the_rules_resolution(learnable, trials):
    plan = _fixed(learnable, trials)
    for name in CONNECTIONS:
        connection = plan.connection(name)
        assert 1 <= connection.mantissa <= 7 and -7 <= connection.exponent <= 8
        assert connection.rule.startswith(f"{connection.mantissa}*2^{connection.exponent}*x0")
    # realised rate per unit vs the requested one: the nearest m 2^e, within a factor 1.5
    lr, scales = 0.05, plan.weight_scales
    hidden_scale = plan.input_scale * scales["hidden"] * 2.0**-plan.hidden.weight_exp
    wanted = lr * plan.q_scale * hidden_scale / scales["output"]
    assert abs(math.log(plan.output.realised_rate / wanted)) < math.log(1.5)
    assert plan.reward == round(1 / plan.q_scale)


def test_float_plan_is_exactly_the_learning_rate(learnable):
    plan = plan_learning(learnable(), fixed=False, learning_rate=0.03)
    assert all(plan.connection(n).realised_rate == 0.03 for n in CONNECTIONS)
    np.testing.assert_array_equal(plan.feedback.weights, plan.output.weights.T)


@pytest.mark.parametrize("change", ["rate_as_spiking", "two_hidden", "conv_like",
                                    "leaky_spiking"])
def test_unsupported_nets_are_refused_in_one_line(learnable, learnable_spiking, change):
    net = learnable()
    if change == "rate_as_spiking":
        net.substrate = "spiking"
    elif change == "leaky_spiking":
        net = learnable_spiking()
        net.layers[1].neuron = {**net.layers[1].neuron, "dv": 0.1}
    elif change == "two_hidden":
        net.layers.insert(2, Layer(type="dense", in_shape=(32,), out_shape=(32,),
                                   neuron={"kind": "relu"},
                                   weight=np.eye(32, dtype=np.float32)))
    else:
        net.layers[1].neuron = {"kind": "linear"}
    with pytest.raises(HardwareError, match="du = 1, dv = 0") as error:
        plan_learning(net, fixed=False, learning_rate=0.1)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("options", [{"learning_rate": -1}, {"learning_rate": 0.1, "epsilon": 2},
                                     {"learning_rate": float("nan")}])
def test_bad_learning_settings_are_one_line(learnable, options):
    with pytest.raises(HardwareError):
        plan_learning(learnable(), fixed=False, **options)


def test_fixed_plan_needs_calibration_inputs(learnable):
    with pytest.raises(HardwareError, match="calibration"):
        plan_learning(learnable(), fixed=True, learning_rate=0.1)


def test_plan_round_trips_through_its_files_and_refuses_damage(learnable, trials, tmp_path):
    plan = _fixed(learnable, trials, seed=4)
    save_plan(plan, tmp_path / "plan")
    loaded = load_plan(tmp_path / "plan")
    assert loaded.summary() == plan.summary()
    for name in CONNECTIONS:
        np.testing.assert_array_equal(loaded.connection(name).weights,
                                      plan.connection(name).weights)
    (tmp_path / "plan" / "plan.json").write_text("{ broken")
    with pytest.raises(HardwareError, match="not a readable learning plan"):
        load_plan(tmp_path / "plan")


def test_selector_is_greedy_without_exploration_and_follows_softmax_with_it():
    q = np.array([0.1, 0.9, 0.3])
    greedy = Selector(0, epsilon=0.0, temperature=1.0)
    assert [greedy.choose(q) for _ in range(20)] == [1] * 20
    explore = Selector(0, epsilon=1.0, temperature=0.5)
    counts = np.bincount([explore.choose(q) for _ in range(6000)], minlength=3) / 6000
    softmax = np.exp(q / 0.5) / np.exp(q / 0.5).sum()
    np.testing.assert_allclose(counts, softmax, atol=0.03)
    forced = Selector(0, epsilon=1.0, temperature=1.0, forced=np.array([2, 0]))
    assert [forced.choose(q), forced.choose(q)] == [2, 0]


@pytest.mark.parametrize("substrate", ["rate", "spiking"])
def test_model_learns_digit_like_patterns_in_fixed_and_float(learnable, learnable_spiking,
                                                              substrate):
    """Ten fixed prototypes with noise: reward-only learning must find them."""
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 17, (10, 64)) * (rng.random((10, 64)) < 0.5)
    labels = rng.integers(0, 10, 3300)
    x = np.clip(prototypes[labels] + rng.integers(-2, 3, (3300, 64)), 0, 16).astype(np.uint8)
    net = (learnable(hidden=64, std=0.05) if substrate == "rate"
           else learnable_spiking(hidden=64, std=0.05, timesteps=8))
    for fixed in (False, True):
        plan = plan_learning(net, fixed=fixed, learning_rate=0.05, calibration=x[:200])
        before = (predict(plan, x[-300:]).argmax(axis=1) == labels[-300:]).mean()
        learned, record = learn(plan, x[:3000], labels[:3000])
        after = (predict(learned, x[-300:]).argmax(axis=1) == labels[-300:]).mean()
        assert before < 0.3 and after > (0.9 if substrate == "rate" else 0.85), (fixed, after)
        assert record.rewards[-300:].mean() > 0.8
        # tied feedback stays tied: exactly in float, within rare one-unit trace decays
        # (Lava draws them per matrix) in fixed point
        drift = np.abs(learned.feedback.weights - learned.output.weights.T)
        moved = np.abs(learned.output.weights - plan.output.weights).max()
        if fixed:
            assert drift.max() <= 2 and drift.mean() < 0.05 and moved > 20, (drift, moved)
        else:
            assert drift.max() < 1e-12
