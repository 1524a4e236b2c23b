"""Build the Lava process graph of an exported network (fixed or floating point).

One graph streams a whole data split: ``NpySource`` -> per weight layer a connection
and a graded neuron population -> ``NpySink``. Connections (see ``hardware.loihi``):

- dense:    ``Dense(weights, num_message_bits=24, weight_exp=e)``
- conv2d:   Lava's ``Conv`` (kernel flipped and transposed to Lava's (O, kW, kH, C), ports
  re-ordered C,H,W <-> W,H,C by virtual transpose ports) when the exponent is 0 or in
  floating point; a ``Sparse`` holding the unrolled kernel when a fixed-point exponent
  must be applied (Lava 0.10's fixed-point Conv ignores ``weight_exp``)
- loccon2d: ``Sparse`` holding the unshared weights as an (out, in) matrix
- flatten:  nothing (every population is a flat C,H,W-ordered vector)
- maxpool2d: refused (no lava-nc 0.10 process computes a window maximum)

Neurons: ``GradedReluVec(vth=0)`` for relu, ``GradedVec(vth=0)`` for linear layers.
Every connection delays by one step, so the sink sees sample i at step i + 1 + depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.proc.conv.process import Conv
from lava.proc.dense.process import Dense
from lava.proc.graded.process import GradedReluVec, GradedVec
from lava.proc.sparse.process import Sparse
from scipy.sparse import csr_matrix

from hardware import loihi
from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, Layer
from hardware.lava.processes.stream import NpySink, NpySource

MAXPOOL_REFUSAL = (
    "max-pooling cannot be expressed with lava-nc 0.10's processes; export a net without maxpool2d"
)
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
        if layer.type == "maxpool2d":
            raise HardwareError(f"layer {index}: {MAXPOOL_REFUSAL}")
        if layer.has_weights and mode == "fixed" and layer.weight_int is None:
            raise HardwareError(
                f"layer {index} ({layer.type}) has no integer weights; quantise the network "
                "(hardware.quantize) or run with mode='float'"
            )
        if layer.has_weights and mode == "float" and layer.weight is None:
            raise HardwareError(
                f"layer {index} ({layer.type}) has no float weights; run with mode='fixed'"
            )


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
    """A connection and a graded neuron population per weight layer, fed by ``port``."""
    check_supported(net, mode)
    processes: list[AbstractProcess] = []
    depth = 0
    for layer in net.layers:
        if not layer.has_weights:
            continue
        connection, out_port = _connect(layer, mode, port)
        neuron_type = GradedReluVec if layer.activation == "relu" else GradedVec
        neuron = neuron_type(shape=(int(np.prod(layer.out_shape)),), vth=loihi.NEURON_THRESHOLD)
        out_port.connect(neuron.a_in)
        processes += [connection, neuron]
        port = neuron.s_out
        depth += 1
    return Chain(processes=processes, output=port, depth=depth)


def _connect(layer: Layer, mode: str, port: OutPort) -> tuple[AbstractProcess, OutPort]:
    """The connection process for ``layer`` fed by ``port``, and its (flat) output port."""
    fixed = mode == "fixed"
    weights = np.asarray(layer.weight_int if fixed else layer.weight)
    exp = int(layer.weight_exp) if fixed else 0
    if layer.type == "dense":
        conn = Dense(
            weights=_typed(weights, fixed), num_message_bits=loihi.MESSAGE_BITS, weight_exp=exp
        )
        port.connect(conn.s_in)
        return conn, conn.a_out
    if layer.type == "conv2d" and (not fixed or loihi.conv_lowering(exp) == "conv"):
        return _lava_conv(layer, _typed(weights, fixed), port)
    conn = Sparse(
        weights=unrolled_matrix(layer, _typed(weights, fixed)),
        num_message_bits=loihi.MESSAGE_BITS,
        weight_exp=exp,
    )
    port.connect(conn.s_in)
    return conn, conn.a_out


def _typed(weights: np.ndarray, fixed: bool) -> np.ndarray:
    return weights.astype(np.int32) if fixed else weights.astype(np.float64)


def _lava_conv(layer: Layer, weight: np.ndarray, port: OutPort) -> tuple[Conv, OutPort]:
    """Lava's Conv: true convolution in W,H,C order; ours is PyTorch's correlation in C,H,W.

    lava_kernel[o, x, y, c] = torch_kernel[o, c, kh - 1 - y, kw - 1 - x].
    """
    channels, height, width = layer.in_shape
    out_channels, out_h, out_w = layer.out_shape
    kernel = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
    (sh, sw), (ph, pw) = layer.stride or (1, 1), layer.padding or (0, 0)
    conv = Conv(
        weight=kernel,
        input_shape=(width, height, channels),
        padding=(pw, ph),
        stride=(sw, sh),
        num_message_bits=loihi.MESSAGE_BITS,
    )
    port.reshape((channels, height, width)).transpose([2, 1, 0]).connect(conv.s_in)
    out_port = conv.a_out.transpose([2, 1, 0]).reshape((out_channels * out_h * out_w,))
    return conv, out_port


def unrolled_matrix(layer: Layer, weight: np.ndarray) -> csr_matrix:
    """A conv2d or loccon2d layer as a sparse (out, in) matrix over C,H,W-flat vectors.

    Output (o, py, px) reads input (c, py*sh + i - ph, px*sw + j - pw) with weight
    w[o, c, i, j] (conv2d) or w[py*out_w + px, o, (c*kh + i)*kw + j] (loccon2d);
    taps that fall into the zero padding are left out.
    """
    channels, height, width = layer.in_shape
    out_channels, out_h, out_w = layer.out_shape
    kh, kw = layer.kernel
    (sh, sw), (ph, pw) = layer.stride or (1, 1), layer.padding or (0, 0)
    o, c, i, j, py, px = np.meshgrid(
        np.arange(out_channels),
        np.arange(channels),
        np.arange(kh),
        np.arange(kw),
        np.arange(out_h),
        np.arange(out_w),
        indexing="ij",
    )
    y, x = py * sh + i - ph, px * sw + j - pw
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    if layer.type == "conv2d":
        values = weight[o, c, i, j]
    else:
        values = weight[py * out_w + px, o, (c * kh + i) * kw + j]
    rows = (o * out_h + py) * out_w + px
    cols = (c * height + y) * width + x
    shape = (out_channels * out_h * out_w, channels * height * width)
    return csr_matrix((values[inside], (rows[inside], cols[inside])), shape=shape)
