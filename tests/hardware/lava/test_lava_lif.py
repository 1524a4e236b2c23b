"""Lava's own LIF (``lava.proc.lif.process.LIF``) against ``hardware.loihi``'s LIF steps.

A source RingBuffer drives several LIF populations (one per set of du, dv, vth, bias)
directly; the test runs one step at a time and compares spikes and the u, v state
with ``lif_step_fixed`` bit for bit, and with ``lif_step_float`` to 1e-12. Runs only
inside .venv-lava.
"""

from __future__ import annotations

import numpy as np
import pytest

LAVA_MISSING = "lava-nc not installed (run in .venv-lava)"
pytest.importorskip("lava.magma.core.run_configs", reason=LAVA_MISSING)

from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.io.sink import RingBuffer as SinkRingBuffer  # noqa: E402
from lava.proc.io.source import RingBuffer as SourceRingBuffer  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402

from hardware.lava import runtime  # noqa: E402
from hardware.loihi import (  # noqa: E402
    LIF_DECAY_MAX,
    LIF_STATE_BITS,
    LIF_VOLTAGE_MAX,
    LIF_VTH_MAX,
    lif_step_fixed,
    lif_step_float,
)

STEPS = 12
NEURONS = 40
FIXED_CASES = [  # du, dv, vth, bias_mant, bias_exp
    (0, 0, 0, 0, 0),
    (LIF_DECAY_MAX, LIF_DECAY_MAX, LIF_VTH_MAX, 0, 0),
    (0, LIF_DECAY_MAX, LIF_VTH_MAX, 0, 0),
    (LIF_DECAY_MAX, 0, 0, 0, 0),
    (1000, 300, 500, -37, 2),
    (2048, 1, 20_000, 4095, 7),
]
FLOAT_CASES = [  # du, dv, vth, bias
    (0.0, 0.0, 0.0, 0.0),
    (1.0, 1.0, 5.0, 0.0),
    (0.1, 0.05, 1.0, -0.25),
    (0.5, 0.9, 100.0, 3.0),
    (0.0, 1.0, 0.3, 0.0),
]
BIG_INT16 = 40_000
"""Beyond int16: the LIF's a_in port is typed int16 in Lava."""


def _fixed_inputs(rng: np.random.Generator) -> np.ndarray:
    """(NEURONS, STEPS) int32 inputs, rows by magnitude: zero, small, int16, beyond int16,
    24-bit (a << 6 reaches 2^23), int32-wrapping shifts (|a| >= 2^25); random signs,
    some zero steps. Rows 0 and 1 are +-40000 at the first step only."""
    highs = [1, 100, 2**15, 2**17, 2**20, 2**31 - 1]
    rows = []
    for index in range(NEURONS):
        high = highs[index % len(highs)]
        row = rng.integers(-high, high, size=STEPS, endpoint=True)
        row[rng.random(STEPS) < 0.2] = 0
        rows.append(row)
    data = np.array(rows, dtype=np.int64)
    data[0], data[1] = 0, 0
    data[0, 0], data[1, 0] = BIG_INT16, -BIG_INT16
    return data.astype(np.int32)


def _run_lava(sources_data: np.ndarray, populations: list[LIF], tag: str) -> tuple:
    """Run the LIFs (fed by one source) step by step: u, v per step and the spikes."""
    source = SourceRingBuffer(data=sources_data)
    sinks = []
    for lif in populations:
        source.s_out.connect(lif.a_in)
        sink = SinkRingBuffer(shape=(NEURONS,), buffer=STEPS)
        lif.s_out.connect(sink.a_in)
        sinks.append(sink)
    us = [[] for _ in populations]
    vs = [[] for _ in populations]
    with runtime.managed_runtime(source):  # stops the runtime in a finally
        runtime.create_runtime(source, Loihi2SimCfg(select_tag=tag))
        for _ in range(STEPS):
            runtime.run_steps(source, 1)
            for index, lif in enumerate(populations):
                us[index].append(lif.u.get())
                vs[index].append(lif.v.get())
        spikes = [sink.data.get() for sink in sinks]
    return us, vs, spikes


def test_fixed_point_lif_equals_lif_step_fixed_bit_for_bit():
    rng = np.random.default_rng(0)
    a_in = _fixed_inputs(rng)
    u0 = rng.integers(-(2**23) + 1, 2**23, size=NEURONS)
    v0 = rng.integers(-(2**23) + 1, 2**23, size=NEURONS)
    u0[: NEURONS // 2] = 0
    v0[: NEURONS // 2] = 0
    populations = [
        LIF(shape=(NEURONS,), u=u0, v=v0, du=du, dv=dv, vth=vth, bias_mant=mant, bias_exp=exp)
        for du, dv, vth, mant, exp in FIXED_CASES
    ]
    us, vs, spikes = _run_lava(a_in, populations, "fixed_pt")

    seen = {"spike": False, "silent": False, "u_beyond_24_bits": False, "v_clipped": False}
    for index, (du, dv, vth, mant, exp) in enumerate(FIXED_CASES):
        u, v = u0.astype(np.int32), v0.astype(np.int32)
        for t in range(STEPS):
            u, v, s = lif_step_fixed(u, v, a_in[:, t], du, dv, vth, bias=mant << exp)
            case = f"case {FIXED_CASES[index]}, step {t + 1}"
            np.testing.assert_array_equal(us[index][t], u, err_msg=f"u, {case}")
            np.testing.assert_array_equal(vs[index][t], v, err_msg=f"v, {case}")
            np.testing.assert_array_equal(spikes[index][:, t], s.astype(int), err_msg=case)
            seen["spike"] |= bool(s.any())
            seen["silent"] |= bool((~s).any())
            seen["u_beyond_24_bits"] |= bool((np.abs(u) >= 2 ** (LIF_STATE_BITS - 1)).any())
            seen["v_clipped"] |= bool((v == -LIF_VOLTAGE_MAX).any())
    assert all(seen.values()), seen  # the edge cases were exercised

    # The int16-typed a_in port does not wrap: 40000 arrives whole (du = 0, u0 = 0).
    assert us[0][0][0] == BIG_INT16 << 6
    assert us[0][0][1] == -BIG_INT16 << 6
    assert us[0][0][0] != (BIG_INT16 - 2**16) << 6


def test_floating_point_lif_equals_lif_step_float():
    rng = np.random.default_rng(1)
    a_in = (
        rng.standard_normal((NEURONS, STEPS)) * rng.choice([0.0, 0.5, 5.0, 500.0], NEURONS)[:, None]
    )
    u0 = rng.standard_normal(NEURONS)
    v0 = rng.standard_normal(NEURONS)
    populations = [
        LIF(shape=(NEURONS,), u=u0, v=v0, du=du, dv=dv, vth=vth, bias_mant=bias)
        for du, dv, vth, bias in FLOAT_CASES
    ]
    us, vs, spikes = _run_lava(a_in, populations, "floating_pt")

    spiked = silent = False
    for index, (du, dv, vth, bias) in enumerate(FLOAT_CASES):
        u, v = u0, v0
        for t in range(STEPS):
            u, v, s = lif_step_float(u, v, a_in[:, t], du, dv, vth, bias=bias)
            case = f"case {FLOAT_CASES[index]}, step {t + 1}"
            np.testing.assert_allclose(us[index][t], u, rtol=1e-12, atol=1e-12, err_msg=case)
            np.testing.assert_allclose(vs[index][t], v, rtol=1e-12, atol=1e-12, err_msg=case)
            np.testing.assert_array_equal(spikes[index][:, t], s.astype(float), err_msg=case)
            spiked |= bool(s.any())
            silent |= bool((~s).any())
    assert spiked and silent
