"""The read-out of a spiking net: Lava's LIF with reset that also sends its voltage.

``VoltageReadout`` is ``lava.proc.lif.process.LIFReset`` (same Vars, same parameters)
with one more OutPort, ``v_out``, which sends v after every step, so that a sink can
record v[T] of each sample while the whole split streams through one run. Its models
are Lava's LIF-with-reset models (``PyLifResetModelBitAcc`` / ``PyLifResetModelFloat``:
state zeroed when time_step % reset_interval == reset_offset, then Lava's own
``subthr_dynamics``, spike and reset) plus that send. Lava refuses a model subclass
that implements a different Process, so the reset step is restated here on Lava's
abstract LIF models.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat
from lava.proc.lif.process import LIFReset


class VoltageReadout(LIFReset):
    """LIFReset whose ``v_out`` port sends the voltage v after every step."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.v_out = OutPort(shape=self.s_out.shape)


class _ResetStep:
    """The reset schedule of Lava's LIF-with-reset models."""

    def _setup_reset(self) -> None:
        self.reset_interval = self.proc_params["reset_interval"]
        self.reset_offset = self.proc_params["reset_offset"] % self.reset_interval

    def _reset_due(self) -> bool:
        return self.time_step % self.reset_interval == self.reset_offset


@implements(proc=VoltageReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyVoltageReadoutModelFixed(_ResetStep, AbstractPyLifModelFixed):
    """``PyLifResetModelBitAcc`` plus ``v_out`` (int32 v)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.effective_vth = 0
        self._setup_reset()

    def scale_threshold(self) -> None:
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        if self._reset_due():
            self.u *= 0
            self.v *= 0
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in_data)
        s_out = self.v > self.effective_vth
        self.reset_voltage(spike_vector=s_out)
        self.s_out.send(s_out)
        self.v_out.send(self.v)


@implements(proc=VoltageReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyVoltageReadoutModelFloat(_ResetStep, AbstractPyLifModelFloat):
    """``PyLifResetModelFloat`` plus ``v_out`` (float64 v)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._setup_reset()

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        if self._reset_due():
            self.u *= 0
            self.v *= 0
        self.subthr_dynamics(activation_in=a_in_data)
        s_out = self.v > self.vth
        self.reset_voltage(spike_vector=s_out)
        self.s_out.send(s_out)
        self.v_out.send(self.v)
