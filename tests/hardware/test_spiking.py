"""Spiking exports without Lava: validation, the format, quantisation and the numpy model
(``hardware.spiking``). Lava against this model: tests/hardware/lava/test_lava_spiking.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hardware.emulator import forward_fixed, forward_float
from hardware.errors import HardwareError
from hardware.format import (
    MANIFEST_CHECKSUM,
    load_export,
    manifest_checksum,
    save_export,
    validate_network,
)
from hardware.graph import HardwareNetwork, Layer
from hardware.loihi import LIF_MSB_SHIFT, LIF_VTH_MAX
from hardware.quantize import quantisation_report, quantise


def _two_layer(timesteps: int, vth: float = 0.5) -> HardwareNetwork:
    """3 inputs -> 2 lif (du 1, dv 0) -> 2 li (du 1, dv 0), hand-picked weights."""
    hidden = Layer(
        "dense",
        (3,),
        (2,),
        {"kind": "lif", "du": 1.0, "dv": 0.0, "vth": vth},
        weight=np.array([[1.0, 0.0, 0.0], [0.0, 0.25, -0.5]], np.float32),
    )
    out = Layer(
        "dense",
        (2,),
        (2,),
        {"kind": "li", "du": 1.0, "dv": 0.0},
        weight=np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32),
    )
    return HardwareNetwork((3,), 0.25, [hidden, out], substrate="spiking", timesteps=timesteps)


def test_float_model_integrates_and_fires_as_the_equations_say():
    net = _two_layer(timesteps=4)
    x = np.array([[1.0, 2.0, 0.0]]) * net.input_scale  # a = [0.25, 0.125]
    q, (counts, v) = forward_float(net, x, return_activations=True)
    # du = 1, dv = 0: v accumulates a; spikes when v > 0.5, then 0. Neuron 0: v = .25, .5,
    # .75 (spike), .25 -> 1 spike at step 3; neuron 1: .125 ... .5 -> none.
    np.testing.assert_array_equal(counts, [[1.0, 0.0]])
    # the li sums W s over the steps: one spike of neuron 0 at step 3
    np.testing.assert_allclose(q, [[1.0, -1.0]])
    np.testing.assert_array_equal(v, q)


def test_timesteps_one_is_a_thresholded_layer():
    net = _two_layer(timesteps=1, vth=0.2)
    x = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 4.0]]) * net.input_scale
    hidden = (x @ net.layers[0].weight.T > 0.2).astype(float)
    np.testing.assert_allclose(forward_float(net, x), hidden @ net.layers[1].weight.T)


def test_quantised_registers_and_scale(make_spiking_network, make_inputs):
    net = make_spiking_network("dense", 0, lif={"du": 1.0, "dv": 0.0}, li={"du": 1.0, "dv": 0.0})
    quant = quantise(net, make_inputs(net, 200, seed=1))
    records = quant.metadata["quantisation"]["layers"]
    weight_layers = [lay for lay in quant.layers if lay.has_weights]
    for layer, record in zip(weight_layers, records, strict=True):
        assert layer.neuron["du_int"] == 4095 and layer.neuron["dv_int"] == 0
        if layer.neuron["kind"] == "lif":
            assert 0 < layer.neuron["vth_int"] <= LIF_VTH_MAX
            assert layer.neuron["vth_int"] == round(1.0 / record["input_step"])
    # the read-out never reached its threshold on the calibration data
    assert max(map(abs, records[-1]["calibration_voltage_range"])) < LIF_VTH_MAX << LIF_MSB_SHIFT
    assert quant.metadata["q_scale"] == records[-1]["input_step"]
    assert quant.metadata["quantisation"]["q_convention"] == "q = v_int[T] * q_scale / (64 T)"


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_fixed_point_agrees_with_float_on_most_argmaxes(make_spiking_network, make_inputs, kind):
    """Measured on these seeds (300 samples, T = 8): dense 0.963 / 0.947, conv 0.960 / 0.867;
    the weights-only agreement is the same seed by seed: 8-bit weights cost it all."""
    rates = []
    for seed in (0, 1):
        net = make_spiking_network(kind, seed)
        quant = quantise(net, make_inputs(net, 200, seed=seed + 10))
        report = quantisation_report(net, quant, make_inputs(net, 300, seed=seed + 20))
        rates.append(report["argmax_agreement"])
        assert report["q_relative_error"] < 0.3
        for layer in report["layers"]:
            assert layer["count_relative_error"] < 0.3
    assert min(rates) >= 0.85, rates


def test_export_round_trip_keeps_timesteps_and_registers(
    tmp_path, make_spiking_network, make_inputs
):
    net = make_spiking_network("conv", 0, timesteps=5)
    quant = quantise(net, make_inputs(net, 50))
    loaded = load_export(save_export(quant, tmp_path / "export"))
    assert (loaded.substrate, loaded.timesteps) == ("spiking", 5)
    assert [layer.neuron for layer in loaded.layers] == [layer.neuron for layer in quant.layers]
    x = make_inputs(net, 20, seed=3)
    np.testing.assert_array_equal(forward_fixed(loaded, x), forward_fixed(quant, x))


def test_rate_manifests_without_timesteps_load_with_one_step(tmp_path, make_network):
    path = _manifest_edit(tmp_path, make_network("dense", 0), lambda m: m.pop("timesteps"))
    assert load_export(path).timesteps == 1


def _manifest_edit(tmp_path, net, edit) -> str:
    path = save_export(net, tmp_path / "export")
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)  # only the edit is wrong
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def _hidden(manifest: dict) -> dict:
    return next(layer for layer in manifest["layers"] if layer["neuron"])["neuron"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("timesteps"), "no 'timesteps' entry, which a spiking export needs"),
        (lambda m: m.update(timesteps=0), "timesteps 0 must be an integer >= 1"),
        (lambda m: _hidden(m).update(vth=-1.0), "layer1_dense: vth -1.0 must be a positive"),
        (lambda m: _hidden(m).update(du=1.5), r"layer1_dense: du 1.5 is outside"),
        (lambda m: _hidden(m).update(dv_int=4096), "layer1_dense: dv_int 4096 is not an int"),
        (lambda m: _hidden(m).pop("vth_int"), "layer1_dense: lif neurons hold du_int, dv_int"),
        (lambda m: _hidden(m).update(kind="li"), "layer1_dense: li neurons take no parameter"),
        (
            lambda m: m.update(substrate="rate", timesteps=1),
            "layer1_dense: a lif neuron belongs in a spiking net, not a rate one",
        ),
    ],
)
def test_corrupt_spiking_exports_are_refused_in_one_line(
    tmp_path, make_spiking_network, make_inputs, edit, message
):
    net = make_spiking_network("dense", 0)
    quant = quantise(net, make_inputs(net, 30))
    path = _manifest_edit(tmp_path, quant, edit)
    with pytest.raises(HardwareError, match=message) as error:
        load_export(path)
    assert "\n" not in str(error.value)


def test_kinds_out_of_place_are_refused(make_network, make_spiking_network):
    net = make_spiking_network("dense", 0)
    net.layers[1].neuron = {"kind": "li", "du": 1.0, "dv": 0.0}
    with pytest.raises(HardwareError, match="layer1_dense: a li neuron cannot sit in a hidden"):
        validate_network(net)
    net = make_spiking_network("dense", 0)
    net.layers[-1].neuron = {"kind": "lif", "du": 1.0, "dv": 0.0, "vth": 1.0}
    with pytest.raises(HardwareError, match="must be a li dense layer"):
        validate_network(net)
    net = make_spiking_network("dense", 0)
    net.layers[1].neuron = {"kind": "relu"}
    with pytest.raises(HardwareError, match="a relu neuron belongs in a rate net"):
        validate_network(net)
    rate = make_network("dense", 0)
    rate.timesteps = 4
    with pytest.raises(HardwareError, match="a rate net runs 1 step per sample"):
        validate_network(rate)
    pooled = make_network("maxpool", 0)
    pooled.substrate, pooled.timesteps = "spiking", 4
    pooled.layers[0].neuron = {"kind": "lif", "du": 1.0, "dv": 0.0, "vth": 1.0}
    pooled.layers[-1].neuron = {"kind": "li", "du": 1.0, "dv": 0.0}
    with pytest.raises(HardwareError, match="layer1_maxpool2d: max-pooling of binary spikes"):
        validate_network(pooled)


def test_unquantised_spiking_net_is_refused_by_the_integer_model(make_spiking_network, make_inputs):
    net = make_spiking_network("dense", 0)
    for layer in net.layers:
        if layer.has_weights:
            layer.weight_int = np.zeros(layer.weight.shape, np.int16)
    with pytest.raises(HardwareError, match="no integer weights \\(or neuron registers\\)"):
        forward_fixed(net, make_inputs(net, 2))
