"""Build the Lava process graph of an exported network (fixed or floating point).

One graph streams a whole data split: ``NpySource`` -> per layer the connection its
layer kind lowers to (``LayerKind.lower`` in ``hardware.layers``: Dense, Conv or
Sparse; nothing for flatten; max pooling refused) -> per weight layer the neuron
population of its neuron kind (``NeuronKind.lava_neurons`` in ``hardware.neurons``:
GradedReluVec or GradedVec with vth=0) -> ``NpySink``. Every population is a flat
C,H,W-ordered vector. Every connection delays by one step, so the sink sees sample i
at step i + 1 + depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess

from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, layer_name
from hardware.lava.processes.stream import NpySink, NpySource
from hardware.layers import layer_kind
from hardware.neurons import neuron_kind

MODES = ("fixed", "float")


@dataclass
class Chain:
    """The connections and neurons of a network: ``output`` carries the Q-values,
    ``depth`` steps after the input reached the first connection."""

    processes: list[AbstractProcess]
    output: OutPort
    depth: int


@dataclass
class ProcessGraph:
    """Source, chain and sink of one streaming run; run (and stop) ``source``."""

    source: NpySource
    sink: NpySink
    chain: Chain


def check_supported(net: HardwareNetwork, mode: str) -> None:
    """Refuse what the Lava backend cannot run, with one line naming the fix."""
    if mode not in MODES:
        raise HardwareError(f"mode {mode!r} is not one of {MODES}; pass 'fixed' or 'float'")
    for index, layer in enumerate(net.layers):
        name = layer_name(index, layer)
        refusal = layer_kind(layer.type).lava_refusal
        if refusal:
            raise HardwareError(f"{name}: {refusal}")
        if layer.has_weights and mode == "fixed" and layer.weight_int is None:
            raise HardwareError(
                f"{name} has no integer weights; quantise the network (hardware.quantize) or "
                "run with mode='float'"
            )
        if layer.has_weights and mode == "float" and layer.weight is None:
            raise HardwareError(f"{name} has no float weights; run with mode='fixed'")


def build_process_graph(
    net: HardwareNetwork, mode: str, input_path: str, output_path: str, num_samples: int
) -> ProcessGraph:
    """Processes streaming ``num_samples`` rows of ``input_path`` into ``output_path``."""
    check_supported(net, mode)
    size = int(np.prod(net.input_shape))
    source = NpySource(path=input_path, size=size, num_samples=num_samples)
    chain = build_connections(net, mode, source.s_out)
    sink = NpySink(
        path=output_path, size=net.num_classes, num_samples=num_samples, latency=chain.depth
    )
    chain.output.connect(sink.a_in)
    return ProcessGraph(source=source, sink=sink, chain=chain)


def build_connections(net: HardwareNetwork, mode: str, port: OutPort) -> Chain:
    """Each layer's connection and, for weight layers, its neurons, fed by ``port``."""
    check_supported(net, mode)
    processes: list[AbstractProcess] = []
    depth = 0
    for layer in net.layers:
        connection, port = layer_kind(layer.type).lower(layer, mode == "fixed", port)
        if connection is not None:
            processes.append(connection)
            depth += 1
        if layer.neuron is not None:
            size = int(np.prod(layer.out_shape))
            neurons = neuron_kind(layer.neuron).lava_neurons(size, layer.neuron)
            port.connect(neurons.a_in)
            processes.append(neurons)
            port = neurons.s_out
    return Chain(processes=processes, output=port, depth=depth)
