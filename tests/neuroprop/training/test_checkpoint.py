"""Checkpoints are read without executing anything they hold."""

import os

import pytest
import torch

from neuroprop.cli import main
from neuroprop.errors import NeuropropError
from neuroprop.training.checkpoint import load_checkpoint


class Payload:
    """Unpickling this runs a shell command: what a crafted checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_checkpoint_is_refused_without_running_its_payload(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "crafted.pt"
    torch.save({"model": Payload(marker), "network": {}}, path)
    with pytest.raises(NeuropropError, match="corrupt checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_evaluate_and_resume_of_a_run_with_a_crafted_checkpoint_run_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=1"]) == 0
    marker = tmp_path / "payload-ran"
    for name in ("best.pt", "checkpoint.pt"):
        torch.save({"model": Payload(marker), "network": {}}, run / name)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress"]) == 2
    assert "corrupt checkpoint" in capsys.readouterr().err
    assert not marker.exists()
