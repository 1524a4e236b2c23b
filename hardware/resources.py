"""What an exported network needs on Loihi 2: neurons, synapses, synaptic memory, cores.

Chip limits, from Intel's "Loihi 2 Neuromorphic Research Chip and the Lava Software
Framework" technology brief (2021): 128 neuromorphic cores per chip, up to 8,192
neurons per core, 128 KB of synaptic memory per core, up to 1 million neurons and
120 million synapses per chip. (Checked against public summaries of the brief:
open-neuromorphic.org, "Loihi 2 - Intel": 1 million neurons, 120 million synapses,
128 neuron cores; press coverage of the launch: 128 KB of local SRAM per core.)

The model, per layer (a simplification of how Lava/Loihi map networks, not a
compiler's placement). Each layer kind states its footprint (``hardware.layers``):

- neurons: the layer's outputs (weight layers and max pooling); flatten is wiring
  only, and the input is fed by the host, so neither counts.
- synapses: weights the layer stores. dense: in*out. conv2d: the kernel O*C*kh*kw
  (shared); its connections, i.e. (input, output) pairs that the kernel touches,
  padding excluded, are reported apart. loccon2d: the unshared weights L*O*C*kh*kw
  (each also one connection). maxpool2d: one unit-weight synapse per connection.
- synaptic memory bits, by the kind's ``Storage``: 8 per weight (Loihi's 8-bit
  mantissa); a full MATRIX (dense) needs no index (the position in the row is the
  target); SPARSE synapses (loccon2d, maxpool2d) add an index naming the target
  neuron within its core: ceil(log2(min(neurons, 8192))) bits per synapse; a SHARED
  kernel (conv2d) is stored once per ceil(neurons / 8192) group of the layer's
  neurons.
- cores: max(ceil(neurons / 8192), ceil(synaptic bits / (128 KiB * 8))) per layer;
  layers never share a core; the network needs the sum. Neuron state, axon routing
  tables and microcode also take core memory: the real count can only be higher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, Layer, layer_name
from hardware.layers import layer_kind
from hardware.layers.base import Footprint, Storage
from hardware.loihi import WEIGHT_BITS

CORES_PER_CHIP = 128
NEURONS_PER_CORE = 8192
SYNAPTIC_MEMORY_BITS_PER_CORE = 128 * 1024 * 8
NEURONS_PER_CHIP = 1_000_000
SYNAPSES_PER_CHIP = 120_000_000


@dataclass(frozen=True)
class LayerResources:
    """One layer's needs (see the module docstring for the model)."""

    name: str
    type: str
    neurons: int
    synapses: int
    connections: int
    synaptic_bits: int
    cores: int


@dataclass(frozen=True)
class ResourceReport:
    """Per-layer needs of a network and their totals against ``chips`` Loihi 2 chips."""

    layers: tuple[LayerResources, ...]

    @property
    def neurons(self) -> int:
        return sum(row.neurons for row in self.layers)

    @property
    def synapses(self) -> int:
        return sum(row.synapses for row in self.layers)

    @property
    def connections(self) -> int:
        return sum(row.connections for row in self.layers)

    @property
    def synaptic_bits(self) -> int:
        return sum(row.synaptic_bits for row in self.layers)

    @property
    def cores(self) -> int:
        return sum(row.cores for row in self.layers)

    def render(self, chips: int = 1) -> str:
        """A text table: one row per layer, totals, and the limits of ``chips`` chips."""
        header = ("layer", "type", "neurons", "synapses", "connections", "memory KiB", "cores")
        rows = [
            (
                row.name,
                row.type,
                f"{row.neurons:,}",
                f"{row.synapses:,}",
                f"{row.connections:,}",
                f"{row.synaptic_bits / 8192:,.2f}",
                f"{row.cores:,}",
            )
            for row in self.layers
        ]
        rows.append(
            (
                "total",
                "",
                f"{self.neurons:,}",
                f"{self.synapses:,}",
                f"{self.connections:,}",
                f"{self.synaptic_bits / 8192:,.2f}",
                f"{self.cores:,}",
            )
        )
        rows.append(
            (
                f"limit ({chips} chip{'s' if chips != 1 else ''})",
                "",
                f"{NEURONS_PER_CHIP * chips:,}",
                f"{SYNAPSES_PER_CHIP * chips:,}",
                "",
                f"{SYNAPTIC_MEMORY_BITS_PER_CORE * CORES_PER_CHIP * chips / 8192:,.2f}",
                f"{CORES_PER_CHIP * chips:,}",
            )
        )
        widths = [max(len(str(line[i])) for line in [header, *rows]) for i in range(len(header))]

        def fmt(line: tuple[str, ...]) -> str:
            cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
            cells += [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * width for width in widths)
        return "\n".join([fmt(header), rule, *map(fmt, rows[:-2]), rule, *map(fmt, rows[-2:])])


def _index_bits(neurons: int) -> int:
    return max(1, math.ceil(math.log2(min(neurons, NEURONS_PER_CORE))))


def synaptic_bits(footprint: Footprint) -> int:
    """Synaptic memory a layer's synapses take, by how they are stored (module docstring)."""
    synapses, neurons = footprint.synapses, footprint.neurons
    if footprint.storage is Storage.MATRIX:
        return synapses * WEIGHT_BITS
    if footprint.storage is Storage.SPARSE:
        return synapses * (WEIGHT_BITS + _index_bits(neurons))
    if footprint.storage is Storage.SHARED:
        return synapses * WEIGHT_BITS * math.ceil(neurons / NEURONS_PER_CORE)
    return 0


def layer_resources(name: str, layer: Layer) -> LayerResources:
    """One layer's neurons, synapses, connections, synaptic memory and cores."""
    footprint = layer_kind(layer.type).footprint(layer)
    bits = synaptic_bits(footprint)
    cores = max(
        math.ceil(footprint.neurons / NEURONS_PER_CORE),
        math.ceil(bits / SYNAPTIC_MEMORY_BITS_PER_CORE),
    )
    return LayerResources(
        name,
        layer.type,
        footprint.neurons,
        footprint.synapses,
        footprint.connections,
        bits,
        cores,
    )


def resource_report(net: HardwareNetwork) -> ResourceReport:
    """Neurons, synapses, memory and Loihi 2 cores of every layer of ``net``."""
    return ResourceReport(
        tuple(layer_resources(layer_name(i, layer), layer) for i, layer in enumerate(net.layers))
    )


def check_fits(report: ResourceReport, chips: int = 1) -> None:
    """Raise ``HardwareError`` if the network does not fit on ``chips`` Loihi 2 chips.

    The message names the limit exceeded and the layer that uses most of it.
    """
    if chips < 1:
        raise HardwareError(f"chips must be at least 1, got {chips}; pass chips=1 or more")
    limits = (
        ("cores", CORES_PER_CHIP, "cores"),
        ("neurons", NEURONS_PER_CHIP, "neurons"),
        ("synapses", SYNAPSES_PER_CHIP, "synapses"),
    )
    for attribute, per_chip, label in limits:
        needed, available = getattr(report, attribute), per_chip * chips
        if needed > available:
            biggest = max(report.layers, key=lambda row: getattr(row, attribute))
            chips_needed = math.ceil(needed / per_chip)
            raise HardwareError(
                f"the network needs {needed:,} {label} but {chips} Loihi 2 chip"
                f"{'s' if chips != 1 else ''} offer {available:,} ({per_chip:,} per chip); "
                f"{biggest.name} alone needs {getattr(biggest, attribute):,}: shrink it (fewer "
                f"units or channels, or a smaller input); it would take {chips_needed} chips"
            )
