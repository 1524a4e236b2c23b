"""The trainer end to end on the embedded digits: accuracy, resume, divergence, bad input."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neuroprop.cli import main
from neuroprop.config import CONFIG_DIR, load_config
from neuroprop.errors import NeuropropError
from neuroprop.training.trainer import Trainer

SHORT = ["training.max_epochs=4", "training.patience=null"]


def _final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"]


def test_digits_default_reaches_93_percent(tmp_path):
    summary = Trainer(load_config(), tmp_path / "run", progress=False).run()
    assert summary["test_accuracy"] >= 0.93, summary
    for key in ("rule", "dataset", "substrate", "epochs", "best_epoch", "val_accuracy",
                "test_accuracy", "seconds_per_epoch"):
        assert key in json.loads((tmp_path / "run" / "summary.json").read_text())
    lines = [json.loads(line) for line in
             (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in lines if row["event"] == "epoch"] == list(
        range(1, summary["epochs"] + 1))
    assert lines[-1]["event"] == "test"
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 1000


def test_bfloat16_products_train_the_digits_net_as_float32_does(tmp_path):
    """The digits default with bfloat16 operands (float32 weights, updates and optimizer)
    reaches the same bar as in float32, and its checkpoint says so."""
    config = load_config(overrides=["network.precision=bfloat16"])
    summary = Trainer(config, tmp_path / "run", progress=False).run()
    assert summary["test_accuracy"] >= 0.93, summary
    state = _final_state(tmp_path / "run")
    assert all(value.dtype == torch.float32 for value in state.values()
               if value.is_floating_point())
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "precision: bfloat16" in saved


def test_digits_spiking_default_reaches_90_percent_at_t16(tmp_path):
    config = load_config(CONFIG_DIR / "digits_spiking.yaml")
    assert config.network["substrate"] == "spiking" and config.network["timesteps"] <= 16
    summary = Trainer(config, tmp_path / "run", progress=False).run()
    assert summary["substrate"] == "spiking" and summary["rule"] == "brainprop"
    assert summary["test_accuracy"] >= 0.90, summary


def test_bptt_trains_the_spiking_net_and_ebp_refuses_it(tmp_path, capsys):
    config = load_config(CONFIG_DIR / "digits_spiking.yaml",
                         ["rule=bptt", "optimizer.lr=0.05", "training.max_epochs=3",
                          "network.timesteps=4"])
    summary = Trainer(config, tmp_path / "bptt", progress=False).run()
    assert summary["rule"] == "bptt" and summary["test_accuracy"] >= 0.5, summary
    argv = ["train", "--config", str(CONFIG_DIR / "digits_spiking.yaml"), "--run-dir",
            str(tmp_path / "ebp"), "rule=ebp"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "neuroprop: error: rule: ebp does not train spiking nets; use bptt (or brainprop) "
        "for them")


def test_resume_after_interrupt_ends_where_the_uninterrupted_run_ends(tmp_path, monkeypatch):
    config = load_config(overrides=[*SHORT, "dataset.shift=1"])  # shifts come from the saved RNG
    full = Trainer(config, tmp_path / "full", progress=False).run()

    calls = {"n": 0}
    original = Trainer._report

    def interrupt_after_two(self, row):
        original(self, row)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_report", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, tmp_path / "cut", progress=False).run()
    monkeypatch.setattr(Trainer, "_report", original)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt",
                      weights_only=False)["progress"]["epoch"] == 2
    resumed = Trainer(config, tmp_path / "cut", progress=False).run(resume=True)

    for key in ("epochs", "best_epoch", "val_accuracy", "test_accuracy"):
        assert resumed[key] == full[key]
    full_state, cut_state = _final_state(tmp_path / "full"), _final_state(tmp_path / "cut")
    assert all(torch.equal(full_state[k], cut_state[k]) for k in full_state)


def test_shifted_training_images_train_a_different_net_that_still_learns(tmp_path):
    settings = ["training.max_epochs=30", "training.patience=null"]
    plain = Trainer(load_config(overrides=settings), tmp_path / "plain", progress=False).run()
    shifted = Trainer(load_config(overrides=[*settings, "dataset.shift=1"]),
                      tmp_path / "shift", progress=False).run()
    # a 1-pixel shift is an eighth of an 8x8 digit: harder, still far above chance (0.1)
    assert plain["test_accuracy"] >= 0.9 and shifted["test_accuracy"] >= 0.6, (plain, shifted)
    plain_state, shifted_state = _final_state(tmp_path / "plain"), _final_state(tmp_path / "shift")
    assert not any(torch.equal(plain_state[k], shifted_state[k]) for k in plain_state
                   if k.endswith("weight"))


def test_resume_after_sigkill_of_the_cli(tmp_path):
    """A real kill: the process dies at an arbitrary point, the resumed run still matches."""
    args = ["training.max_epochs=6", "training.patience=null"]
    assert main(["train", "--run-dir", str(tmp_path / "full"), "--no-progress", *args]) == 0
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "neuroprop", "train", "--run-dir", str(run),
                             "--no-progress", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoint.pt").exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress"]) == 0
    full_state, killed_state = _final_state(tmp_path / "full"), _final_state(run)
    assert all(torch.equal(full_state[k], killed_state[k]) for k in full_state)
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    killed = json.loads((run / "summary.json").read_text())
    assert killed["test_accuracy"] == full["test_accuracy"]


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path,
                                                                              monkeypatch):
    original = Trainer._train_epoch

    def poison_third_epoch(self, exp, generator, epoch):
        row = original(self, exp, generator, epoch)
        if epoch == 3:
            with torch.no_grad():
                next(exp.network.parameters()).fill_(float("nan"))
        return row

    monkeypatch.setattr(Trainer, "_train_epoch", poison_third_epoch)
    run = tmp_path / "run"
    with pytest.raises(NeuropropError, match="diverged .* in epoch 3; the last good checkpoint "
                                             r"\(epoch 2\) is kept") as err:
        Trainer(load_config(overrides=SHORT), run, progress=False).run()
    assert "\n" not in str(err.value)
    saved = torch.load(run / "checkpoint.pt", weights_only=False)
    assert saved["progress"]["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    assert json.loads((run / "summary.json").read_text())["status"] == "diverged"


def test_an_existing_run_is_never_overwritten(tmp_path):
    run = tmp_path / "run"
    Trainer(load_config(overrides=["training.max_epochs=1"]), run, progress=False).run()
    with pytest.raises(NeuropropError, match="already holds a run; pass --resume"):
        Trainer(load_config(overrides=["training.max_epochs=1"]), run, progress=False).run()


def test_a_run_written_before_neurons_were_parts_still_evaluates_and_resumes(tmp_path,
                                                                            capsys):
    """Older runs say ``activation:`` in config.yaml and in their checkpoints, and their
    output layer names no neuron: they keep working."""
    import yaml

    from neuroprop.training.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "old"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=2"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    for layer in config["network"]["layers"]:
        if "neuron" in layer:
            neuron = layer.pop("neuron")
            if layer["type"] != "output":
                layer["activation"] = neuron
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for name in ("best.pt", "checkpoint.pt"):
        state = load_checkpoint(run / name)
        state["network"] = config["network"]
        save_checkpoint(run / name, state)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress",
                 "training.max_epochs=3"]) == 0


def test_a_run_written_when_tied_feedback_was_a_second_copy_resumes_to_the_same_end(tmp_path):
    """Checkpoints written before tied learning feedback weights were held as the forward
    weights carry one optimizer entry per copy (a momentum buffer each): they resume to
    exactly the run that never stopped."""
    from neuroprop.training.checkpoint import load_checkpoint, save_checkpoint

    args = ["--no-progress", "training.patience=null", "optimizer.momentum=0.9"]
    assert main(["train", "--run-dir", str(tmp_path / "full"), *args,
                 "training.max_epochs=3"]) == 0
    run = tmp_path / "old"
    assert main(["train", "--run-dir", str(run), *args, "training.max_epochs=2"]) == 0
    state = load_checkpoint(run / "checkpoint.pt")
    optimizer = state["optimizer"]
    old_state = {}  # every weight's entry, then its feedback copy's
    for index in optimizer["param_groups"][0]["params"]:
        assert "momentum_buffer" in optimizer["state"][index]
        for _ in range(2):
            old_state[len(old_state)] = {k: v.clone() for k, v in
                                         optimizer["state"][index].items()}
    old_params = list(old_state)
    state["optimizer"] = {"state": old_state,
                          "param_groups": [{**optimizer["param_groups"][0], "params": old_params}]}
    state["model"] = {k: v.clone() for k, v in state["model"].items()}  # two tensors again
    save_checkpoint(run / "checkpoint.pt", state)
    assert main(["train", "--run-dir", str(run), "--resume", *args,
                 "training.max_epochs=3"]) == 0
    full_state, old_final = _final_state(tmp_path / "full"), _final_state(run)
    assert all(torch.equal(full_state[k], old_final[k]) for k in full_state)


def test_cli_errors_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=1"]) == 0
    capsys.readouterr()
    cases = [
        (["train", "--run-dir", str(tmp_path / "a"), "optimizer.lr=fast"], "optimizer.lr"),
        (["train", "--run-dir", str(tmp_path / "b"), "trainig.seed=1"], "unknown key"),
        (["train", "--run-dir", str(run), "--resume", "network.layers=[{type: output}]"],
         "another architecture"),
        (["train", "--resume"], "--resume needs --run-dir"),
        (["evaluate", str(tmp_path / "nothing")], "not a run directory"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert last.startswith("neuroprop: error: ") and message in last, (argv, err)
        assert "Traceback" not in err


def test_corrupt_checkpoint_is_refused_with_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=1"]) == 0
    (run / "best.pt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "corrupt checkpoint" in err and "\n" not in err


def test_evaluate_rescores_a_saved_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "training.max_epochs=2"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    scores = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    assert scores["test_accuracy"] == summary["test_accuracy"]
    assert scores["val_accuracy"] == summary["val_accuracy"]


def test_plot_puts_two_runs_on_one_figure(tmp_path):
    for rule in ("brainprop", "ebp"):
        Trainer(load_config(overrides=["training.max_epochs=2", f"rule={rule}"]),
                tmp_path / rule, progress=False).run()
    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "brainprop"), str(tmp_path / "ebp"),
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 1000



def test_a_learning_rate_that_blows_up_stops_in_the_first_epoch(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--no-progress", "optimizer.lr=1000"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == ("neuroprop: error: weights diverged (NaN/inf) in epoch 1; no epoch "
                    "completed; lower optimizer.lr and train again")
    assert not (run / "checkpoint.pt").exists()
    assert json.loads((run / "summary.json").read_text())["status"] == "diverged"


def test_resume_takes_a_lowered_learning_rate(tmp_path):
    run = tmp_path / "run"
    Trainer(load_config(overrides=["training.max_epochs=2"]), run, progress=False).run()
    config = load_config(run / "config.yaml", ["training.max_epochs=3", "optimizer.lr=0.01"])
    Trainer(config, run, progress=False).run(resume=True)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["lr"] for row in rows if row["event"] == "epoch"] == [0.2, 0.2, 0.01]


def test_missing_and_corrupt_data_get_one_line_from_the_cli(tmp_path, capsys, monkeypatch):
    from neuroprop.data import download

    def no_network(url, timeout):
        raise OSError("network is unreachable")

    monkeypatch.setattr(download, "_open_url", no_network)
    data = tmp_path / "data"
    argv = ["train", "--config", str(CONFIG_DIR / "mnist_dense.yaml"), "--data-dir", str(data),
            "--run-dir", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("neuroprop: error: mnist: ") and "--data-dir" in last

    (data / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / "mnist" / name).write_bytes(b"\x00\x00\x08\x03garbage")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "neuroprop: error: mnist: " in err and "Traceback" not in err


def test_monitor_test_logs_test_accuracy_per_epoch(tmp_path):
    run = tmp_path / "run"
    summary = Trainer(load_config(overrides=["training.max_epochs=2",
                                             "training.monitor_test=true"]),
                      run, progress=False).run()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [row for row in rows if row["event"] == "epoch"]
    assert len(epochs) == 2 and all(0 <= row["test_accuracy_monitor"] <= 1 for row in epochs)
    assert rows[-1] == {"event": "test", "best_epoch": summary["best_epoch"],
                        "test_accuracy": summary["test_accuracy"],
                        "time_to_accuracy": summary["time_to_accuracy"]}


def test_time_to_accuracy_is_the_first_epoch_at_each_threshold_and_its_seconds(tmp_path):
    """One threshold the run reaches, one it cannot (1.0 within 3 epochs), one given twice."""
    run = tmp_path / "run"
    config = load_config(overrides=["training.max_epochs=3", "training.patience=null",
                                    "training.time_to_accuracy=[0.3, 1.0, 0.3]"])
    summary = Trainer(config, run, progress=False).run()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [row for row in rows if row["event"] == "epoch"]
    elapsed = list(itertools.accumulate(row["seconds"] for row in epochs))
    assert [row["elapsed_seconds"] for row in epochs] == pytest.approx(elapsed)
    assert all(row["train_seconds"] < row["seconds"] for row in epochs)
    first = next(row for row in epochs if row["val_accuracy"] >= 0.3)
    assert max(row["val_accuracy"] for row in epochs) < 1.0
    reached = {"threshold": 0.3, "epoch": first["epoch"],
               "seconds": pytest.approx(first["elapsed_seconds"])}
    assert summary["time_to_accuracy"] == [reached,
                                           {"threshold": 1.0, "epoch": None, "seconds": None},
                                           reached]
    assert json.loads((run / "summary.json").read_text())["time_to_accuracy"] == (
        summary["time_to_accuracy"])
    assert rows[-1]["time_to_accuracy"] == summary["time_to_accuracy"]


@pytest.mark.parametrize(("value", "message"), [
    ("[0.9, 1.5]", "training.time_to_accuracy: expected accuracies in (0, 1], e.g. "
                   "[0.9, 0.98], got [0.9, 1.5]"),
    ("fast", "training.time_to_accuracy: expected a float or a list of them ([] for none), "
             "got 'fast'"),
])
def test_bad_time_to_accuracy_is_one_line(tmp_path, capsys, value, message):
    argv = ["train", "--run-dir", str(tmp_path / "run"), f"training.time_to_accuracy={value}"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"neuroprop: error: {message}"
    assert not (tmp_path / "run").exists()
