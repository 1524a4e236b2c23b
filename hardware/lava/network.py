"""Build the Lava process graph of an exported network (fixed or floating point).

One graph streams a whole data split: ``NpySource`` -> per layer the connection its
layer kind lowers to (``LayerKind.lower`` in ``hardware.layers``: Dense, Conv or
Sparse; nothing for flatten; max pooling refused) -> per weight layer the neuron
population of its neuron kind (``NeuronKind.lava_neurons`` in ``hardware.neurons``:
GradedReluVec or GradedVec with vth=0) -> ``NpySink``. Every population is a flat
C,H,W-ordered vector. Every connection delays by one step, so the sink sees sample i
at step i + 1 + depth.

Spiking nets (T = ``net.timesteps`` steps per sample): the source sends each sample for
T steps; the first connection takes the graded input (``num_message_bits=24``), the
others binary spikes (``num_message_bits=0``); the neurons are ``LIFReset`` (``lif``)
and ``VoltageReadout`` (``li``, whose ``v_out`` the sink records). The neurons behind
``depth`` connections handle step j of sample i at Lava step i T + j + 1 + depth, so
they reset their state when step % T == (1 + depth) % T, and the sink keeps the last
of each sample's T steps: v[T]. Optional spike-count sinks add up each LIF layer's
spikes per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess

from hardware import loihi
from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, lava_refusal, layer_name
from hardware.lava.processes.stream import NpySink, NpySource
from hardware.layers import layer_kind
from hardware.neurons import Placement, neuron_kind

MODES = ("fixed", "float")


@dataclass
class Chain:
    """The connections and neurons of a network: ``output`` carries the Q-values,
    ``depth`` steps after the input reached the first connection; ``spikes`` holds, per
    spiking hidden layer (by layer index), its spike port and its depth."""

    processes: list[AbstractProcess]
    output: OutPort
    depth: int
    spikes: dict[int, tuple[OutPort, int]]


@dataclass
class ProcessGraph:
    """Source, chain and sinks of one streaming run; run (and stop) ``source``.
    ``count_sinks``: per spiking hidden layer, the sink adding up its spikes."""

    source: NpySource
    sink: NpySink
    chain: Chain
    count_sinks: dict[int, NpySink]


def check_supported(net: HardwareNetwork, mode: str) -> None:
    """Refuse what the Lava backend cannot run, with one line naming the fix."""
    if mode not in MODES:
        raise HardwareError(f"mode {mode!r} is not one of {MODES}; pass 'fixed' or 'float'")
    refusal = lava_refusal(net)
    if refusal:
        raise HardwareError(refusal)
    for index, layer in enumerate(net.layers):
        name = layer_name(index, layer)
        if layer.has_weights and mode == "fixed" and layer.weight_int is None:
            raise HardwareError(
                f"{name} has no integer weights; quantise the network (hardware.quantize) or "
                "run with mode='float'"
            )
        if layer.has_weights and mode == "float" and layer.weight is None:
            raise HardwareError(f"{name} has no float weights; run with mode='fixed'")


def build_process_graph(
    net: HardwareNetwork,
    mode: str,
    input_path: str,
    output_path: str,
    num_samples: int,
    count_paths: dict[int, str] | None = None,
) -> ProcessGraph:
    """Processes streaming ``num_samples`` rows of ``input_path`` into ``output_path``
    (each row for ``net.timesteps`` steps); ``count_paths``: per spiking hidden layer
    index, an (N, neurons) ``.npy`` to add its spike counts into."""
    check_supported(net, mode)
    size = int(np.prod(net.input_shape))
    steps = int(net.timesteps)
    source = NpySource(path=input_path, size=size, num_samples=num_samples, repeat=steps)
    chain = build_connections(net, mode, source.s_out)
    sink = NpySink(
        path=output_path,
        size=net.num_classes,
        num_samples=num_samples,
        latency=chain.depth,
        interval=steps,
    )
    chain.output.connect(sink.a_in)
    count_sinks = {}
    for index, path in (count_paths or {}).items():
        port, depth = chain.spikes[index]
        count_sinks[index] = NpySink(
            path=path,
            size=int(np.prod(net.layers[index].out_shape)),
            num_samples=num_samples,
            latency=depth,
            interval=steps,
            accumulate=True,
        )
        port.connect(count_sinks[index].a_in)
    return ProcessGraph(source=source, sink=sink, chain=chain, count_sinks=count_sinks)


def build_connections(net: HardwareNetwork, mode: str, port: OutPort) -> Chain:
    """Each layer's connection and, for weight layers, its neurons, fed by ``port``.

    In spiking nets only the first connection carries graded payloads; the later ones
    carry binary spikes (``num_message_bits=0``)."""
    check_supported(net, mode)
    processes: list[AbstractProcess] = []
    spikes: dict[int, tuple[OutPort, int]] = {}
    depth = 0
    for index, layer in enumerate(net.layers):
        graded = net.substrate == "rate" or depth == 0
        bits = loihi.MESSAGE_BITS if graded else 0
        connection, port = layer_kind(layer.type).lower(layer, mode == "fixed", port, bits)
        if connection is not None:
            processes.append(connection)
            depth += 1
        if layer.neuron is not None:
            size = int(np.prod(layer.out_shape))
            placement = Placement(fixed=mode == "fixed", steps=int(net.timesteps), depth=depth)
            kind = neuron_kind(layer.neuron)
            neurons, out = kind.lava_neurons(size, layer.neuron, placement)
            port.connect(neurons.a_in)
            port = out
            processes.append(neurons)
            if kind.substrate == "spiking" and "hidden" in kind.roles:
                spikes[index] = (port, depth)
    return Chain(processes=processes, output=port, depth=depth, spikes=spikes)
