"""Spiking nets on Lava against the numpy model (``hardware.spiking``): every Q-value and
every spike count bit for bit in fixed point, 1e-5 in floating point.

Runs only inside .venv-lava. Small nets, few samples, short trials: each run compiles a
fresh process graph.
"""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from leftovers import segments

LAVA_MISSING = "lava-nc not installed (run in .venv-lava)"
pytest.importorskip("lava.magma.core.run_configs", reason=LAVA_MISSING)

from hardware.emulator import forward_fixed, forward_float  # noqa: E402
from hardware.errors import HardwareError  # noqa: E402
from hardware.graph import HardwareNetwork  # noqa: E402
from hardware.lava import run_on_lava, run_on_lava_per_sample  # noqa: E402
from hardware.loihi import LIF_VTH_MAX  # noqa: E402
from hardware.quantize import quantise  # noqa: E402


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail if a test leaves Lava children or new /dev/shm segments behind."""
    before = segments()
    yield
    assert multiprocessing.active_children() == []
    assert segments() - before == set()


def _assert_lava_matches(net: HardwareNetwork, x: np.ndarray) -> dict[int, np.ndarray]:
    """Lava fixed_pt == forward_fixed on every Q-value and every spike count."""
    q, trial = forward_fixed(net, x, return_activations=True)
    result = run_on_lava(net, x, spike_counts=True)
    assert result.steps == len(x) * net.timesteps + sum(lay.has_weights for lay in net.layers)
    np.testing.assert_array_equal(result.q, q)
    assert set(result.spike_counts) == {
        i for i, layer in enumerate(net.layers[:-1]) if layer.has_weights
    }
    for index, counts in result.spike_counts.items():
        np.testing.assert_array_equal(counts, trial[index], err_msg=f"layer {index}")
    return result.spike_counts


def test_dense_net_is_bit_exact_with_zero_inputs_between_samples(make_spiking_network, make_inputs):
    net = make_spiking_network("dense", 0, timesteps=6)
    quant = quantise(net, make_inputs(net, 100, seed=1))
    x = make_inputs(net, 24, seed=2)
    x[::5] = 0  # all-zero inputs right after busy samples: the reset must empty the state
    counts = _assert_lava_matches(quant, x)
    assert all(c[::5].sum() == 0 for c in counts.values())  # no input, no spike
    assert all(c[1::5].sum() > 0 for c in counts.values())


def test_conv_net_is_bit_exact_on_sparse_and_on_lavas_conv(make_spiking_network, make_inputs):
    net = make_spiking_network("conv", 1, timesteps=4, lif={"du": 1.0, "dv": 0.0})
    quant = quantise(net, make_inputs(net, 100, seed=1))
    x = make_inputs(net, 12, seed=2)
    assert quant.layers[1].weight_exp != 0  # binary spikes into a Sparse
    _assert_lava_matches(quant, x)
    quant.layers[0].weight_exp = 0  # graded input into Lava's Conv (wrap24 modelled)
    quant.layers[1].weight_exp = 0  # binary spikes into Lava's Conv
    _assert_lava_matches(quant, x)


def test_loccon_net_is_bit_exact(make_spiking_network, make_inputs):
    net = make_spiking_network("loccon", 2, timesteps=3)
    quant = quantise(net, make_inputs(net, 100, seed=1))
    _assert_lava_matches(quant, make_inputs(net, 10, seed=2))


def test_every_neuron_saturating_fires_every_step(make_spiking_network, make_inputs):
    net = make_spiking_network("dense", 3, timesteps=5, lif={"du": 1.0, "dv": 0.0})
    quant = quantise(net, make_inputs(net, 50, seed=1))
    for layer in quant.layers:
        if layer.has_weights:
            layer.weight_int = np.abs(layer.weight_int)  # excitatory only
            if layer.neuron["kind"] == "lif":
                layer.neuron["vth_int"] = 0  # any positive v fires
    x = make_inputs(net, 6, seed=2, high=255)
    x[x == 0] = 1
    counts = _assert_lava_matches(quant, x)
    for c in counts.values():
        assert np.all(c == net.timesteps)


def test_threshold_at_its_register_maximum(make_spiking_network, make_inputs):
    net = make_spiking_network("dense", 4, timesteps=6, lif={"du": 1.0, "dv": 0.0})
    quant = quantise(net, make_inputs(net, 50, seed=1))
    first = quant.layers[1]
    first.neuron["vth_int"] = LIF_VTH_MAX
    first.weight_int = np.abs(first.weight_int)
    first.weight_exp = -3  # a up to 254 * 255 * 64 / 8: a few steps reach 131071
    x = make_inputs(net, 8, seed=2, high=255)
    counts = _assert_lava_matches(quant, x)
    assert 0 < counts[1].max() < net.timesteps  # fires, but not every step


def test_one_step_per_sample(make_spiking_network, make_inputs):
    net = make_spiking_network("dense", 5, timesteps=1, lif={"vth": 0.3})
    quant = quantise(net, make_inputs(net, 100, seed=1))
    counts = _assert_lava_matches(quant, make_inputs(net, 16, seed=2))
    assert all(c.max() == 1 for c in counts.values())


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_floating_point_matches_the_float_model(make_spiking_network, make_inputs, kind):
    net = make_spiking_network(kind, 6, timesteps=5)
    x = make_inputs(net, 10, seed=2)
    q, trial = forward_float(net, x * net.input_scale, return_activations=True)
    result = run_on_lava(net, x, mode="float", spike_counts=True)
    np.testing.assert_allclose(result.q, q, rtol=1e-5, atol=1e-5)
    for index, counts in result.spike_counts.items():
        np.testing.assert_array_equal(counts, trial[index])
    assert sum(c.sum() for c in result.spike_counts.values()) > 0


def test_per_sample_runs_refuse_spiking_nets(make_spiking_network, make_inputs):
    net = make_spiking_network("dense", 0)
    with pytest.raises(HardwareError, match="runs rate nets, not spiking ones; use run_on_lava"):
        run_on_lava_per_sample(net, make_inputs(net, 2), mode="float")
