"""Resource report: hand-computed counts, core packing, refusal of what does not fit."""

from __future__ import annotations

import pytest

from hardware.errors import HardwareError
from hardware.graph import HardwareNetwork, Layer
from hardware.resources import (
    CORES_PER_CHIP,
    NEURONS_PER_CORE,
    SYNAPTIC_MEMORY_BITS_PER_CORE,
    LayerResources,
    ResourceReport,
    check_fits,
    layer_resources,
    resource_report,
)

RELU = {"kind": "relu"}
LINEAR = {"kind": "linear"}


def _rows(report):
    return {row.name: row for row in report.layers}


def test_dense_network_by_hand(make_network):
    report = resource_report(make_network("dense", 0))  # 64 -> 32 -> 16 -> 10
    rows = _rows(report)
    assert rows["layer0_flatten"].neurons == rows["layer0_flatten"].synapses == 0
    assert rows["layer0_flatten"].cores == 0
    assert (rows["layer1_dense"].neurons, rows["layer1_dense"].synapses) == (32, 64 * 32)
    assert rows["layer1_dense"].synaptic_bits == 64 * 32 * 8
    assert rows["layer3_dense"].connections == 16 * 10
    assert report.neurons == 32 + 16 + 10
    assert report.synapses == 2048 + 512 + 160
    assert report.synaptic_bits == 2720 * 8
    assert report.cores == 3
    check_fits(report)


def test_conv_network_by_hand(make_network):
    report = resource_report(make_network("conv", 0))
    rows = _rows(report)
    first = rows["layer0_conv2d"]  # 1x8x8 -> 4x8x8, 3x3, stride 1, padding 1
    assert first.neurons == 4 * 8 * 8
    assert first.synapses == 4 * 1 * 3 * 3
    # per axis, output positions touch 2, 3, 3, 3, 3, 3, 3, 2 input rows: 22
    assert first.connections == 4 * 1 * 22 * 22
    assert first.synaptic_bits == 36 * 8
    second = rows["layer1_conv2d"]  # 4x8x8 -> 4x4x4, stride 2, padding 1: 2 + 3 + 3 + 3 = 11
    assert second.connections == 4 * 4 * 11 * 11
    assert second.synapses == 4 * 4 * 9
    assert report.cores == 4


def test_locally_connected_and_pooling_by_hand(make_network):
    loccon = _rows(resource_report(make_network("loccon", 0)))["layer0_loccon2d"]
    assert loccon.neurons == 4 * 6 * 6
    assert loccon.synapses == loccon.connections == 144 * 9
    assert loccon.synaptic_bits == 1296 * (8 + 8)  # 8-bit weight + index of 144 neurons
    pool = _rows(resource_report(make_network("maxpool", 0)))["layer1_maxpool2d"]
    assert pool.neurons == 4 * 4 * 4
    assert pool.synapses == 64 * 4
    assert pool.synaptic_bits == 256 * (8 + 6)  # index of 64 neurons: 6 bits


def test_conv_beyond_one_core_stores_its_kernel_once_per_core_group():
    """A conv kernel is stored once per group of up to 8,192 of the layer's neurons."""
    wide = Layer(
        "conv2d", (3, 64, 64), (5, 64, 64), RELU, kernel=(3, 3), stride=(1, 1), padding=(1, 1)
    )
    row = layer_resources("layer0_conv2d", wide)
    assert row.neurons == 5 * 64 * 64 == 20_480  # 3 groups of <= 8,192 neurons
    assert row.synapses == 5 * 3 * 3 * 3  # the kernel, counted once
    assert row.connections == 5 * 3 * 190 * 190  # per axis 2 + 62 * 3 + 2 taps
    assert row.synaptic_bits == 135 * 8 * 3  # the kernel in each of the 3 groups
    assert row.cores == 3  # neurons decide

    deep = Layer(
        "conv2d", (128, 11, 11), (128, 9, 9), RELU, kernel=(3, 3), stride=(1, 1), padding=(0, 0)
    )
    row = layer_resources("layer1_conv2d", deep)
    assert row.neurons == 10_368 > NEURONS_PER_CORE  # 2 groups
    assert row.synapses == 128 * 128 * 9 == 147_456
    assert row.connections == 128 * 128 * 27 * 27
    assert row.synaptic_bits == 147_456 * 8 * 2 == 2_359_296
    assert row.cores == 3  # memory decides: 2,359,296 bits over 1,048,576-bit cores


def test_layers_spread_over_cores_by_neurons_and_by_memory():
    big = HardwareNetwork(
        input_shape=(784,),
        input_scale=1 / 255,
        layers=[
            Layer("dense", (784,), (10_000,), RELU),
            Layer("dense", (10_000,), (20_000,), RELU),
            Layer("dense", (20_000,), (10,), LINEAR),
        ],
    )
    rows = resource_report(big).layers
    # 784 * 10000 * 8 bits = 62,720,000 bits over 1,048,576-bit cores: 59.8 -> 60 cores
    assert SYNAPTIC_MEMORY_BITS_PER_CORE == 1_048_576
    assert rows[0].cores == 60
    # 20000 neurons need 3 cores, but 1.6 Gbit of weights need 1526
    assert rows[1].cores == 1526
    # 10 neurons, 200,000 weights = 1.6 Mbit: memory decides, 2 cores
    assert rows[2].cores == 2


def test_oversize_network_is_refused_naming_the_layer(make_network):
    wide = HardwareNetwork(
        input_shape=(784,),
        input_scale=1 / 255,
        layers=[
            Layer("dense", (784,), (40_000,), RELU),
            Layer("dense", (40_000,), (10,), LINEAR),
        ],
    )
    report = resource_report(wide)
    assert report.cores > CORES_PER_CHIP
    with pytest.raises(HardwareError, match=r"needs 244 cores .* layer0_dense alone needs 240"):
        check_fits(report)
    with pytest.raises(HardwareError, match=r"shrink it \(fewer units or channels.*2 chips$"
                       ) as error:
        check_fits(report)
    assert "--" not in str(error.value)  # no command-line option: neuroprop export has none
    check_fits(report, chips=2)


@pytest.mark.parametrize(
    ("neurons", "synapses", "limit"),
    [(1_000_001, 10, "neurons"), (10, 120_000_001, "synapses")],
)
def test_chip_neuron_and_synapse_limits_are_enforced(neurons, synapses, limit):
    """Per-core limits allow 1,048,576 neurons in 128 cores: the chip's 1M is tighter."""
    rows = (
        LayerResources("layer0_dense", "dense", neurons, synapses, synapses, 8, 100),
        LayerResources("layer1_dense", "dense", 5, 5, 5, 40, 1),
    )
    report = ResourceReport(rows)
    with pytest.raises(HardwareError, match=f"needs .* {limit} .* layer0_dense alone"):
        check_fits(report)
    check_fits(report, chips=2)


def test_render_lists_every_layer_and_the_totals(make_network):
    report = resource_report(make_network("conv", 0))
    text = report.render()
    lines = text.splitlines()
    for row in report.layers:
        assert any(line.startswith(row.name) for line in lines)
    total = next(line for line in lines if line.startswith("total"))
    assert f"{report.neurons:,}" in total and total.rstrip().endswith(str(report.cores))
    assert "limit (1 chip)" in text and "128" in text
    assert "limit (4 chips)" in report.render(chips=4)


def test_chip_count_must_be_positive(make_network):
    with pytest.raises(HardwareError, match="chips must be at least 1"):
        check_fits(resource_report(make_network("dense", 0)), chips=0)
