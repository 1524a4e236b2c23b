"""Lava's simulator against the numpy emulator: bit for bit in fixed point, 1e-5 in float.

Runs only inside .venv-lava. Small nets and few samples: each run compiles a fresh
process graph (about a second).
"""

from __future__ import annotations

import multiprocessing
import os
import signal

import numpy as np
import pytest
from leftovers import segments

LAVA_MISSING = "lava-nc not installed (run in .venv-lava)"
pytest.importorskip("lava.magma.core.run_configs", reason=LAVA_MISSING)

from hardware.emulator import fixed_point_stats, forward_fixed, forward_float  # noqa: E402
from hardware.errors import HardwareError  # noqa: E402
from hardware.graph import HardwareNetwork, Layer  # noqa: E402
from hardware.lava import (  # noqa: E402
    MAXPOOL_REFUSAL,
    network,
    run_on_lava,
    run_on_lava_per_sample,
    runtime,
)
from hardware.lava.backend import run_config  # noqa: E402
from hardware.layers import window_output  # noqa: E402
from hardware.quantize import quantise  # noqa: E402


@pytest.fixture
def no_leftovers():
    """Fail if a test leaves Lava children or new /dev/shm segments behind."""
    before = segments()
    yield
    assert multiprocessing.active_children() == []
    assert segments() - before == set()


def _quantised(make_network, make_inputs, kind: str, seed: int = 0) -> HardwareNetwork:
    net = make_network(kind, seed)
    return quantise(net, make_inputs(net, 64, seed=seed + 100))


def _conv_layer(in_shape, out_channels, kernel, stride, padding, neuron="relu") -> Layer:
    c, h, w = in_shape
    out_h = window_output(h, kernel[0], stride[0], padding[0])
    out_w = window_output(w, kernel[1], stride[1], padding[1])
    return Layer(
        "conv2d",
        in_shape,
        (out_channels, out_h, out_w),
        {"kind": neuron},
        kernel=kernel,
        stride=stride,
        padding=padding,
    )


def _odd_conv_network(first_exp: int, seed: int = 0) -> HardwareNetwork:
    """Non-square 2x9x7 input; conv 3x(3x2) stride (2,1) padding (1,2) (Lava's Conv when
    its exponent is 0); conv 4x(2x3) stride 2 padding (0,1) with a linear activation;
    dense. Random even mantissas, random float weights."""
    rng = np.random.default_rng(seed)
    first = _conv_layer((2, 9, 7), 3, (3, 2), (2, 1), (1, 2))
    second = _conv_layer(first.out_shape, 4, (2, 3), (2, 2), (0, 1), neuron="linear")
    flat = int(np.prod(second.out_shape))
    dense = Layer("dense", (flat,), (6,), {"kind": "linear"})
    for layer, exp in ((first, first_exp), (second, -6), (dense, -7)):
        shape = (
            (layer.out_shape[0], layer.in_shape[0], *layer.kernel)
            if layer.type == "conv2d"
            else (layer.out_shape[0], layer.in_shape[0])
        )
        layer.weight = rng.standard_normal(shape).astype(np.float32)
        layer.weight_int = 2 * rng.integers(-127, 128, size=shape)
        layer.weight_exp = exp
    layers = [first, second, Layer("flatten", second.out_shape, (flat,)), dense]
    return HardwareNetwork(input_shape=(2, 9, 7), input_scale=1 / 255, layers=layers)


def _assert_fixed_equal(net: HardwareNetwork, x: np.ndarray, **options) -> np.ndarray:
    result = run_on_lava(net, x, **options)
    expected = forward_fixed(net, x)
    assert result.q.dtype == np.int64
    assert result.q.shape == expected.shape
    np.testing.assert_array_equal(result.q, expected)
    return result.q


@pytest.mark.parametrize(
    ("kind", "dense_model"),
    [("dense", "lava"), ("dense", "blas"), ("conv", "lava"), ("loccon", "blas")],
)
def test_fixed_point_equals_emulator(make_network, make_inputs, no_leftovers, kind, dense_model):
    net = _quantised(make_network, make_inputs, kind)
    x = make_inputs(net, 25, seed=1)
    q = _assert_fixed_equal(net, x, dense_model=dense_model)
    assert len(np.unique(q.argmax(axis=1))) > 1  # a non-degenerate network


@pytest.mark.parametrize("first_exp", [0, -3])  # 0: Lava's Conv; -3: Sparse (Conv ignores it)
def test_conv_layouts_asymmetric_kernel_stride_padding_non_square(no_leftovers, first_exp):
    net = _odd_conv_network(first_exp)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(6, *net.input_shape), dtype=np.uint8)
    _assert_fixed_equal(net, x)
    flipped = _odd_conv_network(first_exp)
    flipped.layers[0].weight_int = flipped.layers[0].weight_int[:, :, ::-1, :]
    assert not np.array_equal(forward_fixed(flipped, x), forward_fixed(net, x))


def test_saturating_payloads_wrap_like_the_emulator(no_leftovers):
    """A zero-exponent conv (Lava's Conv) gets sums beyond 24 bits and wraps them; the
    dense layer after it gets sums beyond int32 and a positive exponent, and wraps."""
    net = _odd_conv_network(first_exp=-2, seed=3)
    net.layers[0].weight_int = np.abs(net.layers[0].weight_int)
    net.layers[1].weight_exp = 0
    net.layers[-1].weight_exp = 3
    x = np.full((3, *net.input_shape), 255, dtype=np.uint8)
    x[1, :, ::2] = 0
    stats = fixed_point_stats(net, x)
    assert stats[1].wrapped > 0 and stats[1].max_abs_sum < 2**31  # 24-bit wrap only
    assert stats[2].wrapped > 0 and stats[2].max_abs_sum > 2**31  # int32 wrap
    _assert_fixed_equal(net, x)


def test_negative_exponents_floor_and_linear_hidden_layers(no_leftovers):
    rng = np.random.default_rng(4)
    sizes = [12, 9, 7, 5]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = 2 * rng.integers(-127, 128, size=(n_out, n_in))
        layers.append(
            Layer(
                "dense",
                (n_in,),
                (n_out,),
                {"kind": "relu" if i == 1 else "linear"},
                weight=w.astype(np.float32),
                weight_int=w,
                weight_exp=-7,
            )
        )
    net = HardwareNetwork(input_shape=(12,), input_scale=1.0, layers=layers)
    x = rng.integers(0, 256, size=(20, 12), dtype=np.uint8)
    q, activations = forward_fixed(net, x, return_activations=True)
    assert (activations[0] < 0).any()  # negative sums were floored and passed on
    _assert_fixed_equal(net, x)


def test_all_zero_input_gives_zero_q_values(make_network, make_inputs, no_leftovers):
    net = _quantised(make_network, make_inputs, "conv")
    x = np.zeros((4, *net.input_shape), dtype=np.uint8)
    q = _assert_fixed_equal(net, x)
    assert not q.any()


@pytest.mark.parametrize("kind", ["dense", "conv", "loccon", "odd_conv"])
def test_floating_point_equals_forward_float(make_network, make_inputs, no_leftovers, kind):
    if kind == "odd_conv":
        net = _odd_conv_network(first_exp=0)
        x = np.random.default_rng(5).integers(0, 256, size=(5, 2, 9, 7), dtype=np.uint8)
    else:
        net = make_network(kind, 1)
        x = make_inputs(net, 12, seed=5)
    result = run_on_lava(net, x, mode="float")
    expected = forward_float(net, x * net.input_scale)
    assert result.q.dtype == np.float64
    np.testing.assert_allclose(result.q, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_per_sample_runner_equals_streaming(make_network, make_inputs, no_leftovers):
    net = _quantised(make_network, make_inputs, "dense")
    x = make_inputs(net, 3, seed=6)
    result = run_on_lava_per_sample(net, x)
    np.testing.assert_array_equal(result.q, forward_fixed(net, x))
    assert result.steps == 3 * (3 + 1)


def test_maxpool_is_refused_with_its_message(make_network, make_inputs):
    net = _quantised(make_network, make_inputs, "maxpool")
    with pytest.raises(HardwareError, match="max-pooling cannot be expressed") as raised:
        run_on_lava(net, make_inputs(net, 2))
    assert MAXPOOL_REFUSAL in str(raised.value)
    assert "\n" not in str(raised.value)


def test_bad_arguments_are_refused(make_network, make_inputs):
    net = _quantised(make_network, make_inputs, "dense")
    x = make_inputs(net, 2)
    with pytest.raises(HardwareError, match="mode 'double'"):
        run_on_lava(net, x, mode="double")
    with pytest.raises(HardwareError, match="dense_model 'gpu'"):
        run_on_lava(net, x, dense_model="gpu")
    with pytest.raises(HardwareError, match="must be integers"):
        run_on_lava(net, x.astype(np.float32))
    with pytest.raises(HardwareError, match="expected \\(N, 1, 8, 8\\)"):
        run_on_lava(net, x[0])
    net.layers[1].weight_int = None
    with pytest.raises(HardwareError, match="no integer weights"):
        run_on_lava(net, x)


def test_a_failing_process_model_surfaces_its_error_and_cleans_up(
    make_network, make_inputs, no_leftovers, tmp_path
):
    """The source's model raises (its input file is missing): Lava would wait forever on
    the models downstream; the backend reports the model's own error and tears down."""
    net = _quantised(make_network, make_inputs, "dense")
    graph = network.build_process_graph(
        net, "fixed", str(tmp_path / "missing.npy"), str(tmp_path / "q.npy"), 4
    )
    with pytest.raises(HardwareError, match="FileNotFoundError.*missing.npy"):
        with runtime.managed_runtime(graph.source):
            runtime.create_runtime(graph.source, run_config("fixed"))
            runtime.run_steps(graph.source, 4 + graph.chain.depth)


def test_a_signal_while_the_runtime_is_created_interrupts_after_the_forks():
    """SIGTERM while Lava forks its processes is held until create_runtime is done (raised
    in one of the at-fork hooks, it would be ignored and the run would go on)."""
    events = []

    class Root:
        runtime = None

        def create_runtime(self, run_cfg):
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while "forking"
            events.append("forked")

    with pytest.raises(runtime.RunInterrupted, match="SIGTERM"):
        with runtime.managed_runtime(Root()):
            runtime.create_runtime(Root(), None)
    assert events == ["forked"]
