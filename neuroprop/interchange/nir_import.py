"""``neuroprop import FILE.nir --out DIR``: a NIR graph as a neuroprop network and weights.

The graph must be a chain Input -> ... -> Output (no branches, skips or recurrence):

- ``Linear`` or ``Affine`` (zero bias), then ``CubaLIF`` / ``LIF`` / ``IF``: a dense
  layer of lif neurons;
- ``Conv2d`` (zero bias, dilation 1, groups 1), then ``CubaLIF`` / ``LIF`` / ``IF``: a
  conv2d layer of lif neurons;
- ``Flatten`` of whole (C, H, W) samples: flatten;
- ``Linear`` / ``Affine``, then ``LI`` / ``CubaLI``, last: the output layer with the li
  read-out, q = v[T] / T;
- ``Linear`` / ``Affine`` last, with no neuron after it: the output layer with li
  du = 1, dv = 0, i.e. q = the mean over the trial of the Linear's output.

The neuron parameters and the gain folded into the weights: ``neuroprop.interchange.neurons``.
A graph that ends in spiking neurons (snnTorch's usual spike-count output) is refused:
neuroprop reads Q-values from a non-spiking read-out, and a spike count is not one.

The input: an Input node of shape (C, H, W) or the flat (C*H*W,) of a dataset
(``--dataset``, or the only dataset whose input size and class count fit), possibly
behind a batch axis of 1 (norse's ``to_nir`` writes the sample data's shape). The trial
length T and the time step dt are not part of NIR: T is ``--timesteps`` (else the
graph's ``timesteps`` metadata, which neuroprop writes, else 16); dt is ``--dt`` (else
the graph's ``dt`` metadata, else 1e-4 s, snnTorch's). The input encoding is constant
(the scaled input as a current at every step) unless the graph's metadata says bernoulli.

The folder written holds ``config.yaml`` (an experiment: the dataset, the network, rule
brainprop and default training settings), ``best.pt`` (the weights, in a run's
checkpoint format, read with ``torch.load(weights_only=True)``) and ``import.json``
(the source file, dt, T and which node became which layer). So ``neuroprop evaluate DIR``,
``neuroprop export --target lava DIR`` and
``neuroprop train --config DIR/config.yaml --init-from DIR`` take it as they take a run.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
import yaml

from neuroprop.config import config_from_dict
from neuroprop.data import DATASETS, dataset_shape
from neuroprop.errors import NeuropropError
from neuroprop.interchange.neurons import (
    DEFAULT_DT,
    HIDDEN_NODES,
    READOUT_NODES,
    ImportedNeuron,
    neuron_from_nir,
)
from neuroprop.interchange.nir_file import metadata_number, metadata_text, read_graph
from neuroprop.network import FeedbackOptions, Network, parse_network
from neuroprop.network.spec import DEFAULT_TIMESTEPS, ENCODINGS, NetworkSpec
from neuroprop.training.checkpoint import atomic_write_text, save_checkpoint, write_json
from neuroprop.training.trainer import BEST, CONFIG

IMPORT_RECORD = "import.json"
SYNAPSE_NODES: tuple[type, ...] = (nir.Linear, nir.Affine, nir.Conv2d)
SUPPORTED = ("Input, Output, Linear, Affine (zero bias), Conv2d (zero bias), Flatten, "
             "CubaLIF, LIF, IF, LI, CubaLI")


@dataclass
class ImportedNet:
    """A NIR graph read as neuroprop's: the ``network:`` section, the weights of its
    weight layers in order, and what became of each node."""

    dataset: str
    network: dict[str, Any]
    weights: list[np.ndarray]
    dt: float
    layers: list[dict[str, Any]] = field(default_factory=list)


def graph_to_network(graph: nir.NIRGraph, dataset: str | None = None,
                     timesteps: int | None = None, dt: float | None = None) -> ImportedNet:
    """Read ``graph`` as a spiking neuroprop network (see the module docstring)."""
    dt = _time_step(graph, dt)
    timesteps = _timesteps(graph, timesteps)
    input_name, chain = _chain(graph)
    graph_input = tuple(int(n) for n in graph.nodes[input_name].input_type["input"])
    classes = _output_units(chain)
    dataset = _dataset(dataset, graph_input, classes)
    shape: tuple[int, ...] = dataset_shape(dataset)[0]
    fits = (shape, (math.prod(shape),))
    if graph_input not in fits and graph_input[:1] == (1,) and graph_input[1:] in fits:
        graph_input = graph_input[1:]  # a batch axis of 1 (norse's to_nir writes one)
    if graph_input not in fits:
        raise NeuropropError(f"node {input_name!r} (Input): shape {list(graph_input)} fits "
                             f"neither {dataset}'s samples {list(shape)} nor their flat size "
                             f"[{math.prod(shape)}] (a batch axis in the graph? snnTorch: "
                             "export with ignore_dims=[0])")
    if len(graph_input) == 1:
        shape = graph_input
    imported = ImportedNet(dataset=dataset, network={}, weights=[], dt=dt)
    raw_layers: list[dict[str, Any]] = []
    position = 0
    while position < len(chain):
        name, node = chain[position]
        if isinstance(node, nir.Flatten):
            flat = len(shape) == 1
            if not flat:
                raw_layers.append({"type": "flatten"})
            imported.layers.append({"nodes": [name], "layer": None if flat else "flatten"})
            shape = _flatten(name, node, shape)
            position += 1
            continue
        if not isinstance(node, SYNAPSE_NODES):
            raise _unexpected(name, node, "a Linear, Affine, Conv2d or Flatten node")
        neuron_name, neuron_node = (chain[position + 1] if position + 1 < len(chain)
                                    else (None, None))
        layer, weight, out_shape = _synapse(name, node, shape)
        size = math.prod(out_shape)
        if neuron_node is None:
            neuron = ImportedNeuron({"kind": "li", "du": 1.0, "dv": 0.0}, 1.0)
            nodes = [name]
        elif isinstance(neuron_node, HIDDEN_NODES + READOUT_NODES):
            neuron = neuron_from_nir(neuron_name, neuron_node, size, dt)
            nodes = [name, neuron_name]
        else:
            raise _unexpected(neuron_name, neuron_node, f"a neuron node after {name!r}")
        readout = neuron.neuron["kind"] == "li"
        if readout and position + len(nodes) < len(chain):
            last = chain[position + len(nodes) - 1]
            raise NeuropropError(f"node {last[0]!r} ({type(last[1]).__name__}) is the "
                                 "non-spiking read-out but more nodes follow it; "
                                 "neuroprop's read-out is the last layer")
        if not readout and position + len(nodes) == len(chain):
            raise NeuropropError(
                f"node {neuron_name!r} ({type(neuron_node).__name__}) ends the graph with "
                "spikes; neuroprop reads Q-values from a non-spiking read-out: end the net "
                "with a Linear (read as its mean over the trial) or an LI / CubaLI node")
        if readout and layer["type"] != "dense":
            raise NeuropropError(f"node {name!r} (Conv2d) feeds the read-out; neuroprop's "
                                 "output layer is dense: flatten and add a Linear before it")
        layer["type"] = "output" if readout else layer["type"]
        layer["neuron"] = neuron.neuron
        raw_layers.append(layer)
        imported.weights.append((weight * neuron.gain).astype(np.float32)
                                if neuron.gain != 1.0 else weight)
        imported.layers.append({"nodes": nodes, "layer": layer["type"],
                                "neuron": neuron.neuron, "gain": neuron.gain})
        shape = out_shape
        position += len(nodes)
    imported.network = {"substrate": "spiking", "timesteps": timesteps,
                        "encoding": _encoding(graph), "layers": raw_layers}
    return imported


def import_nir(path: Path, out: Path, dataset: str | None = None,
               timesteps: int | None = None, dt: float | None = None) -> tuple[Path, str]:
    """Import the NIR file ``path`` into the new folder ``out``; return it and a report."""
    path, out = Path(path), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NeuropropError(f"{out} already exists; choose a new --out for the import")
    imported = graph_to_network(read_graph(path), dataset, timesteps, dt)
    input_shape, classes = dataset_shape(imported.dataset)
    spec = parse_network(imported.network, input_shape, classes)
    _number_layers(imported.layers, spec)
    network = Network(spec, FeedbackOptions("tied", learn=True)).eval()
    weight_layers = [layer for layer in network.layers if hasattr(layer, "weight")]
    with torch.no_grad():
        for layer, weight in zip(weight_layers, imported.weights, strict=True):
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            layer.feedback_weight.copy_(layer.weight)
    config = config_from_dict({"name": path.stem, "dataset": {"name": imported.dataset},
                               "network": spec.to_dict(), "rule": "brainprop"}).to_dict()
    record = {"source": str(path.resolve()), "dataset": imported.dataset, "dt": imported.dt,
              "timesteps": spec.timesteps, "layers": imported.layers}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        atomic_write_text(staging / CONFIG, yaml.safe_dump(config, sort_keys=False))
        save_checkpoint(staging / BEST, {"model": network.state_dict(),
                                         "network": spec.to_dict(), "epoch": 0,
                                         "imported_from": record["source"]})
        write_json(staging / IMPORT_RECORD, record)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out, render(record)


def render(record: dict[str, Any]) -> str:
    """One line per layer: the nodes it came from and its neuron."""
    lines = [f"{record['dataset']}, T = {record['timesteps']}, dt = {record['dt']:g} s"]
    for layer in record["layers"]:
        nodes = " + ".join(repr(name) for name in layer["nodes"])
        if layer["layer"] is None:
            lines.append(f"  {'(no layer)':<25} <- {nodes}: flattens a flat input")
            continue
        text = ""
        neuron = layer.get("neuron")
        if neuron is not None:
            params = ", ".join(f"{k} {v:g}" for k, v in neuron.items() if k != "kind")
            text = f": {neuron['kind']} ({params})"
            if layer["gain"] != 1.0:
                text += f", weights x {layer['gain']:g}"
        where = f"network.layers[{layer['index']}] {layer['layer']}"
        lines.append(f"  {where:<25} <- {nodes}{text}")
    return "\n".join(lines)


def _number_layers(records: list[dict[str, Any]], spec: NetworkSpec) -> None:
    """Give each record the index of its layer in ``spec`` (which may hold a flatten the
    graph did not: ``parse_network`` inserts one before a dense layer on spatial input)."""
    index = 0
    for record in records:
        if record["layer"] is None:
            continue
        while spec.layers[index].type != record["layer"]:
            index += 1
        record["index"] = index
        index += 1


def _chain(graph: nir.NIRGraph) -> tuple[str, list[tuple[str, nir.NIRNode]]]:
    """The Input node's name and the nodes between it and the Output, in order."""
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NeuropropError(f"the graph has {len(inputs)} Input nodes; neuroprop imports a "
                             "chain with exactly one")
    following: dict[str, list[str]] = {name: [] for name in graph.nodes}
    preceding: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for edge in graph.edges:
        for end in edge:
            if end not in graph.nodes:
                raise NeuropropError(f"edge {tuple(edge)!r} names no node {end!r}")
        following[edge[0]].append(edge[1])
        preceding[edge[1]].append(edge[0])
    chain: list[tuple[str, nir.NIRNode]] = []
    seen = {inputs[0]}
    name = inputs[0]
    while not isinstance(graph.nodes[name], nir.Output):
        nexts = following[name]
        if len(nexts) != 1:
            raise NeuropropError(
                f"node {name!r} leads to no node; the chain must end in an Output" if not nexts
                else f"node {name!r} branches to {', '.join(map(repr, nexts))}; neuroprop "
                "imports feed-forward chains (no branches, skips or recurrence)")
        name = nexts[0]
        if name in seen or len(preceding[name]) != 1:
            raise NeuropropError(
                f"node {name!r} has inputs from {', '.join(map(repr, preceding[name]))}; "
                "neuroprop imports feed-forward chains (no branches, skips or recurrence)")
        seen.add(name)
        if not isinstance(graph.nodes[name], nir.Output):
            chain.append((name, graph.nodes[name]))
    stray = [name for name in graph.nodes if name not in seen]
    if stray:
        raise NeuropropError(f"node {stray[0]!r} is not on the chain from Input to Output; "
                             "neuroprop imports one feed-forward chain")
    if not chain:
        raise NeuropropError("the graph has no node between its Input and Output")
    return inputs[0], chain


def _synapse(name: str, node: nir.NIRNode,
             shape: tuple[int, ...]) -> tuple[dict[str, Any], np.ndarray, tuple[int, ...]]:
    """The layer (without its neuron), its weight and its output shape."""
    kind = type(node).__name__
    weight = _finite(name, kind, "weight", node.weight)
    bias = getattr(node, "bias", None)
    if bias is not None and np.any(_finite(name, kind, "bias", bias) != 0):
        raise NeuropropError(f"node {name!r} ({kind}): a nonzero bias; neuroprop's synapses "
                             "have none (train the net with bias=False)")
    if isinstance(node, nir.Conv2d):
        return _conv(name, node, weight, shape)
    size = math.prod(shape)
    if weight.ndim != 2 or weight.shape[1] != size:
        raise NeuropropError(f"node {name!r} ({kind}): weight of shape {list(weight.shape)}; "
                             f"expected [units, {size}] for its input of {size}")
    units = int(weight.shape[0])
    return {"type": "dense", "units": units}, weight, (units,)


def _conv(name: str, node: nir.Conv2d, weight: np.ndarray,
          shape: tuple[int, ...]) -> tuple[dict[str, Any], np.ndarray, tuple[int, ...]]:
    where = f"node {name!r} (Conv2d)"
    if len(shape) != 3:
        raise NeuropropError(f"{where}: its input is flat ({shape[0]} values); a convolution "
                             "needs (C, H, W)")
    if weight.ndim != 4 or weight.shape[1] != shape[0]:
        raise NeuropropError(f"{where}: weight of shape {list(weight.shape)}; expected "
                             f"[channels, {shape[0]}, kh, kw] for an input of {list(shape)}")
    if int(np.asarray(node.groups)) != 1 or _pair(node.dilation, where, "dilation") != (1, 1):
        raise NeuropropError(f"{where}: groups and dilation must be 1 (neuroprop's conv2d)")
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    stride = _pair(node.stride, where, "stride")
    padding = node.padding
    if isinstance(padding, str):
        if padding == "same" and stride == (1, 1) and all(k % 2 for k in kernel):
            padding = (kernel[0] // 2, kernel[1] // 2)
        elif padding == "valid":
            padding = (0, 0)
        else:
            raise NeuropropError(f"{where}: padding {padding!r} with kernel {list(kernel)} "
                                 f"and stride {list(stride)} is not a symmetric zero padding")
    padding = _pair(padding, where, "padding", minimum=0)
    out_hw = [(size + 2 * pad - k) // s + 1
              for size, pad, k, s in zip(shape[1:], padding, kernel, stride, strict=True)]
    if min(out_hw) < 1:
        raise NeuropropError(f"{where}: kernel {list(kernel)} is larger than its padded "
                             f"input {list(shape)}")
    layer = {"type": "conv2d", "channels": int(weight.shape[0]), "kernel": list(kernel),
             "stride": list(stride), "padding": list(padding)}
    return layer, weight, (int(weight.shape[0]), *out_hw)


def _flatten(name: str, node: nir.Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))
    if start != 0 or end not in (-1, len(shape) - 1):
        raise NeuropropError(f"node {name!r} (Flatten): start_dim {start}, end_dim {end}; "
                             "neuroprop flattens whole samples (NIR shapes have no batch "
                             "axis: start_dim 0, end_dim -1)")
    return (math.prod(shape),)


def _output_units(chain: list[tuple[str, nir.NIRNode]]) -> int | None:
    """The number of Q-values: the rows of the last synapse's weight."""
    for _, node in reversed(chain):
        if isinstance(node, nir.Linear | nir.Affine):
            weight = np.asarray(node.weight)
            return int(weight.shape[0]) if weight.ndim == 2 else None
    return None


def _dataset(requested: str | None, graph_input: tuple[int, ...], classes: int | None) -> str:
    """``requested``, or the only dataset whose input size and classes fit the graph."""
    if requested is not None:
        _, wanted = dataset_shape(requested)
        if classes is not None and classes != wanted:
            raise NeuropropError(f"the graph's read-out has {classes} units but {requested} "
                                 f"has {wanted} classes; pass the dataset it was trained on")
        return requested
    size = math.prod(graph_input)
    fits = [name for name in DATASETS if math.prod(dataset_shape(name)[0]) == size
            and dataset_shape(name)[1] == classes]
    if len(fits) != 1:
        found = f"several fit ({', '.join(fits)})" if fits else "none fits"
        raise NeuropropError(f"which dataset? the graph takes {size} inputs and gives "
                             f"{classes} outputs, and {found}; pass --dataset")
    return fits[0]


def _time_step(graph: nir.NIRGraph, dt: float | None) -> float:
    dt = dt if dt is not None else metadata_number(graph, "dt") or DEFAULT_DT
    if not (dt > 0 and math.isfinite(dt)):
        raise NeuropropError(f"time step {dt!r}: expected a positive number of seconds "
                             "(--dt)")
    return float(dt)


def _timesteps(graph: nir.NIRGraph, timesteps: int | None) -> int:
    if timesteps is None:
        stored = metadata_number(graph, "timesteps")
        timesteps = int(stored) if stored is not None and stored == int(stored) and (
            stored >= 1) else DEFAULT_TIMESTEPS
    if timesteps < 1:
        raise NeuropropError(f"--timesteps {timesteps}: expected an integer T >= 1")
    return timesteps


def _encoding(graph: nir.NIRGraph) -> str:
    encoding = metadata_text(graph, "encoding")
    return encoding if encoding in ENCODINGS else "constant"


def _finite(name: str, kind: str, key: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise NeuropropError(f"node {name!r} ({kind}): {key} is not numeric") from None
    if not np.isfinite(array).all():
        raise NeuropropError(f"node {name!r} ({kind}): {key} holds NaN or infinity")
    return array


def _pair(value: Any, where: str, key: str, minimum: int = 1) -> tuple[int, int]:
    try:
        items = [int(v) for v in np.broadcast_to(np.asarray(value).reshape(-1), (2,))]
    except (TypeError, ValueError):
        raise NeuropropError(f"{where}: {key} {value!r} is not an integer or a pair") from None
    if min(items) < minimum:
        raise NeuropropError(f"{where}: {key} {items} below {minimum}")
    return items[0], items[1]


def _unexpected(name: str, node: nir.NIRNode, expected: str) -> NeuropropError:
    kind = type(node).__name__
    supported = isinstance(node, SYNAPSE_NODES + HIDDEN_NODES + READOUT_NODES + (nir.Flatten,))
    why = (f"expected {expected} here" if supported else
           f"neuroprop does not import {kind} nodes (supported: {SUPPORTED})")
    return NeuropropError(f"node {name!r} ({kind}): {why}")
