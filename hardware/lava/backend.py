"""Run an exported network on Lava's Loihi 2 simulator and read its Q-values.

``run_on_lava`` builds the process graph once, compiles it once and streams all N
samples through it in one ``run()`` of N + depth steps: a stateless graded network
takes a new sample every step (pipelined), and each connection adds one step of
latency (see ``hardware.lava.network``). Inputs go in and Q-values come out through
memory-mapped ``.npy`` files in a temporary folder, so nothing is copied per sample.

``run_on_lava_per_sample`` is the slow approach, kept to measure what streaming
saves: one compiled graph, but per sample a Var set of the input, a run of
depth + 1 steps and a Var get of the output.

Spiking nets run each sample for T = ``net.timesteps`` steps: N samples take N T + depth
steps, and the Q-values are the read-out's v[T] (``hardware.spiking``), optionally with
each LIF layer's spike counts per sample.

Fixed point (default): integer weights, ``Loihi2SimCfg(select_tag="fixed_pt")``,
int64 Q-values equal to ``hardware.emulator.forward_fixed``. Floating point: float
weights and inputs ``x * input_scale``, ``select_tag="floating_pt"`` (with the float
models each neuron kind names, ``hardware.neurons``), float64 Q-values equal to
``forward_float``.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as SinkRingBuffer
from lava.proc.io.source import RingBuffer as SourceRingBuffer

from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, check_samples
from hardware.lava import network, runtime
from hardware.lava.processes.exact_blas import PyDenseModelExactBlas
from hardware.neurons import NEURON_KINDS

DENSE_MODELS = ("lava", "blas")


@dataclass
class LavaResult:
    """Q-values (N, num_classes) of a Lava run and where its time went.

    ``seconds_build``: process graph, compilation and runtime start;
    ``seconds_run``: streaming the samples (the run itself). ``spike_counts``: when
    asked for (spiking nets), per LIF layer index its spikes per sample, (N, *out_shape).
    """

    q: np.ndarray
    seconds_build: float
    seconds_run: float
    steps: int
    spike_counts: dict[int, np.ndarray] | None = None

    @property
    def samples_per_second(self) -> float:
        return len(self.q) / self.seconds_run if self.seconds_run > 0 else float("inf")


def run_on_lava(
    net: HardwareNetwork,
    x_int: np.ndarray,
    mode: str = "fixed",
    dense_model: str = "lava",
    spike_counts: bool = False,
) -> LavaResult:
    """Stream ``x_int`` (N, *input_shape) uint8 through ``net`` on Lava; Q-values per sample
    (spiking nets: the read-out's v[T], int64 in fixed point).

    ``dense_model`` (fixed point only): "lava" runs Lava's own bit-accurate Dense model,
    "blas" the bit-identical ``PyDenseModelExactBlas`` (exact float64 matvec, faster).
    ``spike_counts`` (spiking nets): also record each LIF layer's spikes per sample.
    """
    if spike_counts and net.substrate != "spiking":
        raise HardwareError("spike_counts needs a spiking net; pass spike_counts=False")
    rows = _prepared_inputs(net, x_int, mode)
    config = run_config(mode, dense_model)
    out_dtype = np.int32 if mode == "fixed" else np.float64
    hidden = enumerate(net.layers[:-1])
    counted = [index for index, layer in hidden if layer.has_weights] if spike_counts else []
    with tempfile.TemporaryDirectory(prefix="neuroprop-lava-") as folder:
        input_path, output_path = Path(folder) / "inputs.npy", Path(folder) / "q.npy"
        np.save(input_path, rows)
        _zeros(output_path, out_dtype, (len(rows), net.num_classes))
        count_paths = {index: str(Path(folder) / f"counts{index}.npy") for index in counted}
        for index, path in count_paths.items():
            _zeros(Path(path), out_dtype, (len(rows), int(np.prod(net.layers[index].out_shape))))
        start = time.perf_counter()
        graph = network.build_process_graph(
            net, mode, str(input_path), str(output_path), len(rows), count_paths
        )
        steps = len(rows) * int(net.timesteps) + graph.chain.depth
        with runtime.managed_runtime(graph.source):
            runtime.create_runtime(graph.source, config)
            built = time.perf_counter()
            runtime.run_steps(graph.source, steps)
            finished = time.perf_counter()
        result_dtype = np.int64 if mode == "fixed" else np.float64
        q = np.load(output_path).astype(result_dtype)
        counts = {
            index: np.load(path)
            .astype(result_dtype)
            .reshape((len(rows), *net.layers[index].out_shape))
            for index, path in count_paths.items()
        }
    return LavaResult(
        q=q,
        seconds_build=built - start,
        seconds_run=finished - built,
        steps=steps,
        spike_counts=counts if spike_counts else None,
    )


def _zeros(path: Path, dtype: type, shape: tuple[int, ...]) -> None:
    """An all-zero ``.npy`` of ``shape`` at ``path`` that the sinks write into."""
    np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()


def run_on_lava_per_sample(
    net: HardwareNetwork, x_int: np.ndarray, mode: str = "fixed", dense_model: str = "lava"
) -> LavaResult:
    """The slow way, for comparison: per sample a Var set, depth + 1 steps and a Var get
    (rate nets only: spiking neurons reset on a schedule that assumes streaming)."""
    if net.substrate != "rate":
        raise HardwareError(
            f"run_on_lava_per_sample runs rate nets, not {net.substrate} ones; use run_on_lava"
        )
    rows = _prepared_inputs(net, x_int, mode)
    config = run_config(mode, dense_model)
    start = time.perf_counter()
    source = SourceRingBuffer(data=rows[0][:, None])
    chain = network.build_connections(net, mode, source.s_out)
    sink = SinkRingBuffer(shape=(net.num_classes,), buffer=1)
    chain.output.connect(sink.a_in)
    q = np.zeros((len(rows), net.num_classes))
    with runtime.managed_runtime(source):
        runtime.create_runtime(source, config)
        built = time.perf_counter()
        for index, row in enumerate(rows):
            if index > 0:  # a Var can be set only once the runtime has started
                source.data.set(row[:, None])
            runtime.run_steps(source, chain.depth + 1)
            q[index] = sink.data.get()[:, 0]
        finished = time.perf_counter()
    q = q.astype(np.int64) if mode == "fixed" else q
    steps = len(rows) * (chain.depth + 1)
    return LavaResult(q=q, seconds_build=built - start, seconds_run=finished - built, steps=steps)


def run_config(mode: str, dense_model: str = "lava") -> Loihi2SimCfg:
    """``fixed_pt`` models (Dense: Lava's or the exact-BLAS one), or ``floating_pt`` ones
    with the float models of every neuron kind added."""
    if dense_model not in DENSE_MODELS:
        raise HardwareError(
            f"dense_model {dense_model!r} is not one of {DENSE_MODELS}; pass 'lava' or 'blas'"
        )
    if mode == "fixed":
        exceptions = {Dense: PyDenseModelExactBlas} if dense_model == "blas" else {}
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=exceptions)
    float_models: dict[type, type] = {}
    for kind in NEURON_KINDS.values():
        float_models.update(kind.lava_float_models())
    return Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map=float_models)


def _prepared_inputs(net: HardwareNetwork, x_int: np.ndarray, mode: str) -> np.ndarray:
    """Validated inputs as (N, D) rows: int32 payloads, or float64 x * input_scale."""
    network.check_supported(net, mode)
    x = check_samples(net, x_int, integers=True, nonempty=True)
    rows = x.reshape(len(x), -1)
    if mode == "fixed":
        return rows.astype(np.int32)
    return rows.astype(np.float64) * float(net.input_scale)
