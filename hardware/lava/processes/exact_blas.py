"""A faster, bit-identical fixed-point model for Lava's Dense Process.

Lava's ``PyDenseModelBitAcc`` multiplies int32 weights with int32 graded spikes in
numpy's integer matmul, which uses no BLAS (about 1 ms for a 1500x784 matrix here).
``PyDenseModelExactBlas`` computes the same int32 dot product as a float64 BLAS
matvec whenever it is provably exact, i.e. when every partial sum is below 2^53::

    max_i sum_j |W_ij| * max_j |s_j| < 2^53

then wraps the exact sum to int32 (as the int32 matmul does) and applies
``weight_exp`` exactly as Lava's model does (``<<`` or flooring ``>>``). Otherwise
it falls back to Lava's int32 matmul. Weight clipping and even-LSB truncation are
Lava's own code (the parent class). The backend selects it through
``Loihi2SimCfg(exception_proc_model_map={Dense: PyDenseModelExactBlas})``.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import PyDenseModelBitAcc
from lava.proc.dense.process import Dense
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

from hardware.layers.base import EXACT_FLOAT_LIMIT


@implements(proc=Dense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "exact_blas")
class PyDenseModelExactBlas(PyDenseModelBitAcc):
    """``PyDenseModelBitAcc`` with the graded dot product as an exact float64 matvec."""

    def run_spk(self) -> None:
        weight_exp = self.proc_params.get("weight_exp", 0)
        if not self.weights_set:
            num_weight_bits = self.proc_params.get("num_weight_bits", 8)
            sign_mode = self.proc_params.get("sign_mode") or determine_sign_mode(self.weights)
            self.weights = clip_weights(self.weights, sign_mode, num_bits=8)
            self.weights = truncate_weights(self.weights, sign_mode, num_weight_bits)
            self.weights_set = True
            self._weights_float = self.weights.astype(np.float64)
            self._row_bound = float(np.abs(self._weights_float).sum(axis=1).max(initial=0))

        self.a_out.send(self.a_buff)
        if self.num_message_bits.item() > 0:
            s_in = self.s_in.recv()
            s_float = s_in.astype(np.float64)
            if self._row_bound * float(np.abs(s_float).max(initial=0)) < EXACT_FLOAT_LIMIT:
                exact = np.rint(self._weights_float.dot(s_float))
                a_accum = exact.astype(np.int64).astype(np.int32)
            else:
                a_accum = self.weights.dot(s_in)
        else:
            s_in = self.s_in.recv().astype(bool)
            a_accum = self.weights[:, s_in].sum(axis=1)
        self.a_buff = (
            np.left_shift(a_accum, weight_exp)
            if weight_exp > 0
            else np.right_shift(a_accum, -weight_exp)
        )
