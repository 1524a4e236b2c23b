"""parse_network: shapes, defaults, auto-flatten, round trip, and one-line errors."""

from __future__ import annotations

import pytest

from neuroprop.errors import NeuropropError
from neuroprop.network.spec import parse_network

CONV_NET = {
    "substrate": "rate",
    "init": {"distribution": "normal", "std": 0.005},
    "layers": [
        {"type": "conv2d", "channels": 32, "kernel": 3, "stride": 1, "padding": 0},
        {"type": "batchnorm"},
        {"type": "conv2d", "channels": 32, "kernel": 3, "stride": 2},
        {"type": "batchnorm"},
        {"type": "dropout", "p": 0.3},
        {"type": "dense", "units": 500},
        {"type": "batchnorm"},
        {"type": "dropout", "p": 0.3},
        {"type": "output"},
    ],
}


def layers_with(*layers: dict) -> dict:
    return {"layers": [*layers, {"type": "output"}]}


def error_of(raw: dict, input_shape=(1, 28, 28), num_classes: int = 10) -> str:
    with pytest.raises(NeuropropError) as info:
        parse_network(raw, input_shape, num_classes)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_shapes_and_auto_flatten() -> None:
    spec = parse_network(CONV_NET, (1, 28, 28), 10)
    types = [layer.type for layer in spec.layers]
    assert types == ["conv2d", "batchnorm", "conv2d", "batchnorm", "dropout", "flatten",
                     "dense", "batchnorm", "dropout", "output"]
    assert spec.layers[0].out_shape == (32, 26, 26)
    assert spec.layers[2].out_shape == (32, 12, 12)  # floor((26 - 3) / 2) + 1
    assert spec.layers[5].out_shape == (32 * 12 * 12,)
    assert spec.layers[6].weight_shape == (500, 32 * 12 * 12)
    assert spec.layers[-1].out_shape == (10,)
    assert spec.layers[0].neuron.kind == "relu"


def test_window_arithmetic_with_padding_pool_and_loccon() -> None:
    spec = parse_network(layers_with(
        {"type": "conv2d", "channels": 4, "kernel": [3, 5], "stride": [2, 1],
         "padding": [1, 2]},
        {"type": "maxpool2d", "kernel": 3, "stride": 2},
        {"type": "locallyconnected2d", "channels": 6, "kernel": 2, "neuron": "linear"},
    ), (3, 17, 11), 5)
    conv, pool, loccon = spec.layers[:3]
    assert conv.out_shape == (4, 9, 11)  # (17+2-3)//2+1, (11+4-5)//1+1
    assert pool.out_shape == (4, 4, 5)  # (9-3)//2+1, (11-3)//2+1
    assert loccon.type == "loccon2d" and loccon.out_shape == (6, 3, 4)
    assert loccon.weight_shape == (12, 6, 4 * 2 * 2)
    assert loccon.neuron.kind == "linear"
    assert spec.layers[3].type == "flatten" and spec.layers[3].out_shape == (72,)


def test_defaults() -> None:
    spec = parse_network({"layers": [{"type": "dense", "units": 7}, {"type": "output"}]},
                         (1, 8, 8), 10)
    assert spec.substrate == "rate"
    assert (spec.init.distribution, spec.init.scale) == ("normal", 0.005)
    uniform = parse_network({"init": {"distribution": "uniform", "limit": 0.02},
                             "layers": [{"type": "output"}]}, (1, 8, 8), 10)
    assert (uniform.init.distribution, uniform.init.scale) == ("uniform", 0.02)


@pytest.mark.parametrize("raw", [
    CONV_NET,
    {"init": {"distribution": "uniform", "limit": 0.02}, "layers": [
        {"type": "loccon2d", "channels": 3, "kernel": [2, 3], "stride": [1, 2]},
        {"type": "batchnorm", "eps": 1e-3, "momentum": 0.2},
        {"type": "maxpool2d", "kernel": 2, "stride": 1},
        {"type": "flatten"},
        {"type": "dense", "units": 9, "neuron": "linear"},
        {"type": "output", "units": 10},
    ]},
])
def test_to_dict_round_trips(raw: dict) -> None:
    spec = parse_network(raw, (1, 28, 28), 10)
    again = parse_network(spec.to_dict(), (1, 28, 28), 10)
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_to_dict_distinguishes_architectures() -> None:
    wider = {**CONV_NET, "layers": [dict(CONV_NET["layers"][0], channels=16),
                                    *CONV_NET["layers"][1:]]}
    assert (parse_network(wider, (1, 28, 28), 10).to_dict()
            != parse_network(CONV_NET, (1, 28, 28), 10).to_dict())


@pytest.mark.parametrize(("raw", "expected"), [
    (layers_with({"type": "conv2d", "channels": 4, "kernel": "x"}),
     "network.layers[0].kernel: expected a positive integer or a pair [h, w] of them, got 'x'"),
    (layers_with({"type": "dense", "units": 3}, {"type": "dense", "units": "x"}),
     "network.layers[1].units: expected a positive integer, got 'x'"),
    (layers_with({"type": "dense", "units": True}),
     "network.layers[0].units: expected a positive integer, got True"),
    (layers_with({"type": "dense", "units": 5, "size": 3}),
     "network.layers[0].size: unknown key; allowed keys are type, units, neuron"),
    ({"layers": [{"type": "output"}], "optimizer": "sgd"},
     "network.optimizer: unknown key; allowed keys are substrate, init, layers, neuron, "
         "precision, timesteps, encoding"),
    ({"layers": [{"type": "output"}], "precision": "float16"},
     "network.precision: expected one of float32, bfloat16, got 'float16'"),
    ({"substrate": "spiking", "layers": [{"type": "output"}], "precision": "bfloat16"},
     "network.precision: bfloat16 is for rate nets only (near the threshold its rounding "
     "moves spikes, so the spike trains change); use float32 or substrate rate"),
    (layers_with({"type": "conv2d", "channels": 4, "kernel": 29}),
     "network.layers[0].kernel: kernel 29 is larger than the input 28 (input shape "
     "(1, 28, 28)); use a smaller kernel or more padding"),
    (layers_with({"type": "conv2d", "channels": 4, "kernel": 3, "stride": 2},
                 {"type": "maxpool2d", "kernel": 14}),
     "network.layers[1].kernel: kernel 14 is larger than the input 13 (input shape "
     "(4, 13, 13)); use a smaller kernel or more padding"),
    (layers_with({"type": "dense", "units": 5}, {"type": "conv2d", "channels": 2, "kernel": 1}),
     "network.layers[1]: conv2d needs a spatial (C, H, W) input but gets (5,); move it "
     "before the flatten/dense layers"),
    (layers_with({"type": "loccon2d", "channels": 2, "kernel": 3, "padding": 1}),
     "network.layers[0].padding: loccon2d supports valid padding only; remove the key or set 0"),
    (layers_with({"type": "dense", "units": 5, "neuron": "tanh"}),
     "network.layers[0].neuron.kind: unknown neuron 'tanh'; use one of relu, linear, lif, li"),
    (layers_with({"type": "dropout", "p": 1.0}),
     "network.layers[0].p: expected a number in [0, 1), got 1.0"),
    (layers_with({"type": "pool"}),
     "network.layers[0].type: unknown layer type 'pool'; use one of dense, conv2d, loccon2d, "
     "batchnorm, dropout, maxpool2d, flatten, output (or locallyconnected2d)"),
    ({"layers": [{"type": "dense", "units": 4}]},
     "network.layers: the last layer must be {type: output}; add it"),
    ({"layers": [{"type": "output"}, {"type": "output"}]},
     "network.layers[1]: the output layer must be the last layer; remove the layers after it"),
    ({"layers": [{"type": "output", "units": 3}]},
     "network.layers[0].units: the output needs one unit per class (10), got 3; remove the "
     "key or set it to 10"),
    ({"substrate": "analog", "layers": [{"type": "output"}]},
     "network.substrate: expected one of rate, spiking, got 'analog'"),
    ({"timesteps": 8, "layers": [{"type": "output"}]},
     "network.timesteps: only spiking nets have it; remove it or set network.substrate: "
     "spiking"),
    ({"substrate": "spiking", "timesteps": 0, "layers": [{"type": "output"}]},
     "network.timesteps: expected an integer T >= 1, got 0"),
    ({"substrate": "spiking", "encoding": "latency", "layers": [{"type": "output"}]},
     "network.encoding: expected one of constant, bernoulli, got 'latency'"),
    ({"layers": [{"type": "dense", "units": 4, "neuron": "lif"}, {"type": "output"}]},
     "network.layers[0].neuron: the lif neuron belongs to spiking nets, this one is rate; "
     "use relu or set network.substrate"),
    ({"layers": [{"type": "dense", "units": 4, "activation": "relu", "neuron": "relu"},
                 {"type": "output"}]},
     "network.layers[0].activation: the older name of 'neuron'; give only neuron"),
    ({"substrate": "spiking", "neuron": {"kind": "lif", "du": 0}, "layers": [
        {"type": "output"}]},
     "network.neuron.du: expected a number in [0.000244141, 1] (Loihi's 12-bit decays: du "
     "in [1/4096, 1], dv in [0, 4095/4096]), got 0"),
    ({"substrate": "spiking", "layers": [{"type": "dense", "units": 4, "neuron": {
        "kind": "lif", "dv": 1.0}}, {"type": "output"}]},
     "network.layers[0].neuron.dv: expected a number in [0, 0.999756] (Loihi's 12-bit "
     "decays: du in [1/4096, 1], dv in [0, 4095/4096]), got 1.0"),
    ({"substrate": "spiking", "layers": [{"type": "dense", "units": 4, "neuron": {
        "kind": "lif", "vth": -1}}, {"type": "output"}]},
     "network.layers[0].neuron.vth: expected a positive finite number (Loihi thresholds "
     "are unsigned), got -1"),
    ({"substrate": "spiking", "layers": [{"type": "dense", "units": 4, "neuron": {
        "kind": ["lif"]}}, {"type": "output"}]},
     "network.layers[0].neuron.kind: unknown neuron ['lif']; use one of relu, linear, lif, "
     "li"),
    ({"substrate": "spiking", "layers": [{"type": "dense", "units": 4, "neuron": {
        "kind": "lif", "tau": 3}}, {"type": "output"}]},
     "network.layers[0].neuron.tau: unknown key; the lif neuron takes du, dv, vth"),
    ({"substrate": "spiking", "layers": [{"type": "output", "neuron": "lif"}]},
     "network.layers[0].neuron: lif cannot be the neuron of the output layer; use li"),
    ({"substrate": "spiking", "layers": [{"type": "dense", "units": 4, "neuron": "li"},
                                         {"type": "output"}]},
     "network.layers[0].neuron: li cannot be the neuron of hidden layers; use lif"),
    ({"substrate": "spiking", "layers": [{"type": "maxpool2d", "kernel": 2},
                                         {"type": "output"}]},
     "network.layers[0].type: maxpool2d is not supported in spiking nets (the max of "
     "binary spikes routes no usable feedback); remove it or use substrate rate"),
    ({"init": {"distribution": "normal", "limit": 0.1}, "layers": [{"type": "output"}]},
     "network.init.limit: unknown key; allowed keys are distribution, std"),
    ({"init": {"distribution": "normal", "std": -1}, "layers": [{"type": "output"}]},
     "network.init.std: expected a positive number, got -1"),
    ({"layers": []}, "network.layers: expected a non-empty list of layers, got []"),
])
def test_errors_name_the_key_and_the_fix(raw: dict, expected: str) -> None:
    assert error_of(raw) == expected


def test_not_a_mapping() -> None:
    assert error_of(["dense"]) == "network: expected a mapping, got ['dense']"
