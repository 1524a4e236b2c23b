"""Bad input and a hostile file system end in one line and exit status 2, never a
traceback: read-only folders and full disks (train, resume, export, plot, run), broken
configs, edited run files and exports, and options that do not fit."""

import json
import shutil
from contextlib import ExitStack

import pytest
import torch

from hardware.format import MANIFEST_CHECKSUM, MANIFEST_FILE, manifest_checksum
from neuroprop.cli import main
from neuroprop.deploy import run as run_module
from neuroprop.deploy.lava_env import REPO_ROOT

needs_lava = pytest.mark.skipif(
    not (REPO_ROOT / ".venv-lava" / "bin" / "python").exists(),
    reason="the Lava environment .venv-lava is absent (run 'bash scripts/setup.sh')",
)


def one_line(capsys) -> str:
    """The command's stderr, which must be one error line (progress lines aside)."""
    lines = [line for line in capsys.readouterr().err.splitlines()
             if not line.startswith(("run directory:", "epoch "))]
    assert len(lines) == 1 and lines[0].startswith("neuroprop: error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch run and its export."""
    folder = tmp_path_factory.mktemp("finished")
    assert main(["train", "--run-dir", str(folder / "run"), "--no-progress",
                 "training.max_epochs=1"]) == 0
    assert main(["export", "--target", "lava", str(folder / "run"), "--out",
                 str(folder / "export")]) == 0
    return folder / "run", folder / "export"


@pytest.fixture
def run_copy(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    return run


@pytest.fixture
def export_copy(finished, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(finished[1], export)
    return export


# -- read-only folders and full disks ------------------------------------------------------

def test_train_into_a_read_only_folder(tmp_path, read_only, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with read_only(tmp_path):
        assert main(["train", "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
        assert "cannot use it as a run directory" in one_line(capsys)
        assert main(["train", "--no-progress"]) == 2  # the default runs/<time>-... folder
        assert one_line(capsys).endswith("pass a writable --run-dir")


def test_train_and_resume_on_a_full_disk(run_copy, tmp_path, full_disk, capsys):
    with full_disk():
        assert main(["train", "--run-dir", str(tmp_path / "new"), "--no-progress"]) == 2
        assert "cannot write" in one_line(capsys)
        before = (run_copy / "checkpoint.pt").read_bytes()
        assert main(["train", "--run-dir", str(run_copy), "--resume", "--no-progress",
                     "training.max_epochs=2"]) == 2
        line = one_line(capsys)
    assert line.startswith(f"neuroprop: error: cannot write {run_copy}/") and line.endswith(
        "make room on the disk or choose a writable folder")
    assert (run_copy / "checkpoint.pt").read_bytes() == before
    assert not [path for path in run_copy.iterdir() if path.name.endswith(".tmp")]


def test_resume_of_a_read_only_run(run_copy, read_only, capsys):
    with read_only(run_copy):
        assert main(["train", "--run-dir", str(run_copy), "--resume", "--no-progress",
                     "training.max_epochs=2"]) == 2
        assert one_line(capsys).startswith(f"neuroprop: error: cannot write {run_copy}/")


@pytest.mark.parametrize("problem", ["read_only", "full_disk"])
def test_export_and_plot_to_an_unwritable_place(finished, tmp_path, read_only, full_disk,
                                                capsys, problem):
    run, _ = finished
    out = tmp_path / "out"
    out.mkdir()
    with read_only(out) if problem == "read_only" else full_disk():
        assert main(["export", "--target", "lava", str(run), "--out", str(out / "export")]) == 2
        assert f"cannot write the export {out / 'export'} (" in one_line(capsys)
        assert main(["plot", str(run), "--out", str(out / "curves.png")]) == 2
        assert f"cannot write {out / 'curves.png'} (" in one_line(capsys)
    assert list(out.iterdir()) == []


@needs_lava
def test_run_with_a_read_only_export_is_refused_before_lava(export_copy, read_only, capsys,
                                                           monkeypatch):
    monkeypatch.setattr(run_module, "run_in_lava_env", lambda *args, **kwargs: 1 / 0)
    with read_only(export_copy):
        assert main(["run", "--target", "lava", str(export_copy), "--limit", "5"]) == 2
        assert "is not writable" in one_line(capsys)


@needs_lava
def test_a_disk_that_fills_during_the_lava_run_is_one_line_with_the_results(
        export_copy, full_disk, capsys, monkeypatch):
    real = run_module.run_in_lava_env
    with ExitStack() as stack:
        def run_then_fill(*args, **kwargs):
            result = real(*args, **kwargs)
            stack.enter_context(full_disk())
            return result

        monkeypatch.setattr(run_module, "run_in_lava_env", run_then_fill)
        assert main(["run", "--target", "lava", str(export_copy), "--limit", "20"]) == 2
    line = one_line(capsys)
    assert f"cannot write {export_copy / 'lava_summary.json'}" in line
    assert "the run measured accuracy" in line and "on Lava" in line


# -- configs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "message"), [
    ("training.seed=-1", "training.seed: expected an integer in [0, 4294967294], got -1"),
    ("training.seed=100000000000000000000", "training.seed: expected an integer in [0, "),
    ("network.layers=[{type: dense, units: 1000000000000}, {type: output}]",
     "network.layers[0].units: the layer would have 1,000,000,000,000 outputs per sample, "
     "more than 16,777,216"),
    ("network.layers=[{type: dense, units: 5000000}, {type: output}]",
     "network.layers[0].units: the layer would hold 320,000,000 weights, more than "
     "268,435,456"),
    ("dataset.shift=8", "dataset.shift: 8 pixels would move a 8-pixel image out of view; use "
     "0 to 7"),
])
def test_out_of_range_settings_are_refused(tmp_path, capsys, override, message):
    assert main(["train", "--run-dir", str(tmp_path / "run"), "--no-progress", override]) == 2
    assert one_line(capsys).startswith(f"neuroprop: error: {message}")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("name: d\u00e9j\u00e0\n".encode("latin-1"))
    assert main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert one_line(capsys) == (f"neuroprop: error: config {config}: not UTF-8 text (byte "
                                "0xe9 at offset 7); save it as UTF-8")


# -- edited run files --------------------------------------------------------------------------

EDITS = {
    "model_missing": lambda state: state.pop("model"),
    "weight_shape": lambda state: state["model"].update(
        {next(iter(state["model"])): torch.zeros(3, 3)}),
    "weight_key": lambda state: state["model"].update(unknown=torch.zeros(1)),
    "model_a_string": lambda state: state.update(model="weights"),
    "network_a_number": lambda state: state.update(network=7),
}
RESUME_EDITS = {
    "optimizer_a_list": lambda state: state.update(optimizer=[1, 2]),
    "momentum_shape": lambda state: state["optimizer"]["state"].update(
        {0: {"momentum_buffer": torch.zeros(2)}}),
    "epoch_a_string": lambda state: state["progress"].update(epoch="3"),
    "history_row_tensor": lambda state: state["progress"]["history"][0].update(
        val_accuracy=torch.tensor(0.5)),
    "progress_missing": lambda state: state.pop("progress"),
    "rng_wrong": lambda state: state.update(rng={"torch": 5}),
}


@pytest.mark.parametrize("edit", sorted(EDITS) + sorted(RESUME_EDITS))
def test_edited_checkpoints_are_one_line(run_copy, capsys, edit):
    """Valid torch files with missing keys, wrong shapes or wrong types: evaluate (best.pt)
    and --resume (checkpoint.pt) refuse them in one line and write nothing."""
    targets = ["checkpoint.pt"] + (["best.pt"] if edit in EDITS else [])
    for name in targets:
        state = torch.load(run_copy / name, weights_only=True)
        (EDITS | RESUME_EDITS)[edit](state)
        torch.save(state, run_copy / name)
    config = (run_copy / "config.yaml").read_text()
    assert main(["train", "--run-dir", str(run_copy), "--resume", "--no-progress",
                 "training.max_epochs=2"]) == 2
    assert "checkpoint.pt: " in one_line(capsys)
    assert (run_copy / "config.yaml").read_text() == config
    if edit in EDITS:
        assert main(["evaluate", str(run_copy)]) == 2
        assert "best.pt: " in one_line(capsys)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("metrics.jsonl", '{"event": "epoch", "epoch": 1, "val_accuracy": 0.5}\n{"event": "ep',
     "metrics.jsonl: line 2 is not a metrics row"),
    ("metrics.jsonl", '{"event": "epoch", "epoch": "one", "val_accuracy": 0.5}\n',
     "metrics.jsonl: line 1 is not a metrics row"),
    ("metrics.jsonl", "\xff\xfe", "metrics.jsonl: unreadable"),
    ("summary.json", '{"rule": "brainprop", ', "summary.json: unreadable"),
    ("summary.json", "[1, 2]", "summary.json: not a neuroprop summary"),
])
def test_plot_of_damaged_run_files_is_one_line(run_copy, tmp_path, capsys, name, text,
                                               message):
    (run_copy / name).write_bytes(text.encode("latin-1"))
    assert main(["plot", str(run_copy), "--out", str(tmp_path / "curves.png")]) == 2
    assert message in one_line(capsys)
    assert not (tmp_path / "curves.png").exists()


def test_plot_names_the_image_formats_it_knows(run_copy, tmp_path, capsys):
    assert main(["plot", str(run_copy), "--out", str(tmp_path / "curves.xyz")]) == 2
    line = one_line(capsys)
    assert "unknown image format 'xyz'" in line and ".png" in line and ".pdf" in line
    assert main(["plot", str(run_copy), "--out", str(tmp_path / "curves.svg")]) == 0
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")


# -- exports -----------------------------------------------------------------------------------

def test_run_given_the_manifest_file_names_the_folder(export_copy, capsys):
    assert main(["run", "--target", "lava", str(export_copy / MANIFEST_FILE)]) == 2
    assert one_line(capsys) == (f"neuroprop: error: {export_copy / MANIFEST_FILE} is a file; "
                                f"pass the export folder {export_copy} (the one that holds "
                                "manifest.json)")


@pytest.mark.parametrize("metadata", [[1, 2], "digits", None])
def test_an_export_whose_metadata_is_not_a_mapping_is_one_line(export_copy, capsys, metadata):
    manifest = json.loads((export_copy / MANIFEST_FILE).read_text())
    manifest["metadata"] = metadata
    manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)  # a consistent, odd manifest
    (export_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert main(["run", "--target", "lava", str(export_copy)]) == 2
    assert f"metadata is a {type(metadata).__name__}, expected a mapping" in one_line(capsys)


def test_a_maxpool_network_is_refused_at_export(tmp_path, capsys):
    """Lava cannot run max pooling: `export --target lava` says so, before writing anything."""
    run = tmp_path / "run"
    layers = ("[{type: conv2d, channels: 2, kernel: 3, padding: 1}, {type: maxpool2d, "
              "kernel: 2}, {type: output}]")
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=1",
                 f"network.layers={layers}"]) == 0
    capsys.readouterr()
    assert main(["export", "--target", "lava", str(run), "--out", str(tmp_path / "ex")]) == 2
    assert one_line(capsys) == (
        f"neuroprop: error: {run}: cannot be exported for Lava: layer1_maxpool2d: max-pooling "
        "cannot be expressed with lava-nc 0.10's processes; export a net without maxpool2d")
    assert not (tmp_path / "ex").exists()
