"""A run directory belongs to one process at a time; default run directories never clash."""

import os
import signal
import subprocess
import sys
import time

from neuroprop.cli import _default_run_dir, main


def test_a_second_train_into_a_busy_run_directory_is_refused(tmp_path, capsys):
    run = tmp_path / "busy"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuroprop", "train", "--run-dir", str(run), "--no-progress",
         "training.max_epochs=500", "training.patience=null"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "checkpoint.pt").exists():
            time.sleep(0.02)
        for argv in (["train", "--run-dir", str(run), "--no-progress"],
                     ["train", "--run-dir", str(run), "--resume", "--no-progress"]):
            assert main(argv) == 2
            last = capsys.readouterr().err.strip().splitlines()[-1]
            assert last == (f"neuroprop: error: {run} is in use by neuroprop process {proc.pid}; "
                            "wait for it to finish or choose another --run-dir")
        assert proc.poll() is None  # the first run goes on
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the kernel released the lock with the killed process: the run can be continued
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress",
                 "training.max_epochs=1"]) == 0


def test_default_run_directories_started_in_the_same_second_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt: "20261204-120000")
    first, second = _default_run_dir("digits", "brainprop"), _default_run_dir("digits",
                                                                              "brainprop")
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == first.name + "-2"


def test_a_run_directory_that_is_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("mine")
    assert main(["train", "--run-dir", str(target), "--no-progress"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"neuroprop: error: {target}: cannot use it as a run directory")
    assert target.read_text() == "mine"


def test_an_empty_validation_split_is_refused_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress",
                 "dataset.val_fraction=0"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "neuroprop: error: dataset digits: the val split has no samples; set "
        "dataset.val_fraction above 0 (model selection needs a validation split)")
    assert not (run / "checkpoint.pt").exists()


def test_resume_refuses_what_cannot_change_and_takes_what_can(tmp_path, capsys):
    import torch
    import yaml

    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=1"]) == 0
    config_before = (run / "config.yaml").read_text()
    cases = [("training.seed=3", "training.seed: "), ("training.batch_size=7",
                                                       "training.batch_size: "),
             ("dataset.limit=100", "dataset.limit: "), ("rule=ebp", "rule: "),
             ("optimizer.name=adam", "optimizer.name: ")]
    capsys.readouterr()
    for override, key in cases:
        assert main(["train", "--run-dir", str(run), "--resume", "--no-progress",
                     "training.max_epochs=2", override]) == 2, override
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith(f"neuroprop: error: {key}") and "a resumed run keeps it" in last
        assert (run / "config.yaml").read_text() == config_before  # nothing rewritten
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress",
                 "training.max_epochs=2", "optimizer.momentum=0.5",
                 "optimizer.weight_decay=0.001"]) == 0
    group = torch.load(run / "checkpoint.pt", weights_only=True)["optimizer"]["param_groups"][0]
    assert group["momentum"] == 0.5 and group["weight_decay"] == 0.001
    assert yaml.safe_load((run / "config.yaml").read_text())["optimizer"]["momentum"] == 0.5
