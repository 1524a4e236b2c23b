"""Export format: round trip, validation of bad exports, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
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
    MANIFEST_CHECKSUM,
    MANIFEST_FILE,
    load_export,
    manifest_checksum,
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
    assert a.learning == b.learning
    assert a.metadata == b.metadata
    assert len(a.layers) == len(b.layers)
    for left, right in zip(a.layers, b.layers, strict=True):
        for name in ("type", "neuron", "weight_exp"):
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


def _rewrite_manifest(export: Path, edit, sign: bool = True) -> None:
    """Edit the manifest and (``sign``) recompute its checksum, so that only the edit
    itself is wrong."""
    manifest = json.loads((export / MANIFEST_FILE).read_text())
    edit(manifest)
    if sign:
        manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
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
    assert manifest["version"] == FORMAT_VERSION == 3
    assert manifest[MANIFEST_CHECKSUM] == manifest_checksum(manifest)
    assert "neuron" not in manifest
    assert manifest["hardware_version"] == __version__
    created = datetime.fromisoformat(manifest["created"])
    assert created.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 600
    assert manifest["input"] == {"shape": [1, 8, 8], "bits": 8, "scale": 1 / 16}
    assert manifest["metadata"]["q_scale"] == net.metadata["q_scale"]
    first = manifest["layers"][0]
    assert first["type"] == "conv2d" and first["kernel"] == [3, 3] and first["padding"] == [1, 1]
    assert first["neuron"] == {"kind": "relu"} and "activation" not in first
    assert manifest["layers"][-1]["neuron"] == {"kind": "linear"}
    assert first["arrays"] == {
        "weight": f"{first['name']}.weight",
        "weight_int": f"{first['name']}.weight_int",
    }
    flatten = manifest["layers"][2]
    assert flatten["arrays"] == {"weight": None, "weight_int": None}
    assert flatten["neuron"] is None
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
    _rewrite_manifest(path, lambda m: m.update(version=4))
    with pytest.raises(HardwareError, match=r"version 4 is not supported.*version 3.*re-export"):
        load_export(path)


def test_version_2_exports_without_a_manifest_checksum_are_refused(tmp_path, make_network):
    """Version 2 manifests had no checksum: they are refused (re-export), not read unverified."""
    path = save_export(make_network("dense", 0), tmp_path / "export")
    _rewrite_manifest(path, lambda m: (m.update(version=2), m.pop(MANIFEST_CHECKSUM)), sign=False)
    with pytest.raises(HardwareError, match=r"version 2 is not supported.*version 3.*re-export"):
        load_export(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["layers"][1].update(weight_exp=m["layers"][1]["weight_exp"] + 1),
        lambda m: m["input"].update(bits=7),
        lambda m: m["input"].update(scale=m["input"]["scale"] * 2),
        lambda m: m["layers"][1]["neuron"].update(kind="linear"),
        lambda m: m.update(timesteps=2),
        lambda m: m["metadata"].update(dataset="mnist"),
        lambda m: m.pop("created"),
        lambda m: m.pop(MANIFEST_CHECKSUM),
        lambda m: m.update({MANIFEST_CHECKSUM: 0}),
    ],
    ids=["weight_exp", "input_bits", "input_scale", "neuron", "timesteps", "metadata",
         "created", "no_checksum", "checksum_not_a_string"],
)
def test_any_edit_of_the_manifest_fails_its_checksum(tmp_path, make_network, make_inputs, edit):
    """Every manifest field is covered, not only the arrays: an edit that keeps the export
    valid (a changed exponent would silently scale every Q-value) is refused in one line."""
    path = save_export(_quantised(make_network, make_inputs, "dense"), tmp_path / "export")
    _rewrite_manifest(path, edit, sign=False)
    with pytest.raises(HardwareError, match=r"checksum mismatch \(manifest_sha256\).*re-export"
                       ) as error:
        load_export(path)
    assert "\n" not in str(error.value)


def test_the_manifest_checksum_ignores_formatting(tmp_path, make_network):
    """The checksum is over the JSON's content: indentation and key order do not matter."""
    path = save_export(make_network("dense", 0), tmp_path / "export")
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    reordered = dict(reversed(list(manifest.items())))
    (path / MANIFEST_FILE).write_text(json.dumps(reordered, indent=7))
    assert load_export(path).num_classes == 10


def test_version_1_manifest_is_refused_with_one_line(tmp_path, make_network):
    """Version 1 had per-layer "activation" strings and a network-wide "neuron"."""
    path = save_export(make_network("dense", 0), tmp_path / "export")

    def downgrade(manifest):
        manifest.update(version=1, neuron={})
        for layer in manifest["layers"]:
            neuron = layer.pop("neuron")
            layer["activation"] = neuron["kind"] if neuron else "linear"

    _rewrite_manifest(path, downgrade)
    with pytest.raises(
        HardwareError, match=r"version 1 is not supported.*version 3.*re-export"
    ) as e:
        load_export(path)
    assert "\n" not in str(e.value)


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


@pytest.mark.parametrize(
    ("kind", "key", "shape", "message"),
    [
        # conv net: layer1 is conv 4 -> 4 channels 3x3: weight (4, 4, 3, 3)
        ("conv", "layer1_conv2d.weight", (4, 3, 3, 3), r"\(in channels: 3, not 4\)"),
        # loccon net: layer1 is loccon 4 -> 4 channels 3x3 at 2x2 positions: (4, 4, 4 * 9)
        ("loccon", "layer1_loccon2d.weight", (4, 4, 3 * 9), r"\(in channels x kernel taps: 27"),
    ],
)
def test_weight_in_channels_must_match_the_input(tmp_path, make_network, kind, key, shape, message):
    path = save_export(make_network(kind, 0), tmp_path / "export")

    def fewer_channels(arrays):
        arrays[key] = np.zeros(shape, dtype=np.float32)

    _rewrite_arrays(path, fewer_channels)
    name = key.split(".")[0]
    with pytest.raises(HardwareError, match=rf"{name}: weight has shape .*{message}") as error:
        load_export(path)
    assert "\n" not in str(error.value)


def test_conv_out_channels_must_match_the_weight(tmp_path, make_network):
    """out_shape (and the next in_shape) say 5 channels, the (4, 1, 3, 3) kernel makes 4."""
    path = save_export(make_network("conv", 0), tmp_path / "export")

    def five_channels(manifest):
        manifest["layers"][0]["out_shape"] = [5, 8, 8]
        manifest["layers"][1]["in_shape"] = [5, 8, 8]

    _rewrite_manifest(path, five_channels)
    with pytest.raises(
        HardwareError,
        match=r"layer0_conv2d: weight has shape \(4, 1, 3, 3\), expected \(5, 1, 3, 3\) .*"
        r"\(out channels: 4, not 5\)",
    ) as error:
        load_export(path)
    assert "\n" not in str(error.value)


def test_maxpool_must_keep_the_channel_count(tmp_path, make_network):
    path = save_export(make_network("maxpool", 0), tmp_path / "export")

    def more_channels(manifest):  # 4x8x8 pooled 2x2 into 5 channels, flattened: 80
        manifest["layers"][1]["out_shape"] = [5, 4, 4]
        manifest["layers"][2].update(in_shape=[5, 4, 4], out_shape=[80])
        manifest["layers"][3]["in_shape"] = [80]

    _rewrite_manifest(path, more_channels)
    with pytest.raises(
        HardwareError, match=r"layer1_maxpool2d: input \(4, 8, 8\) .* gives \(4, 4, 4\), not"
    ) as error:
        load_export(path)
    assert "\n" not in str(error.value)


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
        ("neuron", {"kind": "tanh"}, "layer1_dense: unknown neuron kind 'tanh'"),
        ("neuron", {"kind": "relu", "vth": 3}, "layer1_dense: relu neurons take no parameter vth"),
        ("neuron", "relu", 'layer1_dense: neuron must be a dict with a "kind"'),
        ("neuron", None, "layer1_dense: neuron must be a dict"),
        ("weight_exp", 40, "weight_exp 40 is outside"),
    ],
)
def test_unknown_layer_fields_are_refused(
    tmp_path, make_network, make_inputs, field, value, message
):
    path = save_export(_quantised(make_network, make_inputs, "dense"), tmp_path / "export")
    _rewrite_manifest(path, lambda m: m["layers"][1].update({field: value}))
    with pytest.raises(HardwareError, match=message) as error:
        load_export(path)
    assert "\n" not in str(error.value)


def test_layers_without_weights_carry_no_neuron(tmp_path, make_network):
    path = save_export(make_network("maxpool", 0), tmp_path / "export")
    _rewrite_manifest(path, lambda m: m["layers"][1].update(neuron={"kind": "relu"}))
    with pytest.raises(
        HardwareError, match="layer1_maxpool2d: a maxpool2d layer carries no neuron"
    ):
        load_export(path)


def test_output_layer_must_be_linear_dense(tmp_path, make_network):
    net = make_network("dense", 0)
    net.layers[-1].neuron = {"kind": "relu"}
    with pytest.raises(
        HardwareError, match="last layer is a relu dense, but the Q-value output must be a linear"
    ):
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
    with pytest.raises(HardwareError, match="'notes.txt', which is not part of an export"):
        save_export(make_network("dense", 0), tmp_path / "results")
    assert (tmp_path / "results" / "notes.txt").read_text() == "keep me"


def test_a_folder_with_a_manifest_and_other_files_is_not_overwritten(tmp_path, make_network):
    """A file named manifest.json does not make a folder an export: the user's other
    files (and a foreign manifest.json) are never deleted."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"format": "neuroprop-export"}')
    (folder / "thesis.tex").write_text("keep me")
    with pytest.raises(HardwareError, match="'thesis.tex', which is not part of an export"):
        save_export(make_network("dense", 0), folder)
    assert (folder / "thesis.tex").read_text() == "keep me"
    (folder / "thesis.tex").unlink()
    (folder / "manifest.json").write_text('{"name": "my web app"}')
    with pytest.raises(HardwareError, match="without a neuroprop manifest.json"):
        save_export(make_network("dense", 0), folder)
    assert (folder / "manifest.json").read_text() == '{"name": "my web app"}'


def test_an_export_with_its_lava_summary_is_replaced(tmp_path, make_network):
    path = save_export(make_network("dense", 0), tmp_path / "export")
    (path / "lava_summary.json").write_text("{}")
    save_export(make_network("conv", 1), path)
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "manifest.json"]


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

    with pytest.raises(HardwareError, match=r"cannot write the export .*No space left") as err:
        save_export(make_network("conv", 1), path)
    assert "\n" not in str(err.value)
    monkeypatch.undo()

    _assert_same_network(old, load_export(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


_KILLED_WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from hardware import format as fmt

source, target, moment = sys.argv[1:]
net = fmt.load_export(source)

def hang():
    print("ready", flush=True)
    time.sleep(120)

if moment == "writing":
    real_savez = np.savez
    np.savez = lambda *args, **kwargs: (real_savez(*args, **kwargs), hang())
else:  # between the two renames that replace an old export
    real_rename = Path.rename
    def rename(self, destination):
        if self.name == "content" and Path(destination) == Path(target).resolve():
            hang()
        return real_rename(self, destination)
    Path.rename = rename
fmt.save_export(net, target)
"""


@pytest.mark.parametrize("moment", ["writing", "replacing"])
def test_an_export_killed_midway_is_cleaned_up_by_the_next_export(tmp_path, make_network,
                                                                  moment):
    """SIGKILL while an export is written (or while it replaces an old one) leaves a hidden
    staging folder; the next export into that folder removes it, and puts back the old
    export that the killed one had moved aside. Folders of the user's are left alone."""
    old = make_network("dense", 0)
    source = save_export(make_network("conv", 1), tmp_path / "source")
    target = tmp_path / "exports" / "export"
    if moment == "replacing":
        save_export(old, target)
    lookalike = tmp_path / "exports" / ".neuroprop-export-new-1-mine"
    lookalike.mkdir(parents=True)
    (lookalike / "notes.txt").write_text("keep me")
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(source), str(target), moment],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert writer.stdout.readline().strip() == "ready"
    finally:
        writer.kill()
        writer.wait()
    hidden = sorted(p.name for p in target.parent.iterdir() if p.name.startswith("."))
    assert len(hidden) == (3 if moment == "replacing" else 2), hidden
    assert not target.exists()  # never written, or moved aside and not yet replaced

    save_export(make_network("dense", 2), tmp_path / "exports" / "another")
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        [lookalike.name, "another"] + (["export"] if moment == "replacing" else []))
    assert (lookalike / "notes.txt").read_text() == "keep me"
    if moment == "replacing":
        _assert_same_network(old, load_export(target))
