"""Random float networks and inputs for the hardware tests (numpy only, no lava).

Use the fixtures ``make_network`` and ``make_inputs`` (they return the functions
below) so that tests in any subfolder can build networks without importing this file.

Kinds (all on an 8x8 single-channel image by default, 10 classes):

- ``dense``:   flatten -> dense 32 relu -> dense 16 relu -> dense 10
- ``conv``:    conv 4 3x3 s1 p1 relu -> conv 4 3x3 s2 p1 relu -> flatten -> dense 32 relu
               -> dense 10
- ``loccon``:  loccon 4 3x3 s1 relu -> loccon 4 3x3 s2 relu -> flatten -> dense 32 relu
               -> dense 10
- ``maxpool``: conv 4 3x3 s1 p1 relu -> maxpool 2x2 s2 -> flatten -> dense 10

Weights are He-normal (std sqrt(2 / fan_in), sqrt(1 / fan_in) for the linear output)
times ``weight_gain``, so activations keep their scale from layer to layer.

``make_spiking_network`` turns the dense, conv and loccon architectures into spiking nets
(``substrate="spiking"``, T steps): lif neurons on the hidden weight layers, an li
read-out on the output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hardware.graph import HardwareNetwork, Layer
from hardware.layers import weight_shape, window_output

KINDS = ("dense", "conv", "loccon", "maxpool")
RELU = {"kind": "relu"}
LINEAR = {"kind": "linear"}


def _conv(
    in_shape: tuple[int, int, int], out_channels: int, stride: int, padding: int, kind: str
) -> Layer:
    channels, height, width = in_shape
    out_shape = (
        out_channels,
        window_output(height, 3, stride, padding),
        window_output(width, 3, stride, padding),
    )
    return Layer(
        type=kind,
        in_shape=in_shape,
        out_shape=out_shape,
        neuron=dict(RELU),
        kernel=(3, 3),
        stride=(stride, stride),
        padding=(padding, padding),
    )


def _architecture(
    kind: str, input_shape: tuple[int, int, int], hidden: int, channels: int, classes: int
) -> list[Layer]:
    layers: list[Layer] = []
    shape: tuple[int, ...] = input_shape
    if kind == "conv":
        layers.append(_conv(input_shape, channels, 1, 1, "conv2d"))
        layers.append(_conv(layers[-1].out_shape, channels, 2, 1, "conv2d"))
    elif kind == "loccon":
        layers.append(_conv(input_shape, channels, 1, 0, "loccon2d"))
        layers.append(_conv(layers[-1].out_shape, channels, 2, 0, "loccon2d"))
    elif kind == "maxpool":
        layers.append(_conv(input_shape, channels, 1, 1, "conv2d"))
        c, h, w = layers[-1].out_shape
        layers.append(
            Layer(
                type="maxpool2d",
                in_shape=(c, h, w),
                out_shape=(c, window_output(h, 2, 2, 0), window_output(w, 2, 2, 0)),
                kernel=(2, 2),
                stride=(2, 2),
                padding=(0, 0),
            )
        )
    elif kind != "dense":
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    if layers:
        shape = layers[-1].out_shape
    flat = int(np.prod(shape))
    layers.append(Layer(type="flatten", in_shape=tuple(shape), out_shape=(flat,)))
    widths = {"dense": [hidden, hidden // 2], "maxpool": []}.get(kind, [hidden])
    size = flat
    for width in widths:
        layers.append(Layer(type="dense", in_shape=(size,), out_shape=(width,), neuron=dict(RELU)))
        size = width
    layers.append(Layer(type="dense", in_shape=(size,), out_shape=(classes,), neuron=dict(LINEAR)))
    return layers


def _fan_in(layer: Layer) -> int:
    if layer.type == "dense":
        return layer.in_shape[0]
    return layer.in_shape[0] * layer.kernel[0] * layer.kernel[1]


def random_network(
    kind: str = "dense",
    seed: int = 0,
    *,
    input_shape: tuple[int, int, int] = (1, 8, 8),
    hidden: int = 32,
    channels: int = 4,
    classes: int = 10,
    input_scale: float = 1 / 16,
    weight_gain: float = 1.0,
) -> HardwareNetwork:
    """A float (unquantised) HardwareNetwork of ``kind`` with He-normal weights."""
    rng = np.random.default_rng(seed)
    layers = _architecture(kind, tuple(input_shape), hidden, channels, classes)
    for layer in layers:
        if layer.has_weights:
            gain = 2.0 if layer.neuron == RELU else 1.0
            std = weight_gain * np.sqrt(gain / _fan_in(layer))
            shape = weight_shape(layer.type, layer.in_shape, layer.out_shape, layer.kernel)
            layer.weight = (rng.standard_normal(shape) * std).astype(np.float32)
    return HardwareNetwork(
        input_shape=tuple(input_shape),
        input_scale=float(input_scale),
        layers=layers,
        metadata={"source": f"random_network({kind!r}, seed={seed})"},
    )


def random_spiking_network(
    kind: str = "dense",
    seed: int = 0,
    *,
    timesteps: int = 8,
    lif: dict | None = None,
    li: dict | None = None,
    weight_gain: float = 1.5,
    **options,
) -> HardwareNetwork:
    """A float spiking net of ``kind`` (dense, conv, loccon): ``random_network``'s layers
    and weights with lif (default du 0.5, dv 0.125, vth 1) and li (du 0.75, dv 0.0625)."""
    net = random_network(kind, seed, weight_gain=weight_gain, **options)
    lif = {"du": 0.5, "dv": 0.125, "vth": 1.0, **(lif or {})}
    li = {"du": 0.75, "dv": 0.0625, **(li or {})}
    weight_layers = [layer for layer in net.layers if layer.has_weights]
    for layer in weight_layers[:-1]:
        layer.neuron = {"kind": "lif", **lif}
    weight_layers[-1].neuron = {"kind": "li", **li}
    net.substrate = "spiking"
    net.timesteps = timesteps
    return net


def random_inputs(net: HardwareNetwork, n: int, seed: int = 0, high: int = 16) -> np.ndarray:
    """``n`` uint8 inputs of ``net.input_shape`` drawn uniformly from 0..``high``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, high + 1, size=(n, *net.input_shape), dtype=np.uint8)


@pytest.fixture
def make_network() -> Callable[..., HardwareNetwork]:
    """``make_network(kind, seed, **options)``: see ``random_network``."""
    return random_network


@pytest.fixture
def make_spiking_network() -> Callable[..., HardwareNetwork]:
    """``make_spiking_network(kind, seed, timesteps=8, lif=None, li=None, **options)``: see
    ``random_spiking_network``."""
    return random_spiking_network


@pytest.fixture
def make_inputs() -> Callable[..., np.ndarray]:
    """``make_inputs(net, n, seed=0, high=16)``: see ``random_inputs``."""
    return random_inputs
