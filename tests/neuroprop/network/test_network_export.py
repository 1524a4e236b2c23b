"""export_layers: a numpy forward of the exported layers == the torch eval forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroprop.errors import NeuropropError
from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.rules import BrainProp

LAYERS = [
    {"type": "conv2d", "channels": 4, "kernel": 3, "stride": 1, "padding": 1},
    {"type": "batchnorm"},
    {"type": "dropout", "p": 0.2},
    {"type": "loccon2d", "channels": 5, "kernel": 3, "stride": 2},
    {"type": "batchnorm"},
    {"type": "maxpool2d", "kernel": 2, "stride": 1},
    {"type": "batchnorm"},
    {"type": "conv2d", "channels": 3, "kernel": 2, "neuron": "linear"},
    {"type": "dropout", "p": 0.3},
    {"type": "dense", "units": 20},
    {"type": "batchnorm"},
    {"type": "dropout", "p": 0.3},
    {"type": "output"},
]


def numpy_forward(layers: list[dict], x: np.ndarray) -> np.ndarray:
    """Plain numpy reference: explicit loops over kernel offsets / output positions."""
    for layer in layers:
        kind = layer["type"]
        if kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "maxpool2d":
            (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
            _, out_h, out_w = layer["out_shape"]
            x = np.stack([np.stack([x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].max((2, 3))
                                    for j in range(out_w)], -1) for i in range(out_h)], -2)
        elif kind == "dense":
            x = x @ layer["weight"].T
        elif kind == "conv2d":
            (kh, kw), (sh, sw), (ph, pw) = layer["kernel"], layer["stride"], layer["padding"]
            _, out_h, out_w = layer["out_shape"]
            padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
            out = np.zeros((len(x), *layer["out_shape"]), dtype=np.float64)
            for di in range(kh):
                for dj in range(kw):
                    window = padded[:, :, di:di + sh * out_h:sh, dj:dj + sw * out_w:sw]
                    out += np.einsum("bchw,oc->bohw", window, layer["weight"][:, :, di, dj])
            x = out
        elif kind == "loccon2d":
            (kh, kw), (sh, sw) = layer["kernel"], layer["stride"]
            _, out_h, out_w = layer["out_shape"]
            out = np.zeros((len(x), *layer["out_shape"]), dtype=np.float64)
            for i in range(out_h):
                for j in range(out_w):
                    patch = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(len(x), -1)
                    out[:, :, i, j] = patch @ layer["weight"][i * out_w + j].T
            x = out
        if layer["neuron"] == {"kind": "relu"}:
            x = np.maximum(x, 0.0)
    return x


def trained_net(layers: list[dict], input_shape=(2, 9, 9)) -> Network:
    torch.manual_seed(0)
    spec = parse_network({"init": {"distribution": "normal", "std": 0.3}, "layers": layers},
                         input_shape, 4)
    net = Network(spec, FeedbackOptions()).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    rule = BrainProp(epsilon=0.5)
    for _ in range(5):
        x = torch.rand(32, *input_shape)
        optimizer.zero_grad()
        rule.step(net, x, torch.randint(0, 4, (32,)))
        optimizer.step()
    with torch.no_grad():  # gains far from 1 (still > 0 before the maxpool)
        for layer in net.layers:
            if hasattr(layer, "gamma"):
                layer.gamma.mul_(torch.rand_like(layer.gamma) + 0.5)
        norms = [layer for layer in net.layers if hasattr(layer, "gamma")]
        if norms and norms[-1].spec.in_shape == (20,):
            norms[-1].gamma[0] = -0.7  # a negative gain in front of a dense layer is fine
    return net.eval()


def test_numpy_forward_of_export_equals_torch_eval_forward() -> None:
    net = trained_net(LAYERS)
    exported = net.export_layers()
    assert [layer["type"] for layer in exported] == [
        "conv2d", "loccon2d", "maxpool2d", "conv2d", "flatten", "dense", "dense"]
    for layer in exported:
        if layer["weight"] is not None:
            assert layer["weight"].dtype == np.float32
        for key in ("kernel", "stride", "padding"):
            assert layer[key] is None or (isinstance(layer[key], tuple) and len(layer[key]) == 2)
        assert isinstance(layer["in_shape"], tuple) and isinstance(layer["out_shape"], tuple)
    assert exported[1]["weight"].shape == (16, 5, 4 * 9)  # (L, O, C*kh*kw)
    assert exported[-1]["neuron"] == {"kind": "linear"} == exported[3]["neuron"]
    x = torch.rand(16, 2, 9, 9)
    with torch.no_grad():
        expected = net(x).numpy()
    got = numpy_forward(exported, x.numpy().astype(np.float32))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_gain_below_zero_cannot_pass_a_maxpool() -> None:
    net = trained_net(LAYERS)
    with torch.no_grad():
        net.layers[4].gamma[2] = -0.1  # the batchnorm right before the maxpool
    with pytest.raises(NeuropropError, match=r"network.layers\[5\]: cannot fold"):
        net.export_layers()


def test_export_is_plain_data_for_the_hardware_graph() -> None:
    net = trained_net([{"type": "dense", "units": 6}, {"type": "output"}], (1, 3, 3))
    exported = net.export_layers()
    assert [layer["type"] for layer in exported] == ["flatten", "dense", "dense"]
    assert exported[0]["in_shape"] == (1, 3, 3) and exported[0]["out_shape"] == (9,)
    np.testing.assert_array_equal(exported[1]["weight"], net.layers[1].weight.detach().numpy())


def test_spiking_export_in_hardware_float_model_equals_torch() -> None:
    """The exported spiking net (LIF layers, li read-out) run by the hardware layer's float
    model gives the torch net's Q-values: v[T] / T == q to 1e-5 (float64)."""
    from hardware.emulator import forward_float
    from hardware.graph import HardwareNetwork, Layer

    torch.manual_seed(0)
    raw = {"substrate": "spiking", "timesteps": 12, "init": {"distribution": "normal",
                                                              "std": 0.4},
           "layers": [{"type": "conv2d", "channels": 3, "kernel": 3, "padding": 1},
                      {"type": "dropout", "p": 0.3},
                      {"type": "dense", "units": 16, "neuron": {"kind": "lif", "du": 0.5,
                                                                "dv": 0.2, "vth": 0.6}},
                      {"type": "output", "neuron": {"kind": "li", "du": 0.8, "dv": 0.1}}]}
    spec = parse_network(raw, (2, 6, 6), 4)
    net = Network(spec).double().eval()
    fields = ("type", "in_shape", "out_shape", "neuron", "weight", "kernel", "stride", "padding")
    layers = [Layer(**{key: entry[key] for key in fields})
              for entry in net.export_layers()]
    hardware = HardwareNetwork(input_shape=(2, 6, 6), input_scale=1.0, layers=layers,
                               substrate="spiking", timesteps=12)
    x = torch.rand(20, 2, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        expected = net(x).numpy()
    got = forward_float(hardware, x.numpy()) / 12
    assert np.abs(expected).max() > 0.05
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
