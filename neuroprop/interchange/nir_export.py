"""``neuroprop export --target nir``: a trained network as a NIR graph.

The graph is a chain Input -> [synapse -> neuron]... -> Output, one pair per weight layer:

| neuroprop | NIR |
|---|---|
| dense, output (bias-free) | ``Linear`` (weight (out, in)) |
| conv2d | ``Conv2d`` (weight (O, C, kh, kw), stride, padding, dilation 1, groups 1, bias 0) |
| flatten (after a spatial layer) | ``Flatten`` (start_dim 0: NIR shapes have no batch axis) |
| lif neuron | ``CubaLIF`` (``neuroprop.interchange.neurons``) |
| li read-out | ``LI`` (du = 1) or ``CubaLI`` |
| linear neuron (rate nets) | no node (the identity) |

A flatten of the input itself is left out: the Input node is then the flat vector
(C*H*W,) in C, H, W order, so readers feed ``x.reshape(batch, -1)``; the graph's
metadata keeps ``input_shape`` (C, H, W). The Q-values are the read-out's
q = v[T] / T: the graph's output at step T divided by T.

Graph metadata: ``source`` (neuroprop), ``dt`` (seconds per step of the time
constants), ``timesteps`` (T), ``encoding`` (constant: feed the scaled input at every
step; bernoulli: a spike with that probability), ``input_shape``, ``reset`` and
``readout`` (one sentence each). Batch-norm gains are folded into the next weights and
dropout is dropped (``Network.export_layers``).

Refused, with one line naming the layer: relu neurons (NIR has no ReLU; convert the net
to a spiking one first), loccon2d (no locally connected node), maxpool2d (no max
pooling node).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nir
import numpy as np

from neuroprop.errors import NeuropropError
from neuroprop.interchange.neurons import DEFAULT_DT, neuron_to_nir
from neuroprop.interchange.nir_file import SOURCE, SOURCE_KEY, write_graph
from neuroprop.network import Network
from neuroprop.network.spec import LayerSpec
from neuroprop.training.trainer import load_trained

NIR_FILE = "network.nir"
UNSUPPORTED_LAYERS = {
    "loccon2d": "NIR has no locally connected node",
    "maxpool2d": "NIR has no max pooling node (only AvgPool2d and SumPool2d)",
}
RESET = "to zero: v_reset = 0 is the value v jumps to after a spike (not a subtraction)"
FOLDED_LAYERS = ("dropout", "batchnorm")
"""Layers ``Network.export_layers`` removes (dropout) or folds into the next weights."""
READOUT = "q = v[T] / T: the last node's output at step T divided by T"


def network_graph(network: Network, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """The NIR graph of ``network`` (eval mode) with time constants for steps of ``dt`` s.

    Nodes are named after the layers they come from: ``dense0`` and ``lif0`` for
    ``network.layers[0]``, ``output2`` and ``li2`` for the read-out at index 2.
    """
    if not dt > 0 or not np.isfinite(dt):
        raise NeuropropError(f"--dt {dt}: expected a positive number of seconds per step")
    spec = network.spec
    for index, layer in enumerate(spec.layers):
        if layer.type in UNSUPPORTED_LAYERS:
            raise NeuropropError(f"network.layers[{index}] ({layer.type}): "
                                 f"{UNSUPPORTED_LAYERS[layer.type]}; export a net without it")
    kept = [(index, layer) for index, layer in enumerate(spec.layers)
            if layer.type not in FOLDED_LAYERS]
    pairs = list(zip(kept, network.export_layers(), strict=True))
    shape = tuple(spec.input_shape)
    if pairs[0][1]["type"] == "flatten":
        shape = pairs[0][1]["out_shape"]
        pairs = pairs[1:]
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    for (index, layer), entry in pairs:
        nodes.update(_layer_nodes(index, layer, entry, dt))
    nodes["output"] = nir.Output(output_type={"output": np.array(spec.layers[-1].out_shape)})
    names = list(nodes)
    metadata = {SOURCE_KEY: SOURCE, "dt": float(dt), "timesteps": spec.timesteps,
                "encoding": spec.encoding, "input_shape": np.array(spec.input_shape),
                "reset": RESET, "readout": READOUT}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)),
                        metadata=metadata)


def export_nir(run_dir: Path, out: Path | None = None, dt: float | None = None,
               data_dir: str | Path | None = None) -> tuple[Path, str]:
    """Write the best weights of ``run_dir`` as a NIR file (default RUN_DIR/network.nir)
    with time constants for steps of ``dt`` s (default ``DEFAULT_DT``); return its path
    and a one-line-per-node report."""
    exp = load_trained(Path(run_dir), data_dir=data_dir)
    dt = DEFAULT_DT if dt is None else dt
    graph = network_graph(exp.network, dt)
    out = Path(out) if out is not None else Path(run_dir) / NIR_FILE
    write_graph(out, graph)
    return out, f"{render(graph)}\ndt = {dt:g} s per step, T = {exp.spec.timesteps}"


def render(graph: nir.NIRGraph) -> str:
    """The chain of nodes, one line each: name, type, shape."""
    lines = []
    for name, node in graph.nodes.items():
        shape = node.output_type.get("output") if node.output_type else None
        lines.append(f"  {name:<12} {type(node).__name__:<8} -> "
                     f"{tuple(int(n) for n in shape) if shape is not None else '?'}")
    return "\n".join(lines)


def _layer_nodes(index: int, layer: LayerSpec, entry: dict[str, Any],
                 dt: float) -> dict[str, nir.NIRNode]:
    """The synapse node and the neuron node (if any) of ``network.layers[index]``, whose
    exported form (weights with batch-norm gains folded) is ``entry``."""
    name = f"{layer.type}{index}"
    if layer.type == "flatten":
        return {name: nir.Flatten(input_type={"input": np.array(layer.in_shape)},
                                  start_dim=0, end_dim=-1)}
    weight = np.asarray(entry["weight"], dtype=np.float32)
    if layer.type == "conv2d":
        synapse = nir.Conv2d(input_shape=tuple(layer.in_shape[1:]), weight=weight,
                             stride=tuple(layer.stride), padding=tuple(layer.padding),
                             dilation=(1, 1), groups=1,
                             bias=np.zeros(weight.shape[0], dtype=np.float32))
    else:
        synapse = nir.Linear(weight=weight)
    neuron = neuron_to_nir(layer.neuron, tuple(layer.out_shape), dt,
                           f"network.layers[{index}] ({layer.type})")
    nodes = {name: synapse}
    if neuron is not None:
        nodes[f"{layer.neuron.kind}{index}"] = neuron
    return nodes
