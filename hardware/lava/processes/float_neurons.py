"""floating_pt models for Lava's graded neurons, which lava-nc 0.10.0 ships as fixed_pt only.

The arithmetic is Lava's own (``AbstractGradedReluVecModel`` / ``AbstractGradedVecModel``:
v = a_in; s = v * (v > vth) or v * (|v| > vth)) on float64. The backend selects them
through ``Loihi2SimCfg(exception_proc_model_map=...)``.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.graded.models import AbstractGradedReluVecModel, AbstractGradedVecModel
from lava.proc.graded.process import GradedReluVec, GradedVec


@implements(proc=GradedReluVec, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGradedReluVecModelFloat(AbstractGradedReluVecModel):
    """GradedReluVec in float64."""

    a_in = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    exp: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=GradedVec, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGradedVecModelFloat(AbstractGradedVecModel):
    """GradedVec in float64."""

    a_in = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    exp: np.ndarray = LavaPyType(np.ndarray, float)
