"""``neuroprop train --init-from``: a run starts from another net's weights."""

from __future__ import annotations

import json

import pytest
import torch

from neuroprop.cli import main
from neuroprop.training.checkpoint import load_checkpoint

ONE_EPOCH = ["training.max_epochs=1"]
TRAIN = ["train", "--no-progress"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    run = tmp_path_factory.mktemp("init") / "source"
    assert main([*TRAIN, "--run-dir", str(run), *ONE_EPOCH]) == 0
    return run


def weights(run) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "best.pt")["model"]


def test_a_run_starts_from_the_source_weights(source, tmp_path):
    """With a learning rate of 1e-9 one epoch changes no weight by more than 1e-6: the
    run's best weights are the source's, tied feedback weights included."""
    run = tmp_path / "run"
    assert main([*TRAIN, "--run-dir", str(run), "--init-from", str(source),
                 "optimizer.lr=1e-9", *ONE_EPOCH]) == 0
    ours, theirs = weights(run), weights(source)
    for name in ("layers.1.weight", "layers.2.weight"):
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6)
        torch.testing.assert_close(ours[name.replace("weight", "feedback_weight")], ours[name],
                                   rtol=0, atol=1e-6)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["init_from"] == str(source)
    assert summary["test_accuracy"] == json.loads(
        (source / "summary.json").read_text())["test_accuracy"]
    fresh = tmp_path / "fresh"
    assert main([*TRAIN, "--run-dir", str(fresh), "optimizer.lr=1e-9", *ONE_EPOCH]) == 0
    assert not torch.allclose(weights(fresh)["layers.1.weight"], theirs["layers.1.weight"],
                              atol=1e-3)


def test_random_feedback_keeps_its_own_draw(source, tmp_path):
    run = tmp_path / "run"
    assert main([*TRAIN, "--run-dir", str(run), "--init-from", str(source / "best.pt"),
                 "rule.feedback.init=random", "rule.feedback.learn=false",
                 "optimizer.lr=1e-9", *ONE_EPOCH]) == 0
    ours = weights(run)
    torch.testing.assert_close(ours["layers.1.weight"], weights(source)["layers.1.weight"],
                               rtol=0, atol=1e-6)
    assert not torch.allclose(ours["layers.1.feedback_weight"], ours["layers.1.weight"])


@pytest.mark.parametrize(("override", "message"), [
    ("network.layers=[{type: dense, units: 32}, {type: output}]",
     "layers.1.weight has shape [256, 64], the config's network needs [32, 64]"),
    ("network.layers=[{type: dense, units: 256}, {type: dense, units: 10}, {type: output}]",
     "has no layers.3.weight"),
    ("network.layers=[{type: output}]", "has shape"),
])
def test_another_architecture_is_refused_in_one_line(source, override, message, tmp_path,
                                                     capsys):
    assert main([*TRAIN, "--run-dir", str(tmp_path / "run"), "--init-from", str(source),
                 override, *ONE_EPOCH]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("neuroprop: error: ") and message in err


def test_a_missing_source_is_one_line(tmp_path, capsys):
    assert main([*TRAIN, "--run-dir", str(tmp_path / "run"), "--init-from",
                 str(tmp_path / "nothing"), *ONE_EPOCH]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("neuroprop: error: ") and "no checkpoint here" in err
