"""Loihi fixed-point arithmetic as lava-nc 0.10.0's ``fixed_pt`` process models compute it.

Read from lava-nc 0.10.0's source (``proc/dense/models.py``, ``proc/sparse/models.py``,
``proc/conv/models.py`` + ``proc/conv/utils.py``, ``proc/graded/models.py``,
``proc/lif/models.py``, ``proc/io/source.py``, ``proc/io/sink.py``,
``utils/weightutils.py``) and checked bit for bit against runs of those models
(tests/hardware/lava/). This module is the single place that states it; the quantiser
keeps networks inside these limits, the layer and neuron kinds of the numpy emulator
(``hardware.layers``, ``hardware.neurons``) reproduce it, and the Lava backend relies
on it.

Integer types
    Every fixed-point port, buffer and state is ``np.int32``. The ``precision=24``
    annotations of the graded models are documentation only: nothing clips to 24 bits
    except the Conv model (below). Arithmetic that leaves int32 wraps (two's complement).

Dense and Sparse (``PyDenseModelBitAcc``, ``PySparseModelBitAcc``), per step::

    W_eff = truncate(clip(W_int))                       # once, at the first step
    acc   = wrap32(sum_j W_eff[i, j] * s[j])            # int32 dot product, wraps
    a     = wrap32(acc << e)  if e > 0  else  acc >> -e # >> is arithmetic: floor

- ``clip`` / ``truncate`` depend on the sign mode of the whole matrix
  (``determine_sign_mode``): all >= 0 is EXCITATORY: clip to [0, 255]; all <= 0 is
  INHIBITORY: clip to [-255, 0]; otherwise MIXED: clip to [-256, 255] and then drop
  the least significant bit (``(w >> 1) << 1``, floor to even), so 255 becomes 254
  and -255 becomes -256. Only even values in [-256, 254] survive unchanged for mixed
  signs: ``w_int = 2 * round(W * 127 / max|W|)`` is a safe encoding.
- ``e`` is the ``weight_exp`` proc-param. No rounding anywhere: a negative exponent
  floors, also for negative sums (-5 >> 1 == -3).
- Shifts by 32 or more follow numpy on int32: ``>>`` gives 0 or -1, ``<<`` gives 0.
- The result is sent one step later (``a_buff``): each connection adds one step of
  latency.
- With ``num_message_bits=0`` (Lava's default) graded input is binarised; graded
  networks must pass ``num_message_bits=24`` (any value > 0 behaves the same).

Conv (``PyConvModelFixed``), per step::

    acc = exact integer convolution (computed in float64 by scipy, exact below 2**53)
    a   = wrap24(int32(acc))        # signed 24-bit wraparound: (x + 2**23) % 2**24 - 2**23

- ``weight_exp`` is accepted by the Process but IGNORED by the model; weights are
  used as given (no clipping, no even-LSB truncation). ``int32(acc)`` of a value
  outside int32 gives -2**31 on x86 (numpy cast), which wraps to 0.
- Layout: input (W, H, C), output (W, H, C_out), kernel (C_out, kW, kH, C_in), and it
  is a true convolution (kernel flipped), not PyTorch's correlation.
- Hence ``hardware.layers.conv2d.runs_on_lava_conv``: a conv layer with
  ``weight_exp == 0`` runs on Lava's Conv; any other exponent runs on a Sparse
  connection holding the unrolled kernel, which applies the exponent with the
  Dense/Sparse arithmetic above.

Neurons (``PyGradedReluVecModelFixed``, ``PyGradedVecModelFixed``), stateless per step::

    v = a                                      # int32, reset to 0 after each step
    GradedReluVec: s = v * (v > vth)           # relu for vth = 0
    GradedVec:     s = v * (|v| > vth)         # identity for vth = 0

No saturation, no 24-bit clipping: the payload sent on is the full int32. Both
Processes default to ``vth=1``, which silently zeroes outputs equal to 1 (and -1):
always pass ``vth=0``. Both exist only as ``fixed_pt`` models in lava-nc 0.10.0.

LIF (``PyLifModelBitAcc`` / ``AbstractPyLifModelFixed``; ``PyLifModelFloat``), per step,
int32 state, ``lif_step_fixed``::

    u = trunc(u * (4096 - (du + 1)) / 4096) + wrap32(a_in << 6)   # then Lava's 24-bit wrap
    v = clip(trunc(v * (4096 - dv) / 4096) + u + bias, -(2^23 - 1), 2^23 - 1)
    s = v > (vth << 6);  v = 0 where s                            # reset to 0, not subtract

``du``, ``dv``: 12-bit unsigned (0..4095); ``vth``: 17-bit unsigned (0..131071);
``bias = bias_mant << bias_exp`` (13-bit signed mantissa, 3-bit exponent); u and v are
24-bit states (see ``lif_step_fixed`` for the exact wrap and clip). The float model
(``lif_step_float``) is u = u (1 - du) + a; v = v (1 - dv) + u + bias; s = v > vth.

I/O: ``io.source.RingBuffer`` sends int32 data, ``io.sink.RingBuffer`` stores int32.

On a real Loihi 2 (not verifiable here: Intel's lava-loihi is closed): synaptic
weights are 8-bit mantissas (9-bit signed range for mixed signs, as above) with a
per-connection exponent (nxsdk's Loihi 1 range: [-8, 7]); graded spikes carry up to
24-bit payloads (``MESSAGE_BITS``). A network that keeps every activation within the
24-bit payload and every pre-shift sum within int32 computes the same integers in
the simulator and (by Lava's bit-accuracy claim) on the chip.
"""

from __future__ import annotations

import numpy as np

from hardware.errors import HardwareError

WEIGHT_BITS = 8
"""Weight mantissa bits; mixed-sign matrices also use a sign bit (9-bit range)."""
WEIGHT_MIN = -256
"""Smallest weight a mixed-sign Dense/Sparse keeps."""
WEIGHT_MAX = 254
"""Largest weight a mixed-sign Dense/Sparse keeps (255 is truncated to 254)."""
WEIGHT_MAX_UNSIGNED = 255
"""Largest magnitude of a single-sign (excitatory or inhibitory) matrix."""

MESSAGE_BITS = 24
"""Graded-spike payload width: ``num_message_bits`` for Dense/Sparse/Conv."""
PAYLOAD_MIN = -(2 ** (MESSAGE_BITS - 1))
PAYLOAD_MAX = 2 ** (MESSAGE_BITS - 1) - 1
"""Activations the quantiser must stay within (the Conv output wraps outside it)."""

ACCUMULATOR_BITS = 32
ACCUMULATOR_MIN = -(2 ** (ACCUMULATOR_BITS - 1))
ACCUMULATOR_MAX = 2 ** (ACCUMULATOR_BITS - 1) - 1
"""Range of the pre-shift sum W_int . s in Dense/Sparse (int32, wraps outside)."""

WEIGHT_EXP_MIN = -31
WEIGHT_EXP_MAX = 31
"""Exponents accepted: shifts of an int32 that keep at least one bit (the simulator
takes any integer; beyond 31 numpy's shifts give only 0 or -1)."""
LOIHI1_WEIGHT_EXP_RANGE = (-8, 7)
"""Loihi 1's documented weight-exponent register range (nxsdk); Loihi 2's is unpublished."""

INPUT_BITS = 8
"""Inputs are unsigned 8-bit graded payloads (the RingBuffer itself carries int32)."""

NEURON_THRESHOLD = 0
"""``vth`` for GradedReluVec (relu) and GradedVec (identity)."""

LIF_DECAY_BITS = 12
LIF_DECAY_UNITY = 2**LIF_DECAY_BITS
LIF_DECAY_MAX = LIF_DECAY_UNITY - 1
"""``du``, ``dv``: 12-bit unsigned, 0..4095; decay factors are (4096 - decay) / 4096."""
LIF_CURRENT_DECAY_OFFSET = 1
"""Lava's ``ds_offset``: the current decays by du + 1, so du = 4095 empties u each step."""
LIF_VTH_BITS = 17
LIF_VTH_MAX = 2**LIF_VTH_BITS - 1
"""``vth``: 17-bit unsigned, 0..131071."""
LIF_MSB_SHIFT = 6
"""Synaptic input and threshold are shifted left by 6 bits to align with u and v."""
LIF_STATE_BITS = 24
LIF_VOLTAGE_MAX = 2 ** (LIF_STATE_BITS - 1) - 1
"""u and v are 24-bit: v is clipped to +-(2^23 - 1), u wrapped (``lif_step_fixed``)."""

INT32 = np.int32


def wrap_signed(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wraparound of integers to ``bits`` bits: (x + 2^(b-1)) mod 2^b - 2^(b-1)."""
    base = np.int64(1) << bits
    half = base >> 1
    return (np.asarray(values, dtype=np.int64) + half) % base - half


def sign_mode_effective_weights(weight_int: np.ndarray) -> np.ndarray:
    """The int32 weights a fixed-point Dense/Sparse actually multiplies with.

    Sign mode of the whole matrix: all >= 0: clip [0, 255]; all <= 0: clip [-255, 0];
    mixed: clip [-256, 255], then floor to even ((w >> 1) << 1).
    """
    w = np.asarray(weight_int, dtype=np.int64)
    if w.size == 0 or w.min() >= 0:
        return np.clip(w, 0, WEIGHT_MAX_UNSIGNED).astype(INT32)
    if w.max() <= 0:
        return np.clip(w, -WEIGHT_MAX_UNSIGNED, 0).astype(INT32)
    clipped = np.clip(w, WEIGHT_MIN, WEIGHT_MAX_UNSIGNED)
    return ((clipped >> 1) << 1).astype(INT32)


def apply_weight_exp(accumulator: np.ndarray, weight_exp: int) -> np.ndarray:
    """Dense/Sparse output for an integer sum: acc = wrap32(sum), then ``acc << e``
    (wrapping) or ``acc >> -e`` (floor), int32."""
    acc = np.asarray(accumulator).astype(INT32)
    if weight_exp > 0:
        return np.left_shift(acc, INT32(weight_exp))
    return np.right_shift(acc, INT32(-weight_exp))


def conv_output(exact_sum: np.ndarray) -> np.ndarray:
    """What Lava's fixed-point Conv sends for an exact integer sum: wrap24(int32(sum)).

    Sums outside int32 become -2^31 (numpy's float-to-int32 cast on x86), i.e. 0.
    """
    s = np.asarray(exact_sum, dtype=np.int64)
    in_range = (s >= ACCUMULATOR_MIN) & (s <= ACCUMULATOR_MAX)
    as_int32 = np.where(in_range, s, ACCUMULATOR_MIN)
    return wrap_signed(as_int32, MESSAGE_BITS).astype(INT32)


def graded_relu_vec(activation: np.ndarray, vth: int = NEURON_THRESHOLD) -> np.ndarray:
    """GradedReluVec: ``s = v * (v > vth)`` with v = int32(a); relu for vth = 0."""
    v = np.asarray(activation).astype(INT32)
    return v * (v > vth)


def graded_vec(activation: np.ndarray, vth: int = NEURON_THRESHOLD) -> np.ndarray:
    """GradedVec: ``s = v * (|v| > vth)`` with v = int32(a); the identity for vth = 0."""
    v = np.asarray(activation).astype(INT32)
    return v * (np.abs(v) > vth)


def check_weight_mantissas(weight_int: np.ndarray, where: str) -> None:
    """Refuse mantissas that a fixed-point Dense/Sparse would alter (clip or truncate)."""
    w = np.asarray(weight_int)
    altered = np.count_nonzero(sign_mode_effective_weights(w) != w)
    if altered:
        raise HardwareError(
            f"{where}: {altered} weight mantissas would be altered by Loihi's weight rules "
            f"(mixed signs: even values in [{WEIGHT_MIN}, {WEIGHT_MAX}]; single sign: "
            f"|w| <= {WEIGHT_MAX_UNSIGNED}); re-quantise with hardware.quantize"
        )


def check_weight_exponent(weight_exp: int, where: str) -> None:
    """Refuse an exponent that is not an integer in [WEIGHT_EXP_MIN, WEIGHT_EXP_MAX]."""
    if isinstance(weight_exp, bool) or not isinstance(weight_exp, (int, np.integer)):
        raise HardwareError(
            f"{where}: weight_exp {weight_exp!r} is not an integer; re-quantise with "
            "hardware.quantize"
        )
    if not WEIGHT_EXP_MIN <= int(weight_exp) <= WEIGHT_EXP_MAX:
        raise HardwareError(
            f"{where}: weight_exp {int(weight_exp)} is outside [{WEIGHT_EXP_MIN}, "
            f"{WEIGHT_EXP_MAX}]; re-quantise with hardware.quantize"
        )


def lif_step_fixed(
    u: np.ndarray,
    v: np.ndarray,
    a_in: np.ndarray,
    du: int,
    dv: int,
    vth: int,
    bias: int | np.ndarray = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of Lava's bit-accurate LIF (``PyLifModelBitAcc``): new (u, v) and spikes.

    With int32 state u, v, integer input ``a_in``, ``du``, ``dv`` in 0..4095, ``vth``
    in 0..131071 and ``bias = bias_mant << bias_exp`` (Lava's ``effective_bias``)::

        p  = u * (4096 - (du + 1))                  # int64; ds_offset = 1
        u' = sign(p) * (|p| >> 12) + wrap32(a_in << 6)       (int32 sum: wraps)
        u' = u' - 2^24 if u' > 2^23;  u' + 2^24 if u' <= -2^23   (Lava's 24-bit wrap)
        q  = v * (4096 - dv)                        # dm_offset = 0
        v' = clip(sign(q) * (|q| >> 12) + u' + bias, -(2^23 - 1), 2^23 - 1)
        s  = v' > (vth << 6);  v' = 0 where s

    Decays truncate toward zero. Lava's 24-bit "wrap" of u is one correction by 2^24,
    not a modulo: a sum beyond +-3 * 2^23 (an input above 2^18) leaves u outside 24
    bits, as Lava does. ``a_in`` is taken as int32: Lava's channels carry the sender's
    int32 (Dense, RingBuffer), and the LIF port's int16 annotation narrows nothing, for
    its ``recv`` adds the int32 message to an int16 zero vector, which numpy promotes
    to int32 (tests/hardware/lava/test_lava_lif.py). ``a_in << 6`` wraps in int32 for
    |a_in| >= 2^25.

    In units of the input (u, v divided by 2^6), this approximates ``lif_step_float``
    with current decay (du + 1) / 4096, voltage decay dv / 4096, threshold vth and
    bias / 2^6. Returns int32 u, int32 v, bool spikes.
    """
    _check_lif_constants(du, dv, vth)
    u, v = lif_integrate_fixed(u, v, a_in, du, dv, bias)
    s = v > (int(vth) << LIF_MSB_SHIFT)
    v = np.where(s, 0, v)
    return u.astype(INT32), v.astype(INT32), s


def lif_integrate_fixed(
    u: np.ndarray, v: np.ndarray, a_in: np.ndarray, du: int, dv: int,
    bias: int | np.ndarray = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``lif_step_fixed`` up to the threshold: the new u and v before any reset, int64."""
    half = 1 << (LIF_STATE_BITS - 1)
    u = lif_current_fixed(u, a_in, du)
    u = np.where(u > half, u - 2 * half, np.where(u <= -half, u + 2 * half, u))
    v = _decayed(wrap_signed(v, ACCUMULATOR_BITS), LIF_DECAY_UNITY - dv)
    v = wrap_signed(v + u + np.asarray(bias, dtype=np.int64), ACCUMULATOR_BITS)
    return u, np.clip(v, -LIF_VOLTAGE_MAX, LIF_VOLTAGE_MAX)


def lif_current_fixed(u: np.ndarray, a_in: np.ndarray, du: int) -> np.ndarray:
    """The LIF's new current before Lava's 24-bit wrap, int64 (``lif_step_fixed``)::

        u' = wrap32(sign(p) * (|p| >> 12) + wrap32(a_in << 6)),  p = u * (4096 - (du + 1))

    Lava keeps it unchanged while |u'| <= 2^23 (``-2^23`` itself wraps); the quantiser
    checks that it stays inside.
    """
    u = _decayed(wrap_signed(u, ACCUMULATOR_BITS), LIF_DECAY_UNITY - du - LIF_CURRENT_DECAY_OFFSET)
    current = wrap_signed(wrap_signed(a_in, ACCUMULATOR_BITS) << LIF_MSB_SHIFT, ACCUMULATOR_BITS)
    return wrap_signed(u + current, ACCUMULATOR_BITS)


def lif_step_float(
    u: np.ndarray,
    v: np.ndarray,
    a_in: np.ndarray,
    du: float,
    dv: float,
    vth: float,
    bias: float | np.ndarray = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of Lava's float LIF (``PyLifModelFloat``), in float64::

        u' = u * (1 - du) + a_in
        v' = v * (1 - dv) + u' + bias
        s  = v' > vth;  v' = 0 where s

    ``du``, ``dv`` are the fractions lost per step (0: no decay, 1: none kept).
    Returns float64 u, float64 v, bool spikes.
    """
    u = np.asarray(u, dtype=np.float64) * (1 - du) + np.asarray(a_in, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64) * (1 - dv) + u + bias
    s = v > vth
    return u, np.where(s, 0.0, v), s


def _decayed(state: np.ndarray, factor: int) -> np.ndarray:
    """``sign(p) * (|p| >> 12)`` for p = state * factor: the product / 4096, truncated."""
    product = state * np.int64(factor)
    return np.sign(product) * (np.abs(product) >> LIF_DECAY_BITS)


def _check_lif_constants(du: int, dv: int, vth: int) -> None:
    for name, value, high in (
        ("du", du, LIF_DECAY_MAX),
        ("dv", dv, LIF_DECAY_MAX),
        ("vth", vth, LIF_VTH_MAX),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or not (0 <= value <= high)
        ):
            raise HardwareError(
                f"LIF {name} {value!r} is not an integer in 0..{high} (Loihi's register "
                f"width); map the float constant into that range"
            )
