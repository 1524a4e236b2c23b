"""neuroprop's neurons against NIR's: the parameter mapping, both directions.

NIR describes neurons by ODEs; the toolkits that run them (snnTorch, norse) take one
forward-Euler step of length dt per time step. For NIR's ``CubaLIF`` with v_leak = 0:

    I[t] = I[t-1] + (dt / tau_syn) (w_in S[t] - I[t-1])
    v[t] = v[t-1] + (dt / tau_mem) (r I[t] - v[t-1])
    spike when v[t] > v_threshold, then v[t] <- v_reset

neuroprop's LIF (``neuroprop.neurons.lif``) is u[t] = (1 - du) u[t-1] + a[t],
v[t] = (1 - dv) v[t-1] + u[t], spike when v > vth, reset to 0. The two are the same
neuron, state for state (I = u, same v), when

    du = dt / tau_syn,    w_in = tau_syn / dt = 1 / du
    dv = dt / tau_mem,    r    = tau_mem / dt = 1 / dv,      v_threshold = vth,
    v_leak = 0,           v_reset = 0

(snnTorch's convention for its Synaptic neuron). **Export** writes exactly these, with
dt = ``DEFAULT_DT`` = 1e-4 s unless told otherwise (the step snnTorch's importer assumes);
a membrane without leak (dv = 0, tau_mem infinite) is written as tau_mem = 2^30 dt,
r = 2^30: a decay of 2^-30 per step, which float32 rounds to no decay at all, so every
float32 simulator runs a non-leaking membrane (an infinite tau_mem makes norse compute
0 * inf = NaN). The leaky read-out ``li`` is written as ``LI`` (tau = dt / dv, r = 1 / dv)
when du = 1, else as ``CubaLI`` with the mapping above.

**Import** reads any w_in and r. The node's state is then a constant multiple of
neuroprop's driven by the same input: I = (du w_in) u and v = g v_np with

    g = (du w_in) (dv r)          CubaLIF, CubaLI
    g = dv r,  du = 1             LIF, LI   (no synaptic current: I is the input itself)
    g = dt r,  du = 1, dv = 0     IF        (v[t] = v[t-1] + dt r I[t])

and since v_leak = v_reset = 0 the spikes are those of neuroprop's neuron whose synapse
weights are multiplied by g, with the same threshold: ``gain`` g is folded into the
weights before the neuron (nothing is folded when g = 1, the convention above). For the
read-out this keeps the Q-values q = v[T] / T equal to the node's own v[T] / T. A decay
below 2^-24 per step (below float32's resolution just under 1; tau_mem >= 2^24 dt,
including infinity, snnTorch's beta = 1) reads as dv = 0. Decays and gains are read to
the precision of the file's arrays (6 significant digits from float32, 12 from float64:
dt / (dt / du) is not always du in floating point); thresholds and weights exactly.

Refused with one line naming the node: a parameter that differs between the neurons of
one layer (neuroprop has one value per layer), v_leak != 0 (a constant drive: neuroprop
has no bias), v_reset != 0 (neuroprop and Loihi reset to 0), a decay outside Loihi's
12-bit range (du in [1/4096, 1], dv in [0, 4095/4096]), a threshold <= 0.

Not representable in NIR at all: the reset mode. NIR's v_reset is the value v jumps to;
whether it jumps there or subtracts the threshold (snnTorch's default "subtract") is not
written anywhere. neuroprop resets to zero, and a reader that subtracts instead runs a
different neuron.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from neuroprop.errors import NeuropropError
from neuroprop.neurons import NeuronSpec
from neuroprop.neurons.lif import DU_MIN, DV_MAX, LIFSpec, LISpec

DEFAULT_DT = 1e-4
"""Seconds per time step written into (and assumed when reading) NIR time constants:
snnTorch's exporter and importer fix it at 1e-4; norse takes ``dt`` as an argument."""

NO_LEAK_STEPS = 2.0**30
"""tau_mem / dt written for a membrane without leak (dv = 0)."""

NO_LEAK_MIN_STEPS = 2.0**24
"""tau_mem / dt at and above which a membrane reads as leak-free (dv = 0)."""

SIGNIFICANT_DIGITS = 12
V_LEAK = "a constant drive, which neuroprop's neurons (bias-free) lack"

HIDDEN_NODES: tuple[type, ...] = (nir.CubaLIF, nir.LIF, nir.IF)
"""NIR neurons that import as a hidden ``lif`` layer."""

READOUT_NODES: tuple[type, ...] = (nir.LI, nir.CubaLI)
"""NIR neurons that import as the ``li`` read-out."""


@dataclass(frozen=True)
class ImportedNeuron:
    """A NIR neuron node read as neuroprop's: its ``neuron:`` mapping and the gain g to
    fold into the weights of the synapse before it."""

    neuron: dict[str, Any]
    gain: float


def neuron_to_nir(spec: NeuronSpec, shape: tuple[int, ...], dt: float,
                  where: str) -> nir.NIRNode | None:
    """The NIR node of a neuron of ``shape`` (None for ``linear``: the identity has no node).

    ``where`` names the layer in the one-line refusal of a neuron NIR cannot express (relu).
    """
    if isinstance(spec, LIFSpec):
        tau_syn, w_in = _time_constant(spec.du, dt)
        tau_mem, r = _time_constant(spec.dv, dt)
        return nir.CubaLIF(tau_syn=_full(shape, tau_syn), tau_mem=_full(shape, tau_mem),
                           r=_full(shape, r), v_leak=_full(shape, 0.0),
                           v_threshold=_full(shape, spec.vth), v_reset=_full(shape, 0.0),
                           w_in=_full(shape, w_in))
    if isinstance(spec, LISpec):
        tau_mem, r = _time_constant(spec.dv, dt)
        if spec.du == 1.0:
            return nir.LI(tau=_full(shape, tau_mem), r=_full(shape, r), v_leak=_full(shape, 0.0))
        tau_syn, w_in = _time_constant(spec.du, dt)
        return nir.CubaLI(tau_syn=_full(shape, tau_syn), tau_mem=_full(shape, tau_mem),
                          r=_full(shape, r), v_leak=_full(shape, 0.0), w_in=_full(shape, w_in))
    if spec.kind == "linear":
        return None
    raise NeuropropError(f"{where}: NIR has no {spec.kind} neuron (no ReLU node); convert the "
                         "rate net to a spiking one first (neuroprop convert RUN --timesteps T) "
                         "and export that")


def neuron_from_nir(name: str, node: nir.NIRNode, size: int, dt: float) -> ImportedNeuron:
    """The neuroprop neuron of NIR neuron node ``name`` with ``size`` neurons (see the
    module docstring); one-line errors name the node."""
    kind = type(node).__name__
    params = _Params(name, kind, node, size)
    if isinstance(node, nir.IF):  # no leak, so no v_leak
        du, dv, gain = 1.0, 0.0, dt * params.positive("r")
    elif isinstance(node, nir.LIF | nir.LI):
        params.zero("v_leak", V_LEAK)
        du = 1.0
        dv, gain = _membrane(params, "tau", dt)
    else:
        params.zero("v_leak", V_LEAK)
        tau_syn = params.positive("tau_syn")
        du = params.rounded(dt / tau_syn)
        if not DU_MIN <= du <= 1.0:
            raise NeuropropError(
                f"node {name!r} ({kind}): tau_syn = {tau_syn:g} s gives a current decay "
                f"du = dt / tau_syn = {du:g} per step (dt = {dt:g} s), outside Loihi's "
                "[1/4096, 1]; check the time step (--dt)")
        dv, gain = _membrane(params, "tau_mem", dt)
        gain *= du * params.positive("w_in")
    gain = params.rounded(gain)
    if isinstance(node, READOUT_NODES):
        return ImportedNeuron({"kind": "li", "du": du, "dv": dv}, gain)
    params.zero("v_reset", "neuroprop (and Loihi) reset the voltage to 0")
    vth = params.positive("v_threshold")
    return ImportedNeuron({"kind": "lif", "du": du, "dv": dv, "vth": vth}, gain)


def _time_constant(decay: float, dt: float) -> tuple[float, float]:
    """(tau, tau / dt) of a decay per step: tau = dt / decay; no decay: 2^30 dt."""
    steps = NO_LEAK_STEPS if decay == 0.0 else 1.0 / decay
    return dt * steps, steps


def _membrane(params: _Params, key: str, dt: float) -> tuple[float, float]:
    """(dv, dv r) of a membrane with time constant ``params[key]``: the decay per step and
    the factor from current to voltage (1 for r = tau / dt, also when both are infinite)."""
    tau = params.positive(key, allow_inf=True)
    steps = tau / dt
    r = params.positive("r", allow_inf=True)
    if math.isinf(r) != math.isinf(steps):
        raise NeuropropError(
            f"node {params.name!r} ({params.kind}): r = {r:g} with {key} = {tau:g} s: an "
            "infinite r needs an infinite time constant (r = tau / dt), and a finite one "
            "a finite time constant")
    gain = 1.0 if math.isinf(r) else r / steps
    if steps >= NO_LEAK_MIN_STEPS:
        return 0.0, gain
    dv = params.rounded(1.0 / steps)
    if dv > DV_MAX:
        raise NeuropropError(
            f"node {params.name!r} ({params.kind}): {key} = {tau:g} s gives a voltage "
            f"decay dv = dt / {key} = {dv:g} per step (dt = {dt:g} s), above Loihi's largest "
            "4095/4096; check the time step (--dt)")
    return dv, gain


class _Params:
    """The parameters of one NIR neuron node, each checked to be one number per layer."""

    def __init__(self, name: str, kind: str, node: nir.NIRNode, size: int) -> None:
        self.name, self.kind, self.node, self.size = name, kind, node, size
        precisions = [np.finfo(value.dtype).precision for value in vars(node).values()
                      if isinstance(value, np.ndarray) and value.dtype.kind == "f"]
        self.digits = min([SIGNIFICANT_DIGITS, *precisions])

    def rounded(self, value: float) -> float:
        """A decay or gain computed from the node's parameters, to the precision they
        carry (6 significant digits from float32 arrays, 12 from float64)."""
        return float(f"{value:.{self.digits}g}")

    def value(self, key: str) -> float:
        """The one value of parameter ``key`` (an array of 1 or ``size`` equal numbers)."""
        where = f"node {self.name!r} ({self.kind})"
        try:
            array = np.asarray(getattr(self.node, key), dtype=np.float64)
        except (TypeError, ValueError):
            raise NeuropropError(f"{where}: {key} is not numeric") from None
        if array.size not in (1, self.size):
            raise NeuropropError(f"{where}: {key} has {array.size} values for a layer of "
                                 f"{self.size} neurons")
        first = array.flat[0]
        if np.isnan(array).any():
            raise NeuropropError(f"{where}: {key} holds NaN")
        if not (array == first).all():
            raise NeuropropError(f"{where}: {key} differs between the neurons of the layer "
                                 f"({array.min():g} to {array.max():g}); neuroprop has one "
                                 "value per layer")
        return float(first)

    def positive(self, key: str, allow_inf: bool = False) -> float:
        value = self.value(key)
        if not value > 0 or (math.isinf(value) and not allow_inf):
            raise NeuropropError(f"node {self.name!r} ({self.kind}): {key} = {value:g}; "
                                 "expected a positive finite number")
        return value

    def zero(self, key: str, why: str) -> None:
        value = self.value(key)
        if value != 0.0:
            raise NeuropropError(f"node {self.name!r} ({self.kind}): {key} = {value:g}, "
                                 f"not 0: {why}")


def _full(shape: tuple[int, ...], value: float) -> np.ndarray:
    return np.full(shape, value, dtype=np.float64)
