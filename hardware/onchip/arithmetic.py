"""Loihi's learning engine as lava-nc 0.10.0's ``LearningDense`` models compute it.

Read from lava-nc 0.10.0's source (``magma/core/model/py/connection.py``,
``magma/core/learning/learning_rule_applier.py``, ``magma/core/learning/random.py``,
``magma/core/learning/constants.py``, ``utils/weightutils.py``) and checked bit for bit
against runs of those models (tests/hardware/lava/test_onchip_lava.py). This module is
the single place that states it; ``hardware.onchip.model`` reproduces a learning run
with it, and the Lava process models of ``hardware.lava.processes.learning`` compute
the neurons' factors with ``factor_fixed``.

The rule neuroprop uses on every learning synapse is a three-factor product::

    dw = m 2^e x0 x1 y2 - m 2^e x0 x1 y3          (Loihi3FLearningRule, t_epoch = T)

Learning runs once per trial, at the end of its T steps (``time_step % T == 0``).

Pre trace x1 (``GradedSpikeCfg.OVERWRITE``)
    A pre unit "spikes" at within-epoch step tx when its graded payload s is non-zero;
    then x0 = 1 and x1 = uint8(round_half_even(s / 2)) in fixed point (s / 2 in float).
    Payloads above 511 wrap there: pre activities are kept below 256.
Post traces y1, y2, y3
    Whatever the post neuron sent on its y ports in the learning step (7-bit unsigned
    values in fixed point: a signed factor is split into y2 = max(f, 0), y3 = max(-f, 0)).
Evaluation at the pre spike (``x0`` products)
    Both traces are decayed from their current value to the pre unit's spike step tx::

        h[0] = trace,  h[t] = decay(h[t - 1]),  evaluated: h[tx]
        float:  decay(v) = exp(-1 / tau) v
        fixed:  decay(v) = floor(exp(-1 / tau) v) + (r < frac(exp(-1 / tau) v))

    with ONE random number r per connection and learning step (``TraceRandom``: numpy's
    ``default_rng(seed)``, seeds rng_seed, rng_seed + 1 for x and rng_seed + 2,
    rng_seed + 3 for y; a draw at construction and two per time step, so at time step t
    the decay uses draw number 2 t). An x trace is also clipped to [0, 127] at its
    spike step. The y taus of a three-factor rule are 65535 (uint16 max), set by Lava.
Product (fixed point), per synapse, in an accumulator of 16 bits that holds w << 7::

    p   = x0 * clip(x1, -128, 127) * clip(y, -128, 127) * m     (int32)
    p   = (p >> 3) << (e + 7)          # 3 = 7 + 7 + 4 - 15 bits of the product dropped
    acc = clip(clip(w << 7 + p_y2 ...) to [-2^15 - 1, 2^15 - 1]  after each product
    w'  = stochastic_round(acc / 128) clipped to [-256, 255]

    stochastic_round(v) = floor(v) + (r_w < frac(v)), with ONE number r_w per
    connection and learning step (``ConnVarRandom``, seed 2 whatever ``rng_seed`` is:
    draw number k at the k-th learning step).
Float: w' = w + m 2^e x0 x1 (y2 - y3), evaluated traces as above.

So in fixed point a product of traces counts 1/8 of its float value (the >> 3), one
weight LSB is the smallest step, and stochastic rounding is shared by all synapses of
a connection at a step. Initial weights are truncated once, at the first step, like
any Dense weights (``hardware.loihi``); learned weights are not.
"""

from __future__ import annotations

import numpy as np

TRACE_BITS = 7
TRACE_MAX = 2**TRACE_BITS - 1
"""Traces are 7-bit unsigned (``W_TRACE``)."""
FACTOR_MIN = -(2**TRACE_BITS)
PRODUCT_DROP_BITS = 3
"""x1 (7 bits) * y (7 bits) * mantissa (4 bits) = 18 bits in a 15-bit accumulator."""
ACCUMULATOR_SHIFT = 7
"""Weights sit in the accumulator as w << 7 (``W_ACCUMULATOR_S - W_WEIGHTS_S``)."""
ACCUMULATOR_LIMIT = 2**15 - 1
"""The accumulator saturates at +-(2^15 - 1) (Lava clips the low side to -2^15 - 1)."""
LEARNED_WEIGHT_MIN = -256
LEARNED_WEIGHT_MAX = 255
Y_TAU = 65535
"""The decay constant Lava gives every y trace of a three-factor rule."""
WEIGHT_RNG_SEED = 2
"""``ConnVarRandom``'s fixed seed."""
PRE_PAYLOAD_MAX = 255
"""Pre activities above this would wrap (or saturate) the 7-bit x1 trace."""
MANTISSA_MAX = 7
EXPONENT_RANGE = (-7, 8)
"""A rule constant is m 2^e with |m| <= 7 and e in [-7, 8]."""


def pre_trace_fixed(payload: np.ndarray) -> np.ndarray:
    """x1 after a graded spike of ``payload`` (OVERWRITE): uint8(round_half_even(s / 2))."""
    return np.round(payload / 2).astype(np.uint8).astype(np.int64)


def decay_fixed(values: np.ndarray, steps: int, tau: float, random: float) -> np.ndarray:
    """``steps`` stochastic decays of an integer trace with one random number."""
    values = np.asarray(values, dtype=np.int64)
    for _ in range(steps):
        scaled = np.exp(-1 / tau) * values
        fraction = scaled % 1
        values = (np.floor(scaled) + (random < fraction).astype(int)).astype(int)
    return values


def decay_float(values: np.ndarray, steps: int, tau: float) -> np.ndarray:
    for _ in range(steps):
        values = np.exp(-1 / tau) * values
    return values


def apply_fixed(
    weights: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    y2: np.ndarray,
    y3: np.ndarray,
    mantissa: int,
    exponent: int,
    random: float,
) -> np.ndarray:
    """One learning step of ``weights`` (post, pre) in fixed point (module docstring).

    x0, x1: (pre,) dependency and evaluated x1 trace; y2, y3: (post,) evaluated traces.
    """
    accumulator = weights.astype(np.int32) << ACCUMULATOR_SHIFT
    for sign, y in ((1, y2), (-1, y3)):
        product = np.ones(weights.shape, dtype=np.int32)
        product *= np.asarray(x0, dtype=bool)[None, :]
        product *= np.clip(x1, FACTOR_MIN, TRACE_MAX).astype(np.int32)[None, :]
        product *= np.clip(y, FACTOR_MIN, TRACE_MAX).astype(np.int32)[:, None]
        product *= sign * mantissa
        product = np.left_shift(np.right_shift(product, PRODUCT_DROP_BITS), exponent + 7)
        product = np.clip(product, -ACCUMULATOR_LIMIT - 2, ACCUMULATOR_LIMIT)
        accumulator = np.clip(accumulator + product, -ACCUMULATOR_LIMIT - 2, ACCUMULATOR_LIMIT)
    scaled = accumulator / 2**ACCUMULATOR_SHIFT
    fraction = scaled % 1
    rounded = (np.floor(scaled) + (random < fraction).astype(int)).astype(int)
    rounded = (rounded * 2**ACCUMULATOR_SHIFT).astype(accumulator.dtype) >> ACCUMULATOR_SHIFT
    return np.clip(rounded, LEARNED_WEIGHT_MIN, LEARNED_WEIGHT_MAX).astype(np.int32)


def factor_fixed(values: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """A signed integer factor as the two 7-bit traces (y2, y3) a post neuron sends:
    |f| scaled by 2^-shift with rounding to nearest (shift >= 1) or 2^-shift (shift <= 0),
    then clipped to [0, 127]."""
    magnitude = np.abs(np.asarray(values, dtype=np.int64))
    if shift > 0:
        magnitude = (magnitude + (1 << (shift - 1))) >> shift
    else:
        magnitude = magnitude << -shift
    magnitude = np.minimum(magnitude, TRACE_MAX)
    positive = np.asarray(values) > 0
    return np.where(positive, magnitude, 0), np.where(positive, 0, magnitude)


def factor_float(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A signed float factor as (y2, y3) = (max(f, 0), max(-f, 0))."""
    values = np.asarray(values, dtype=np.float64)
    return np.maximum(values, 0.0), np.maximum(-values, 0.0)


class RandomStream:
    """Draws of ``default_rng(seed)`` by index, generated in blocks (index 0 first)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._values = np.empty(0)

    def __getitem__(self, index: int) -> float:
        while index >= len(self._values):
            self._values = np.concatenate([self._values, self._rng.random(4096)])
        return float(self._values[index])
