"""The spiking neurons of an on-chip learning trial, one step at a time: shared by the numpy
model (vectorised over samples) and the Lava process models (one trial).

``HiddenIF``: integrate-and-fire neurons (LIF with du = 1, dv = 0, reset to zero) that
also keep what BrainProp needs at the end of the trial, per neuron::

    window c:  c = c + 1, reset to 0 after a spike       (the reset-aware window)
    gate:      g = sum_t psi(v_t) c_t,  psi(v) = max(0, 1 - |v - vth| / vth) / vth
               fixed point: psi_int = max(0, V - |v - V|), V = vth_int << 6
    count n:   spikes in the trial

``Readout``: the leaky read-out (du = 1, dv = 0): v = v + a each step, no threshold.
Fixed point uses Lava's LIF arithmetic (``hardware.loihi.lif_integrate_fixed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware.loihi import LIF_MSB_SHIFT, lif_integrate_fixed


@dataclass
class HiddenState:
    u: np.ndarray
    v: np.ndarray
    window: np.ndarray
    gate: np.ndarray
    count: np.ndarray


@dataclass(frozen=True)
class HiddenIF:
    """``params``: fixed point ``du_int``, ``dv_int``, ``vth_int``; float ``vth``."""

    fixed: bool
    params: dict = field(default_factory=dict)

    def start(self, shape: tuple[int, ...]) -> HiddenState:
        dtype = np.int64 if self.fixed else np.float64
        return HiddenState(*(np.zeros(shape, dtype) for _ in range(5)))

    def step(self, state: HiddenState, current: np.ndarray) -> np.ndarray:
        """One step on input ``current``; the spikes (bool), the state updated in place."""
        if self.fixed:
            volts = int(self.params["vth_int"]) << LIF_MSB_SHIFT
            state.u, v = lif_integrate_fixed(state.u, state.v, current,
                                             int(self.params["du_int"]),
                                             int(self.params["dv_int"]))
            psi = np.maximum(0, volts - np.abs(v - volts))
        else:
            volts = float(self.params["vth"])
            v = state.v + current
            psi = np.maximum(0.0, 1 - np.abs(v - volts) / volts) / volts
        spikes = v > volts
        state.window += 1
        state.gate += psi * state.window
        state.window[spikes] = 0
        state.count += spikes
        state.v = np.where(spikes, 0, v)
        return spikes

    def gate(self, state: HiddenState, steps: int) -> np.ndarray:
        """The gate of the trial: sum_t psi_int c (fixed) or the mean psi c (float)."""
        return state.gate if self.fixed else state.gate / steps

    def payload(self, state: HiddenState, steps: int) -> np.ndarray:
        """The graded spike for W2's pre trace (its half): 2 n (fixed), 2 n / T (float)."""
        return 2 * state.count if self.fixed else 2 * state.count / steps


@dataclass(frozen=True)
class Readout:
    """The li read-out; ``params``: fixed point ``du_int``, ``dv_int``."""

    fixed: bool
    params: dict = field(default_factory=dict)

    def start(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        dtype = np.int64 if self.fixed else np.float64
        return np.zeros(shape, dtype), np.zeros(shape, dtype)

    def step(self, state: tuple[np.ndarray, np.ndarray],
             a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, v = state
        if self.fixed:
            return lif_integrate_fixed(u, v, a, int(self.params["du_int"]),
                                       int(self.params["dv_int"]))
        return a, v + a

    def q(self, state: tuple[np.ndarray, np.ndarray], steps: int) -> np.ndarray:
        """What the selector reads: v (fixed; q = v q_scale) or v / T (float)."""
        return state[1] if self.fixed else state[1] / steps
