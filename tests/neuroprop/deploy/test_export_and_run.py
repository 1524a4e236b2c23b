"""The deployment path end to end: a trained run, its Lava export, and runs on Lava's
simulator compared with the integer model and the float PyTorch model."""

import json

import numpy as np
import pytest
import torch

from hardware.emulator import forward_fixed, forward_float
from hardware.format import load_export
from neuroprop.cli import main
from neuroprop.deploy.export import export_run, hardware_network
from neuroprop.deploy.lava_env import REPO_ROOT, lava_python
from neuroprop.errors import NeuropropError
from neuroprop.training.trainer import load_trained

needs_lava = pytest.mark.skipif(
    not (REPO_ROOT / ".venv-lava" / "bin" / "python").exists(),
    reason="the Lava environment .venv-lava is absent (run 'bash scripts/setup.sh')",
)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("deploy") / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=15"]) == 0
    return run


@pytest.fixture(scope="module")
def exported(trained_run):
    export_dir, report = export_run(trained_run)
    return export_dir, report


def test_export_writes_a_loadable_quantised_network_with_its_report(trained_run, exported):
    export_dir, report = exported
    net = load_export(export_dir)
    assert net.is_quantised and net.metadata["dataset"]["name"] == "digits"
    assert "cores" in report.lower()
    exp = load_trained(trained_run)
    x = exp.dataset.test.x[:100]
    with torch.no_grad():
        q_torch = exp.network(x.float() * exp.dataset.scale).double().numpy()
    q_export = forward_float(hardware_network(exp, trained_run), x.numpy() * exp.dataset.scale)
    np.testing.assert_allclose(q_export, q_torch, rtol=1e-5, atol=1e-6)
    q_int = forward_fixed(net, x.numpy())
    assert (q_int.argmax(1) == q_torch.argmax(1)).mean() >= 0.97


def test_export_refuses_a_run_dir_that_is_not_a_run(tmp_path):
    with pytest.raises(NeuropropError, match="not a run directory"):
        export_run(tmp_path)


@needs_lava
def test_run_on_lava_fixed_point_matches_the_integer_model(exported, capsys):
    export_dir, _ = exported
    assert main(["run", "--target", "lava", str(export_dir), "--limit", "120"]) == 0
    table = capsys.readouterr().out
    summary = json.loads((export_dir / "lava_summary.json").read_text())
    assert summary["samples"] == 120 and summary["mode"] == "fixed_pt"
    assert summary["agreement_with_emulator"] == 1.0
    assert summary["accuracy"] == summary["emulator_accuracy"]
    assert abs(summary["accuracy"] - summary["float_accuracy"]) <= 0.02
    assert summary["argmax_agreement_with_float"] >= 0.97
    assert summary["samples_per_second"] > 0
    for name in ("float (export weights)", "integer model", "Lava fixed_pt"):
        assert name in table


@needs_lava
def test_run_on_lava_floating_point_matches_the_float_model(exported):
    export_dir, _ = exported
    assert main(["run", "--target", "lava", str(export_dir), "--limit", "40", "--float"]) == 0
    summary = json.loads((export_dir / "lava_summary.json").read_text())
    assert summary["mode"] == "floating_pt"
    assert summary["agreement_with_emulator"] == 1.0
    assert summary["accuracy"] == summary["float_accuracy"]


def test_run_refuses_a_missing_export_in_one_line(tmp_path, capsys):
    assert main(["run", "--target", "lava", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuroprop: error: ") and "\n" not in err


def test_a_missing_lava_environment_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROPROP_LAVA_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(NeuropropError, match="Lava environment not found .*scripts/setup.sh"):
        lava_python()


@needs_lava
def test_per_sample_and_blas_runs_give_the_same_q_values(exported):
    export_dir, _ = exported
    results = {}
    for flags in ([], ["--dense-model", "blas"], ["--per-sample"]):
        assert main(["run", "--target", "lava", str(export_dir), "--limit", "15", *flags]) == 0
        summary = json.loads((export_dir / "lava_summary.json").read_text())
        assert summary["agreement_with_emulator"] == 1.0
        results[" ".join(flags)] = (summary["method"], summary["dense_model"])
    assert results == {"": ("streaming", "lava"), "--dense-model blas": ("streaming", "blas"),
                       "--per-sample": ("per_sample", "lava")}


@needs_lava
def test_run_reads_only_the_export_not_the_source_run(exported, tmp_path):
    """A later (or crafted) best.pt in the source run changes nothing: the float reference
    is the export's own float weights."""
    export_dir, _ = exported
    source = load_export(export_dir).metadata["source_run"]
    best = f"{source}/best.pt"
    original = open(best, "rb").read()
    try:
        with open(best, "wb") as handle:
            handle.write(b"not a checkpoint any more")
        assert main(["run", "--target", "lava", str(export_dir), "--limit", "30"]) == 0
    finally:
        with open(best, "wb") as handle:
            handle.write(original)
    summary = json.loads((export_dir / "lava_summary.json").read_text())
    net = load_export(export_dir)
    assert summary["agreement_with_emulator"] == 1.0 and summary["samples"] == 30
    assert 0 < summary["float_accuracy"] <= 1 and net.layers[-1].weight is not None
