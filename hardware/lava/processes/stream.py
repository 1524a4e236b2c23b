"""Stream a data split through a compiled network: a source reading an ``.npy`` file and a
sink writing one, one row per time step, so no Var get/set happens per sample.

NpySource at step t (1-based) sends row (t - 1) // repeat of an (N, D) array (each row
for ``repeat`` steps: T for spiking nets), zeros once that row is past N.
NpySink at step t writes what it receives into row (t - 1 - latency) // interval when
that row exists (0 <= row < N): the last write of a row's ``interval`` steps stays
(``accumulate``: they add up, e.g. spike counts). With a network of ``latency``
connection layers and ``interval = repeat``, row i of the sink holds the output for row
i of the source.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class NpySource(AbstractProcess):
    """Sends row ``(time_step - 1) // repeat`` of the (N, size) array in ``path``
    (memory-mapped)."""

    def __init__(self, *, path: str, size: int, num_samples: int, repeat: int = 1) -> None:
        super().__init__(path=path, size=size, num_samples=num_samples, repeat=repeat)
        self.s_out = OutPort(shape=(size,))


class NpySink(AbstractProcess):
    """Writes (or with ``accumulate`` adds) its input at step t into row
    ``(t - 1 - latency) // interval`` of the (N, size) ``path``."""

    def __init__(
        self,
        *,
        path: str,
        size: int,
        num_samples: int,
        latency: int,
        interval: int = 1,
        accumulate: bool = False,
    ) -> None:
        super().__init__(
            path=path,
            size=size,
            num_samples=num_samples,
            latency=latency,
            interval=interval,
            accumulate=accumulate,
        )
        self.a_in = InPort(shape=(size,))


class _NpySourceModel(PyLoihiProcessModel):
    s_out = None
    dtype = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._rows = None
        self._zeros = np.zeros(self.proc_params["size"], self.dtype)

    def run_spk(self) -> None:
        if self._rows is None:
            self._rows = np.load(self.proc_params["path"], mmap_mode="r")
        row = (self.time_step - 1) // self.proc_params["repeat"]
        if row < self.proc_params["num_samples"]:
            self.s_out.send(np.asarray(self._rows[row], dtype=self.dtype))
        else:
            self.s_out.send(self._zeros)


@implements(proc=NpySource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNpySourceModelFixed(_NpySourceModel):
    """Integer rows as int32 graded payloads."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    dtype = np.int32


@implements(proc=NpySource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNpySourceModelFloat(_NpySourceModel):
    """Float rows as float64 payloads."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    dtype = np.float64


class _NpySinkModel(PyLoihiProcessModel):
    a_in = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._rows = None

    def run_spk(self) -> None:
        data = self.a_in.recv()
        row = (self.time_step - 1 - self.proc_params["latency"]) // self.proc_params["interval"]
        if self.time_step > self.proc_params["latency"] and row < self.proc_params["num_samples"]:
            if self._rows is None:
                self._rows = np.load(self.proc_params["path"], mmap_mode="r+")
            if self.proc_params["accumulate"]:
                self._rows[row] += data
            else:
                self._rows[row] = data


@implements(proc=NpySink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNpySinkModelFixed(_NpySinkModel):
    """Receives int32 payloads."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)


@implements(proc=NpySink, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNpySinkModelFloat(_NpySinkModel):
    """Receives float64 payloads."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
