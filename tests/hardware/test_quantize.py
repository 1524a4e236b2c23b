"""Quantiser: Loihi-valid mantissas and exponents, limits kept, accuracy kept."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from hardware.emulator import fixed_point_stats, forward_fixed, forward_float
from hardware.errors import HardwareError
from hardware.loihi import (
    ACCUMULATOR_MAX,
    LOIHI1_WEIGHT_EXP_RANGE,
    PAYLOAD_MAX,
    WEIGHT_EXP_MAX,
    WEIGHT_EXP_MIN,
    check_weight_mantissas,
)
from hardware.quantize import (
    activation_scales,
    quantisation_report,
    quantise,
    weight_mantissas,
)

KINDS = ["dense", "conv", "loccon", "maxpool"]


def _weight_layers(net):
    return [i for i, layer in enumerate(net.layers) if layer.has_weights]


def _assert_within_limits(net, x, headroom_bits: int = 0) -> None:
    for row in fixed_point_stats(net, x):
        assert row.wrapped == 0
        assert row.max_abs_activation <= PAYLOAD_MAX >> headroom_bits
        assert row.max_abs_sum <= ACCUMULATOR_MAX >> headroom_bits


def test_weight_mantissas_are_even_and_span_the_range():
    w = np.array([[-0.5, 0.25, 0.0], [1.0, -1.0, 0.001]], dtype=np.float32)
    w_int = weight_mantissas(w)
    assert w_int.dtype == np.int16
    np.testing.assert_array_equal(w_int, [[-128, 64, 0], [254, -254, 0]])
    np.testing.assert_array_equal(weight_mantissas(w, shift_bits=1), [[-64, 32, 0], [128, -128, 0]])
    assert not weight_mantissas(np.zeros((3, 4))).any()


@pytest.mark.parametrize("kind", KINDS)
def test_quantised_copy_is_loihi_valid(make_network, make_inputs, kind):
    net = make_network(kind, 0)
    original = copy.deepcopy(net)
    quant = quantise(net, make_inputs(net, 200, seed=1))

    for layer in net.layers:  # the input network is not touched
        assert layer.weight_int is None
    for index in _weight_layers(quant):
        layer = quant.layers[index]
        np.testing.assert_array_equal(layer.weight, original.layers[index].weight)
        assert layer.weight_int.shape == layer.weight.shape
        assert np.all(layer.weight_int % 2 == 0)
        assert np.abs(layer.weight_int).max() == 254
        check_weight_mantissas(layer.weight_int, f"layer {index}")
        assert WEIGHT_EXP_MIN <= layer.weight_exp <= WEIGHT_EXP_MAX
    assert quant.is_quantised
    assert quant.metadata["source"] == net.metadata["source"]
    assert len(quant.metadata["quantisation"]["layers"]) == len(_weight_layers(quant))


@pytest.mark.parametrize("kind", KINDS)
def test_calibration_activations_stay_within_limits_with_margin(make_network, make_inputs, kind):
    net = make_network(kind, 1)
    x = make_inputs(net, 200, seed=1)
    _assert_within_limits(quantise(net, x, headroom_bits=1), x, headroom_bits=1)
    _assert_within_limits(quantise(net, x, headroom_bits=3), x, headroom_bits=3)


@pytest.mark.parametrize("kind", KINDS)
def test_exponents_are_the_largest_that_fit(make_network, make_inputs, kind):
    """One more exponent step on any layer would break a limit: no resolution is wasted."""
    net = make_network(kind, 2)
    x = make_inputs(net, 200, seed=1)
    quant = quantise(net, x)
    weight_layers = _weight_layers(quant)
    for position, index in enumerate(weight_layers):
        if quant.layers[index].weight_exp == WEIGHT_EXP_MAX:
            continue
        bolder = copy.deepcopy(quant)
        bolder.layers[index].weight_exp += 1
        stats = {row.layer: row for row in fixed_point_stats(bolder, x)}
        too_big = stats[index].max_abs_activation > PAYLOAD_MAX >> 1
        if position + 1 < len(weight_layers):
            too_big |= stats[weight_layers[position + 1]].max_abs_sum > ACCUMULATOR_MAX >> 1
        assert too_big, f"layer {index} could have used exponent {bolder.layers[index].weight_exp}"


def test_argmax_agreement_with_float_model(make_network, make_inputs):
    agreements = []
    for kind in KINDS:
        for seed in range(3):
            net = make_network(kind, seed)
            quant = quantise(net, make_inputs(net, 300, seed=100 + seed))
            x = make_inputs(net, 1000, seed=200 + seed)
            q_float = forward_float(net, x * net.input_scale)
            q_fixed = forward_fixed(quant, x)
            agreements.append(np.mean(q_float.argmax(1) == q_fixed.argmax(1)))
    assert np.mean(agreements) >= 0.97, agreements
    assert min(agreements) >= 0.94, agreements


@pytest.mark.parametrize("kind", KINDS)
def test_q_scale_maps_integer_q_values_to_float_ones(make_network, make_inputs, kind):
    net = make_network(kind, 0)
    quant = quantise(net, make_inputs(net, 200, seed=1))
    x = make_inputs(net, 300, seed=2)
    q_float = forward_float(net, x * net.input_scale)
    q_fixed = forward_fixed(quant, x) * quant.metadata["q_scale"]
    assert quant.metadata["q_scale"] == activation_scales(quant)[-1]
    assert np.linalg.norm(q_fixed - q_float) <= 0.05 * np.linalg.norm(q_float)


def test_huge_weights_and_inputs_do_not_saturate(make_network, make_inputs):
    net = make_network("conv", 3, weight_gain=1e5, input_scale=100.0)
    calibration = make_inputs(net, 200, seed=1, high=255)
    quant = quantise(net, calibration)
    test = make_inputs(net, 500, seed=2, high=255)
    _assert_within_limits(quant, test)
    report = quantisation_report(net, quant, test)
    assert report["argmax_agreement"] >= 0.95
    assert report["q_relative_error"] < 0.05


def test_wide_layers_stay_within_int32(make_network, make_inputs):
    """Wide layers make large pre-shift sums: the exponent before them must leave room."""
    net = make_network("dense", 4, hidden=1024)
    calibration = make_inputs(net, 200, seed=1, high=255)
    quant = quantise(net, calibration, headroom_bits=1)
    stats = fixed_point_stats(quant, calibration)
    assert max(row.max_abs_sum for row in stats) > PAYLOAD_MAX  # the int32 limit matters here
    layers = quant.metadata["quantisation"]["layers"]
    assert all(row["weight_shift_bits"] == 0 for row in layers)  # exponents alone sufficed
    _assert_within_limits(quant, calibration, headroom_bits=1)
    _assert_within_limits(quant, make_inputs(net, 500, seed=2, high=255))


def test_loihi1_exponent_range_lowers_early_exponents_instead_of_weight_bits(
    make_network, make_inputs
):
    """Wide layers outgrow a -8 shift; an early layer with spare bits absorbs that."""
    net = make_network("dense", 4, hidden=1024)
    calibration = make_inputs(net, 200, seed=1, high=255)
    wide = quantise(net, calibration)
    loihi1 = quantise(net, calibration, exp_range=LOIHI1_WEIGHT_EXP_RANGE)
    assert min(layer.weight_exp for layer in wide.layers if layer.has_weights) < -8
    layers = loihi1.metadata["quantisation"]["layers"]
    assert all(row["weight_shift_bits"] == 0 for row in layers)
    assert loihi1.layers[1].weight_exp < wide.layers[1].weight_exp
    _assert_within_limits(loihi1, calibration, headroom_bits=1)
    test = make_inputs(net, 500, seed=2, high=255)
    assert quantisation_report(net, loihi1, test)["argmax_agreement"] >= 0.95


def test_narrow_exponent_range_spreads_lost_weight_bits_instead_of_overflowing(
    make_network, make_inputs
):
    net = make_network("conv", 0)
    x = make_inputs(net, 200, seed=1)
    quant = quantise(net, x, exp_range=(-2, 2))
    layers = quant.metadata["quantisation"]["layers"]
    assert all(-2 <= row["weight_exp"] <= 2 for row in layers)
    shifts = [row["weight_shift_bits"] for row in layers]
    assert max(shifts) > 0
    assert max(shifts) - min(shifts) <= 1  # spread over the layers, not piled on one
    for row in layers:
        index = int(row["name"].removeprefix("layer").split("_")[0])
        peak = 2 * round(127 / 2 ** row["weight_shift_bits"])
        assert np.abs(quant.layers[index].weight_int).max() == peak
    _assert_within_limits(quant, x, headroom_bits=1)
    assert quantisation_report(net, quant, make_inputs(net, 500, seed=2))["argmax_agreement"] > 0.9


def test_impossible_exponent_range_is_refused(make_network, make_inputs):
    net = make_network("dense", 0, hidden=256)
    with pytest.raises(
        HardwareError, match="layer2_dense: activations overflow .* widen exp_range"
    ):
        quantise(net, make_inputs(net, 100, seed=1, high=255), exp_range=(7, 7))


def test_all_zero_layer_is_handled(make_network, make_inputs):
    net = make_network("dense", 0)
    net.layers[2].weight[:] = 0
    x = make_inputs(net, 100, seed=1)
    quant = quantise(net, x)
    assert not quant.layers[2].weight_int.any()
    assert not forward_fixed(quant, x).any()
    assert not forward_float(net, x * net.input_scale).any()


def test_report_explains_the_loss(make_network, make_inputs):
    net = make_network("loccon", 1)
    quant = quantise(net, make_inputs(net, 200, seed=1))
    x = make_inputs(net, 400, seed=2)
    labels = forward_float(net, x * net.input_scale).argmax(1)
    report = quantisation_report(net, quant, x, labels=labels)

    assert report["samples"] == 400
    assert report["float_accuracy"] == 1.0
    assert report["fixed_accuracy"] == report["argmax_agreement"]
    assert 0.9 <= report["weight_rounding_agreement"] <= 1.0
    assert [row["name"] for row in report["layers"]] == [
        row["name"] for row in quant.metadata["quantisation"]["layers"]
    ]
    for row in report["layers"]:
        assert 0 < row["relative_error"] < 0.1
        assert 0 <= row["zeroed_fraction"] < 0.05
        assert row["wrapped"] == 0
        assert row["headroom_bits"] >= 1
        assert row["median_active"] > 1000  # thousands of steps of activation resolution


def test_report_locates_a_damaged_layer(make_network, make_inputs):
    net = make_network("dense", 0)
    x = make_inputs(net, 200, seed=1)
    quant = quantise(net, x)
    quant.layers[2].weight_int[:8] *= -1  # a fault in the second hidden layer only
    errors = [row["relative_error"] for row in quantisation_report(net, quant, x)["layers"]]
    assert errors[0] < 0.05
    assert errors[1] > 0.3


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        (np.zeros((4, 1, 8, 8), dtype=np.float32), "raw integer pixels"),
        (np.zeros((4, 64), dtype=np.uint8), "expected \\(N, 1, 8, 8\\)"),
        (np.full((4, 1, 8, 8), 300, dtype=np.int16), "outside the 8-bit input range"),
        (np.zeros((0, 1, 8, 8), dtype=np.uint8), "N >= 1"),
    ],
)
def test_bad_calibration_is_refused(make_network, calibration, message):
    with pytest.raises(HardwareError, match=message):
        quantise(make_network("dense", 0), calibration)


def test_bad_options_are_refused(make_network, make_inputs):
    net = make_network("dense", 0)
    x = make_inputs(net, 10)
    with pytest.raises(HardwareError, match="exp_range"):
        quantise(net, x, exp_range=(3, -3))
    with pytest.raises(HardwareError, match="exp_range"):
        quantise(net, x, exp_range=(WEIGHT_EXP_MIN - 1, 0))
    with pytest.raises(HardwareError, match="headroom_bits"):
        quantise(net, x, headroom_bits=-1)
