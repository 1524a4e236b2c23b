"""The layer and neuron registries and the public shape helpers the torch side uses."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.errors import HardwareError
from hardware.layers import (
    LAYER_KINDS,
    WEIGHT_KINDS,
    WeightKind,
    layer_kind,
    weight_shape,
    window_output,
)
from hardware.neurons import NEURON_KINDS, neuron_kind


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected"),
    [(8, 3, 1, 1, 8), (8, 3, 2, 1, 4), (7, 2, 2, 0, 3), (28, 5, 1, 0, 24), (9, 3, 2, 1, 5)],
)
def test_window_output(size, kernel, stride, padding, expected):
    assert window_output(size, kernel, stride, padding) == expected


def test_weight_shape_per_kind():
    assert weight_shape("dense", (10,), (5,), None) == (5, 10)
    assert weight_shape("conv2d", (3, 8, 8), (4, 8, 8), (3, 3)) == (4, 3, 3, 3)
    assert weight_shape("loccon2d", (2, 6, 6), (5, 4, 2), (3, 2)) == (8, 5, 2 * 3 * 2)
    for kind in ("flatten", "maxpool2d", "attention"):
        with pytest.raises(ValueError, match=f"{kind} has no weights"):
            weight_shape(kind, (4, 8, 8), (4, 4, 4), (2, 2))


def test_registries_hold_every_kind_under_its_name():
    assert set(LAYER_KINDS) == {"dense", "conv2d", "loccon2d", "flatten", "maxpool2d"}
    assert set(WEIGHT_KINDS) == {"dense", "conv2d", "loccon2d"}
    assert set(NEURON_KINDS) == {"relu", "linear", "lif", "li"}
    for name, kind in [*LAYER_KINDS.items(), *NEURON_KINDS.items()]:
        assert kind.name == name
    with pytest.raises(HardwareError, match="unknown layer type 'attention'"):
        layer_kind("attention")


@pytest.mark.parametrize("net_kind", ["dense", "conv", "loccon", "maxpool"])
def test_kinds_accept_the_test_networks(make_network, net_kind):
    for layer in make_network(net_kind, 0).layers:
        kind = layer_kind(layer.type)
        assert kind.check(layer) is None
        if isinstance(kind, WeightKind):
            expected = kind.weight_shape(layer.in_shape, layer.out_shape, layer.kernel)
            assert layer.weight.shape == expected
            assert len(kind.weight_axes()) == len(expected)


def test_neuron_kinds_compute_relu_and_identity():
    a_int = np.array([-5, -1, 0, 1, 7, 2**31 - 1], dtype=np.int64)
    relu, linear = NEURON_KINDS["relu"], NEURON_KINDS["linear"]
    np.testing.assert_array_equal(relu.forward_fixed(a_int, {}), [0, 0, 0, 1, 7, 2**31 - 1])
    np.testing.assert_array_equal(linear.forward_fixed(a_int, {}), a_int)
    assert relu.forward_fixed(a_int, {}).dtype == np.int32
    a = np.array([-1.5, 0.0, 2.5])
    np.testing.assert_array_equal(relu.forward_float(a, {}), [0.0, 0.0, 2.5])
    np.testing.assert_array_equal(linear.forward_float(a, {}), a)


@pytest.mark.parametrize(
    ("neuron", "message"),
    [
        ({"kind": "tanh"}, "unknown neuron kind 'tanh' \\(known: relu, linear, lif, li\\)"),
        ({"kind": "lif"}, "lif neurons need du, dv, vth"),
        ({"kind": "li", "du": 0.0, "dv": 0.0}, "du 0.0 is outside \\[0.000244141, 1\\]"),
        ({"kind": "li", "du": 1, "dv": 1.0}, "dv 1.0 is outside \\[0, 0.999756\\]"),
        ({"kind": "lif", "du": 1, "dv": 0, "vth": 0}, "vth 0 must be a positive number"),
        ({"kind": "lif", "du": 1, "dv": 0, "vth": 1, "vth_int": 5}, "hold vth_int without"),
        (
            {"kind": "lif", "du": 1, "dv": 0, "vth": 1, "du_int": 1, "dv_int": 0, "vth_int": 2**17},
            "vth_int 131072 is not an integer in 0..131071",
        ),
        ({"kind": "li", "du": 1, "dv": 0, "vth": 1.0}, "li neurons take no parameter vth"),
        ({"kind": "linear", "vth": 1}, "linear neurons take no parameter vth"),
        ("relu", 'neuron must be a dict with a "kind"'),
        (None, 'neuron must be a dict with a "kind"'),
    ],
)
def test_bad_neurons_are_refused_in_one_line(neuron, message):
    with pytest.raises(HardwareError, match=message) as error:
        neuron_kind(neuron)
    assert "\n" not in str(error.value)
