"""The torch LIF step against Lava's LIF arithmetic as hardware/loihi.py states it once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware import loihi
from neuroprop.neurons import LIF, State, Trace, surrogate
from neuroprop.neurons.lif import LIFSpec, lif_step


def run_torch(inputs: np.ndarray, spec: LIFSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, s) after every step, float64."""
    state = State(torch.zeros(inputs.shape[1], dtype=torch.float64),
                  torch.zeros(inputs.shape[1], dtype=torch.float64))
    us, vs, ss = [], [], []
    for a in torch.from_numpy(inputs.astype(np.float64)):
        s, state, _ = lif_step(a, state, spec)
        us.append(state.u.numpy().copy())
        vs.append(state.v.numpy().copy())
        ss.append(s.numpy().astype(bool))
    return np.array(us), np.array(vs), np.array(ss)


@pytest.mark.parametrize(("du", "dv", "vth"), [(1.0, 0.0, 1.0), (0.3, 0.1, 0.5),
                                                 (1 / 4096, 4095 / 4096, 2.0)])
def test_float_step_equals_lavas_float_lif(du: float, dv: float, vth: float) -> None:
    inputs = np.random.default_rng(0).normal(0.3, 1.0, size=(60, 40))
    u_t, v_t, s_t = run_torch(inputs, LIFSpec(du=du, dv=dv, vth=vth))
    u = v = np.zeros(40)
    for step, a in enumerate(inputs):
        u, v, s = loihi.lif_step_float(u, v, a, du, dv, vth)
        np.testing.assert_allclose(u_t[step], u, rtol=0, atol=1e-12)
        np.testing.assert_allclose(v_t[step], v, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(s_t[step], s)
    assert s_t.any() and not s_t.all()


@pytest.mark.parametrize("vth", [1, 37, loihi.LIF_VTH_MAX])
def test_integrate_and_fire_equals_lavas_fixed_point_lif_on_integer_inputs(vth: int) -> None:
    """du = 1, dv = 0 (Lava's du_int 4095, dv_int 0) has no rounding: on integer inputs
    Lava's fixed-point LIF holds 2^6 times the torch state, bit for bit, and spikes alike."""
    rng = np.random.default_rng(vth)
    scale = max(1, vth // 4)
    inputs = rng.integers(-scale, 2 * scale, size=(64, 50))
    inputs[:, :5] = 0  # silent neurons
    inputs[:, 5:10] = vth + 1  # neurons that fire at every step (at the 24-bit edge for the max)
    u_t, v_t, s_t = run_torch(inputs, LIFSpec(du=1.0, dv=0.0, vth=float(vth)))
    u = v = np.zeros(50, dtype=np.int32)
    for step, a in enumerate(inputs):
        u, v, s = loihi.lif_step_fixed(u, v, a.astype(np.int32), du=loihi.LIF_DECAY_MAX, dv=0,
                                       vth=vth)
        np.testing.assert_array_equal(s_t[step], s)
        np.testing.assert_array_equal(u_t[step] * 2**loihi.LIF_MSB_SHIFT, u)
        np.testing.assert_array_equal(v_t[step] * 2**loihi.LIF_MSB_SHIFT, v)
    assert s_t[:, 5:10].all() and not s_t[:, :5].any() and s_t[:, 10:].any()


def triangle(v: float, vth: float) -> float:
    return max(0.0, 1.0 - abs(v - vth) / vth) / vth


def test_spike_gradient_is_the_triangle_surrogate() -> None:
    """BPTT's spike derivative: psi(v) = max(0, 1 - |v - vth| / vth) / vth."""
    vth = 0.8
    v = torch.linspace(-0.5, 2.0, 51, dtype=torch.float64, requires_grad=True)
    zeros = torch.zeros(51, dtype=torch.float64)
    s, _, v_before = lif_step(v, State(zeros, zeros), LIFSpec(du=1.0, dv=0.0, vth=vth))
    s.sum().backward()
    expected = torch.tensor([triangle(float(value), vth) for value in v.detach()],
                            dtype=torch.float64)
    torch.testing.assert_close(v.grad, expected)
    torch.testing.assert_close(surrogate(v.detach(), vth), expected)
    torch.testing.assert_close(s, (v.detach() > vth).double())
    assert torch.equal(v_before.detach(), v.detach())


def test_brainprop_gate_is_the_trial_mean_of_psi_times_the_integration_window() -> None:
    """g = (1/T) sum_t psi(v[t]) c[t], c[t] = (1 - dv) (1 - s[t-1]) c[t-1] + 1, against a
    plain loop over one neuron's voltages and spikes."""
    spec = LIFSpec(du=0.6, dv=0.3, vth=0.7)
    neuron = LIF(spec)
    inputs = torch.from_numpy(np.random.default_rng(2).uniform(-0.2, 0.9, size=(20, 6)))
    state = State(torch.zeros(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64))
    window = Trace(torch.zeros(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64))
    voltages, spikes = [], []
    for a in inputs:
        s, state, v = neuron.step(a, state)
        window = neuron.gate_step(window, v, s)
        voltages.append(v.tolist())
        spikes.append(s.tolist())
    gate = neuron.gate(window, len(inputs))
    for unit in range(6):
        c, total, fired = 0.0, 0.0, 0.0
        for step in range(len(inputs)):
            c = (1 - spec.dv) * (1 - fired) * c + 1
            total += triangle(voltages[step][unit], spec.vth) * c
            fired = spikes[step][unit]
        assert float(gate[unit]) == pytest.approx(total / len(inputs), rel=1e-12)
    assert 0 < sum(map(sum, spikes)) < 6 * len(inputs)
