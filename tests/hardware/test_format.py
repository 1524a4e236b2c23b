"""Export format: round trip, validation of bad exports, atomic writes."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from hardware import __version__
from hardware.emulator import forward_fixed
from hardware.errors import HardwareError
from hardware.format import (
    ARRAYS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    load_export,
    save_export,
)
from hardware.graph import HardwareNetwork
from hardware.quantize import quantise


def _quantised(make_network, make_inputs, kind: str, seed: int = 0) -> HardwareNetwork:
    net = make_network(kind, seed)
    return quantise(net, make_inputs(net, 64, seed=seed))


def _assert_same_network(a: HardwareNetwork, b: HardwareNetwork) -> None:
    assert tuple(a.input_shape) == tuple(b.input_shape)
    assert a.input_scale == b.input_scale
    assert a.input_bits == b.input_bits
    assert a.substrate == b.substrate
    assert a.neuron == b.neuron
    assert a.learning == b.learning
    assert a.metadata == b.metadata
    assert len(a.layers) == len(b.layers)
    for left, right in zip(a.layers, b.layers, strict=True):
        for name in ("type", "activation", "weight_exp"):
            assert getattr(left, name) == getattr(right, name)
        for name in ("in_shape", "out_shape", "kernel", "stride", "padding"):
            value = getattr(left, name)
            expected = None if value is None else tuple(value)
            other = getattr(right, name)
            assert (None if other is None else tuple(other)) == expected
        for name in ("weight", "weight_int"):
            x, y = getattr(left, name), getattr(right, name)
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)


def _rewrite_manifest(export: Path, edit) -> None:
    manifest = json.loads((export / MANIFEST_FILE).read_text())
    edit(manifest)
    (export / MANIFEST_FILE).write_text(json.dumps(manifest))


def _rewrite_arrays(export: Path, edit) -> None:
    """Change the arrays and re-sign them, so that only the edit itself is wrong."""
    with np.load(export / ARRAYS_FILE) as stored:
        arrays = {key: stored[key] for key in stored.files}
    edit(arrays)
    np.savez(export / ARRAYS_FILE, **arrays)
    digest = hashlib.sha256((export / ARRAYS_FILE).read_bytes()).hexdigest()
    _rewrite_manifest(export, lambda m: m["arrays"].update(sha256=digest))


@pytest.mark.parametrize("kind", ["dense", "conv", "loccon", "maxpool"])
def test_round_trip_keeps_every_field_and_array(tmp_path, make_network, make_inputs, kind):
    net = _quantised(make_network, make_inputs, kind)
    net.neuron = {"model": "graded_relu", "vth": 0}
    net.learning = {"rule": "brainprop", "lr": 0.1, "tau": [1, 2]}
    net.metadata.update(dataset="digits", float_accuracy=np.float64(0.97), epochs=np.int64(3))

    path = save_export(net, tmp_path / "export")
    loaded = load_export(path)

    _assert_same_network(net, loaded)
    for layer in loaded.layers:
        if layer.has_weights:
            assert layer.weight.dtype == np.float32
            assert layer.weight_int.dtype == np.int16
    x = make_inputs(net, 32, seed=5)
    np.testing.assert_array_equal(forward_fixed(net, x), forward_fixed(loaded, x))


def test_manifest_fields(tmp_path, make_network, make_inputs):
    net = _quantised(make_network, make_inputs, "conv")
    path = save_export(net, tmp_path / "export")
    manifest = json.loads((path / MANIFEST_FILE).read_text())

    assert manifest["format"] == "neuroprop-export"
    assert manifest["version"] == FORMAT_VERSION == 1
    assert manifest["hardware_version"] == __version__
    created = datetime.fromisoformat(manifest["created"])
    assert created.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 600
    assert manifest["input"] == {"shape": [1, 8, 8], "bits": 8, "scale": 1 / 16}
    assert manifest["metadata"]["q_scale"] == net.metadata["q_scale"]
    first = manifest["layers"][0]
    assert first["type"] == "conv2d" and first["kernel"] == [3, 3] and first["padding"] == [1, 1]
    assert first["arrays"] == {
        "weight": f"{first['name']}.weight",
        "weight_int": f"{first['name']}.weight_int",
    }
    flatten = manifest["layers"][2]
    assert flatten["arrays"] == {"weight": None, "weight_int": None}
    with np.load(path / ARRAYS_FILE) as stored:
        assert sorted(stored.files) == sorted(
            key for layer in manifest["layers"] for key in layer["arrays"].values() if key
        )


def test_float_only_export_round_trips(tmp_path, make_network):
    net = make_network("dense", 3)
    loaded = load_export(save_export(net, tmp_path / "float"))
    _assert_same_network(net, loaded)
    assert not loaded.is_quantised


def test_manifest_path_is_accepted(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    assert load_export(path / MANIFEST_FILE).num_classes == 10


def test_wrong_version_is_refused_naming_both_versions(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    _rewrite_manifest(path, lambda m: m.update(version=2))
    with pytest.raises(HardwareError, match=r"version 2 is not supported.*version 1.*re-export"):
        load_export(path)


def test_wrong_format_name_is_refused(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    _rewrite_manifest(path, lambda m: m.update(format="nir"))
    with pytest.raises(HardwareError, match="format is 'nir'"):
        load_export(path)


def test_truncated_json_is_refused(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    text = (path / MANIFEST_FILE).read_text()
    (path / MANIFEST_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(HardwareError, match="unreadable JSON") as error:
        load_export(path)
    assert "\n" not in str(error.value)


def test_corrupt_arrays_fail_the_checksum(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    data = bytearray((path / ARRAYS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / ARRAYS_FILE).write_bytes(bytes(data))
    with pytest.raises(HardwareError, match="checksum mismatch"):
        load_export(path)


def test_missing_directory_manifest_and_arrays_are_refused(tmp_path, make_network):
    with pytest.raises(HardwareError, match="no such export directory"):
        load_export(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HardwareError, match="manifest.json: missing"):
        load_export(tmp_path / "empty")
    path = save_export(make_network("dense", 0), tmp_path / "export")
    (path / ARRAYS_FILE).unlink()
    with pytest.raises(HardwareError, match="arrays.npz: missing"):
        load_export(path)


def test_missing_array_is_refused(tmp_path, make_network, make_inputs):
    path = save_export(_quantised(make_network, make_inputs, "dense"), tmp_path / "export")
    _rewrite_arrays(path, lambda arrays: arrays.pop("layer2_dense.weight_int"))
    with pytest.raises(HardwareError, match="layer2_dense.*'layer2_dense.weight_int' is missing"):
        load_export(path)


def test_broken_layer_chain_is_refused(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    _rewrite_manifest(path, lambda m: m["layers"][2].update(in_shape=[31]))
    with pytest.raises(HardwareError, match=r"layer2_dense: in_shape \(31,\) does not match"):
        load_export(path)


def test_weight_shape_inconsistent_with_layer_is_refused(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")

    def widen(manifest):  # a consistent chain 64 -> 33 -> 16 with a (32, 64) weight
        manifest["layers"][1]["out_shape"] = [33]
        manifest["layers"][2]["in_shape"] = [33]

    _rewrite_manifest(path, widen)
    with pytest.raises(HardwareError, match=r"layer1_dense: weight has shape \(32, 64\)"):
        load_export(path)


def test_conv_output_shape_is_checked(tmp_path, make_network):
    path = save_export(make_network("conv", 0), tmp_path / "export")
    _rewrite_manifest(path, lambda m: m["layers"][0].update(stride=[2, 2]))
    with pytest.raises(HardwareError, match=r"layer0_conv2d: input \(1, 8, 8\) .* gives"):
        load_export(path)


def test_odd_mixed_sign_weights_are_refused(tmp_path, make_network, make_inputs):
    path = save_export(_quantised(make_network, make_inputs, "dense"), tmp_path / "export")

    def make_odd(arrays):
        arrays["layer1_dense.weight_int"][0, 0] = 7

    _rewrite_arrays(path, make_odd)
    with pytest.raises(HardwareError, match="layer1_dense: 1 weight mantissas would be altered"):
        load_export(path)


def test_out_of_range_weights_are_refused(tmp_path, make_network, make_inputs):
    path = save_export(_quantised(make_network, make_inputs, "dense"), tmp_path / "export")

    def overflow(arrays):
        arrays["layer3_dense.weight_int"][0, 0] = 300

    _rewrite_arrays(path, overflow)
    with pytest.raises(HardwareError, match="layer3_dense: .* would be altered"):
        load_export(path)


def test_wrong_array_dtype_is_refused(tmp_path, make_network, make_inputs):
    path = save_export(_quantised(make_network, make_inputs, "dense"), tmp_path / "export")

    def as_float(arrays):
        key = "layer1_dense.weight_int"
        arrays[key] = arrays[key].astype(np.float64)

    _rewrite_arrays(path, as_float)
    with pytest.raises(HardwareError, match="dtype float64, expected int16"):
        load_export(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("type", "attention", "unknown layer type 'attention'"),
        ("activation", "tanh", "unknown activation 'tanh'"),
        ("weight_exp", 40, "weight_exp 40 is outside"),
    ],
)
def test_unknown_layer_fields_are_refused(
    tmp_path, make_network, make_inputs, field, value, message
):
    path = save_export(_quantised(make_network, make_inputs, "dense"), tmp_path / "export")
    _rewrite_manifest(path, lambda m: m["layers"][1].update({field: value}))
    with pytest.raises(HardwareError, match=message):
        load_export(path)


def test_output_layer_must_be_linear_dense(tmp_path, make_network):
    net = make_network("dense", 0)
    net.layers[-1].activation = "relu"
    with pytest.raises(HardwareError, match="must be a linear dense layer"):
        save_export(net, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_unserialisable_metadata_is_refused_without_leftovers(tmp_path, make_network):
    net = make_network("dense", 0)
    net.metadata["callback"] = object()
    with pytest.raises(HardwareError, match="not JSON-serialisable"):
        save_export(net, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


def test_saving_over_an_export_replaces_it(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    newer = make_network("conv", 1)
    save_export(newer, path)
    _assert_same_network(newer, load_export(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_directory_that_is_not_an_export_is_not_overwritten(tmp_path, make_network):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("keep me")
    with pytest.raises(HardwareError, match="not an export"):
        save_export(make_network("dense", 0), tmp_path / "results")
    assert (tmp_path / "results" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("failing", ["arrays", "manifest"])
def test_failed_write_leaves_the_old_export_intact(tmp_path, make_network, monkeypatch, failing):
    old = make_network("dense", 0)
    path = save_export(old, tmp_path / "export")

    if failing == "arrays":
        real_savez = np.savez

        def broken_savez(file, **arrays):  # writes part of the file, then the disk is full
            first = next(iter(arrays))
            real_savez(file, **{first: arrays[first]})
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(np, "savez", broken_savez)
    else:

        def broken_write_text(self, *args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Path, "write_text", broken_write_text)

    with pytest.raises(OSError, match="No space left"):
        save_export(make_network("conv", 1), path)
    monkeypatch.undo()

    _assert_same_network(old, load_export(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
