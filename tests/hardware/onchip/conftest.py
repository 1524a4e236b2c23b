"""A learnable net (flatten -> dense relu -> dense linear) and digit-like inputs."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.graph import HardwareNetwork, Layer


def learnable_network(hidden: int = 32, seed: int = 0, std: float = 0.1) -> HardwareNetwork:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, std, (hidden, 64)).astype(np.float32)
    w2 = rng.normal(0, std, (10, hidden)).astype(np.float32)
    return HardwareNetwork(input_shape=(1, 8, 8), input_scale=1 / 16, layers=[
        Layer(type="flatten", in_shape=(1, 8, 8), out_shape=(64,)),
        Layer(type="dense", in_shape=(64,), out_shape=(hidden,), neuron={"kind": "relu"},
              weight=w1),
        Layer(type="dense", in_shape=(hidden,), out_shape=(10,), neuron={"kind": "linear"},
              weight=w2),
    ])


def learnable_spiking_network(hidden: int = 32, seed: int = 0, timesteps: int = 6,
                              std: float = 0.15) -> HardwareNetwork:
    """flatten -> dense IF (du 1, dv 0, vth 1) -> dense li read-out, T steps."""
    net = learnable_network(hidden, seed, std)
    net.substrate, net.timesteps = "spiking", timesteps
    net.layers[1].neuron = {"kind": "lif", "du": 1.0, "dv": 0.0, "vth": 1.0}
    net.layers[2].neuron = {"kind": "li", "du": 1.0, "dv": 0.0}
    net.layers[2].weight = net.layers[2].weight * 3
    return net


def trial_data(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inputs with digit-like pixels (0..16, many zeros) and labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, (count, 1, 8, 8)) * (rng.random((count, 1, 8, 8)) < 0.6)
    return x.astype(np.uint8), rng.integers(0, 10, count)


@pytest.fixture
def learnable():
    return learnable_network


@pytest.fixture(params=["rate", "spiking"])
def any_learnable(request):
    """A learnable net of each substrate."""
    return learnable_network if request.param == "rate" else learnable_spiking_network


@pytest.fixture
def learnable_spiking():
    return learnable_spiking_network


@pytest.fixture
def trials():
    return trial_data
