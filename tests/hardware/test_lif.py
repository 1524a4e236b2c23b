"""``hardware.loihi``'s LIF steps by hand (Lava's own LIF: tests/hardware/lava/test_lava_lif.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.errors import HardwareError
from hardware.loihi import (
    LIF_DECAY_MAX,
    LIF_VOLTAGE_MAX,
    LIF_VTH_MAX,
    lif_step_fixed,
    lif_step_float,
)


def _step(u, v, a, du=0, dv=0, vth=LIF_VTH_MAX, bias=0):
    return lif_step_fixed(np.array(u), np.array(v), np.array(a), du, dv, vth, bias)


def test_input_is_shifted_by_6_and_decays_truncate_toward_zero():
    u, v, s = _step([0], [0], [1])
    assert (u[0], v[0], s[0]) == (64, 64, False)
    u, v, _ = _step(u, v, [1])  # current decays by du + 1 = 1: 64 * 4095 / 4096 -> 63
    assert (u[0], v[0]) == (63 + 64, 64 + 127)  # voltage decays by dv = 0: kept
    u, v, _ = _step([-101], [-101], [0], du=2047, dv=2048)  # both halve: -50.5 -> -50
    assert (u[0], v[0]) == (-50, -50 - 50)
    u, v, _ = _step([1000], [1000], [0], du=LIF_DECAY_MAX, dv=LIF_DECAY_MAX)
    assert (u[0], v[0]) == (0, 0)  # u emptied (4096 - 4096); v keeps 1000 / 4096 -> 0


def test_current_wraps_once_by_2_to_24_and_voltage_clips():
    u, v, _ = _step([0, 0, 0, 0], [0, 0, 0, 0], [2**17, 2**17 + 1, -(2**17), 2**20])
    np.testing.assert_array_equal(u, [2**23, -(2**23) + 64, 2**23, 2**26 - 2**24])
    np.testing.assert_array_equal(v, [0, -(2**23) + 64, 0, 0])  # 2^23 - 1 > vth << 6: spiked
    _, v, s = _step([0], [0], [-(2**20)])
    assert v[0] == -LIF_VOLTAGE_MAX and not s[0]
    u, _, _ = _step([0], [0], [2**25 + 3])  # a << 6 wraps in int32: -2^31 + 192, + 2^24
    assert u[0] == -(2**31) + 192 + 2**24


def test_spike_when_voltage_exceeds_threshold_then_reset_to_zero():
    u, v, s = _step([0, 0], [0, 0], [10, 11], vth=10, dv=LIF_DECAY_MAX, bias=-64)
    # v = 640 - 64 = 576 and 704 - 64 = 640 against vth << 6 = 640: only > spikes
    np.testing.assert_array_equal(s, [False, False])
    _, v, s = _step([0, 0], [0, 0], [10, 11], vth=10)
    np.testing.assert_array_equal(s, [False, True])
    np.testing.assert_array_equal(v, [640, 0])


@pytest.mark.parametrize(
    ("du", "dv", "vth", "name"),
    [
        (-1, 0, 0, "du"),
        (0, LIF_DECAY_MAX + 1, 0, "dv"),
        (0, 0, LIF_VTH_MAX + 1, "vth"),
        (0.5, 0, 0, "du"),
    ],
)
def test_constants_outside_the_registers_are_refused(du, dv, vth, name):
    with pytest.raises(HardwareError, match=f"LIF {name} .* is not an integer in 0"):
        _step([0], [0], [0], du=du, dv=dv, vth=vth)


def test_float_lif():
    u, v, s = lif_step_float(
        np.array([1.0, 2.0]),
        np.array([0.5, 3.0]),
        np.array([1.0, 0.0]),
        du=0.5,
        dv=0.25,
        vth=3.0,
        bias=0.5,
    )
    np.testing.assert_allclose(u, [1.5, 1.0])
    np.testing.assert_allclose(v, [0.5 * 0.75 + 1.5 + 0.5, 0.0])  # 3 * 0.75 + 1 + 0.5 > 3
    np.testing.assert_array_equal(s, [False, True])
