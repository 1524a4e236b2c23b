"""`neuroprop sweep` on a local Ray with two workers, on digits: run directories, the mean (sd)
summary, resume (finished runs kept untouched, an interrupted one resumed, capped ones
extended by a higher cap), failed runs reported, and bad input stopped with one line before
anything starts."""

import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import neuroprop.sweep.sweep as sweep_module
from neuroprop.cli import main
from neuroprop.config import CONFIG_DIR
from neuroprop.errors import NeuropropError
from neuroprop.sweep.plan import plan_sweep
from neuroprop.sweep.sweep import run_state
from neuroprop.sweep.task import train_run
from neuroprop.training.lock import run_lock
from neuroprop.training.trainer import Trainer

CONFIG = str(CONFIG_DIR / "digits_dense.yaml")
TINY = ["dataset.limit=300", "training.max_epochs=3", "training.patience=null",
        "training.time_to_accuracy=[0.1, 1.0]"]
GRID = "optimizer.lr=0.2,0.5,1e9"  # 1e9 diverges in its first epoch: a failed run
RUNS = [f"seed{seed}-optimizer.lr={lr}" for lr in ("0.2", "0.5", "1e9") for seed in (0, 1)]
INTERRUPTED = "seed1-optimizer.lr=0.5"


def _argv(out: Path, *extra: str) -> list[str]:
    return ["sweep", CONFIG, *TINY, "--seeds", "0-1", "--grid", GRID, "--out", str(out),
            "--no-progress", *extra]


def _ray_processes() -> set[int]:
    """Processes of Ray on this machine (its workers, raylet, GCS, monitors)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ray::" in cmdline or b"/site-packages/ray/" in cmdline:
            pids.add(int(entry.name))
    return pids


def _files(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(path.relative_to(root)): (path.stat().st_mtime_ns, path.read_bytes())
            for path in sorted(root.rglob("*")) if path.is_file()}


def _interrupt_after_first_epoch(out: Path, monkeypatch) -> dict:
    """A run of the sweep killed after its first epoch: checkpoint, no summary."""
    run = next(r for r in plan_sweep(CONFIG, TINY, "0-1", [GRID]).runs if r.name == INTERRUPTED)

    def stop(self, row):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_report", stop)
        with pytest.raises(KeyboardInterrupt):
            Trainer(run.config, out / run.name, progress=False).run()
    assert not (out / run.name / "summary.json").exists()
    return json.loads((out / run.name / "metrics.jsonl").read_text().splitlines()[0])


def test_a_sweep_on_local_ray_summarises_resumes_and_keeps_finished_runs(tmp_path, capsys,
                                                                         monkeypatch):
    out = tmp_path / "sweep"
    first_epoch = _interrupt_after_first_epoch(out, monkeypatch)
    before = _ray_processes()
    try:
        assert main(_argv(out, "--workers", "2")) == 2  # two runs diverge
    finally:
        deadline = time.monotonic() + 15
        while _ray_processes() - before and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not _ray_processes() - before, "Ray processes left behind"
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == (
        f"neuroprop: error: 2 of 6 runs failed, each named with its error in {out}/summary.md; "
        "fix the cause and run the same command again (finished runs are kept)")

    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["run"] for r in runs] == RUNS
    assert {r["run"]: r["action"] for r in runs} == {
        name: "resumed" if name == INTERRUPTED else "started" for name in RUNS}
    summaries = {name: json.loads((out / name / "summary.json").read_text()) for name in RUNS}
    trainers = {(out / name / ".lock").read_text() for name in RUNS}
    assert f"neuroprop process {os.getpid()}" not in trainers  # trained by Ray's workers
    assert all((out / name / "train.log").read_text().startswith("epoch    1")
               for name in RUNS if "0.2" in name)
    for name, record in zip(RUNS, runs, strict=True):
        assert record["status"] == summaries[name]["status"]
        assert record["test_accuracy"] == summaries[name].get("test_accuracy")

    resumed = [json.loads(line) for line in
               (out / INTERRUPTED / "metrics.jsonl").read_text().splitlines()]
    assert resumed[0] == first_epoch  # epoch 1 kept from before the kill, not trained again
    assert [row["epoch"] for row in resumed if row["event"] == "epoch"] == [1, 2, 3]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 6 and summary["failed"] == 2
    assert summary["grid"] == {"optimizer.lr": ["0.2", "0.5", "1e9"]}
    for combo, lr in zip(summary["combinations"], ("0.2", "0.5", "1e9"), strict=True):
        mine = [summaries[f"seed{seed}-optimizer.lr={lr}"] for seed in (0, 1)]
        assert combo["grid"] == {"optimizer.lr": lr} and combo["runs"] == 2
        if lr == "1e9":
            assert combo["finished"] == 0 and combo["test_accuracy"]["mean"] is None
            assert [f["run"] for f in combo["failed"]] == [f"seed{s}-optimizer.lr=1e9"
                                                           for s in (0, 1)]
            assert all(f["error"].startswith("weights diverged (NaN/inf) in epoch 1; ")
                       for f in combo["failed"])
            continue
        assert combo["finished"] == 2 and combo["failed"] == []
        for key in ("test_accuracy", "best_epoch", "epochs"):
            values = [s[key] for s in mine]
            assert combo[key] == {"mean": pytest.approx(statistics.fmean(values)),
                                  "sd": pytest.approx(statistics.stdev(values)), "n": 2}
        low, high = combo["time_to_accuracy"]
        epochs = [s["time_to_accuracy"][0]["epoch"] for s in mine]
        assert low["threshold"] == 0.1 and low["reached"] == 2
        assert low["epoch"]["mean"] == pytest.approx(statistics.fmean(epochs))
        assert high == {"threshold": 1.0, "reached": 0,
                        "epoch": {"mean": None, "sd": None, "n": 0},
                        "seconds": {"mean": None, "sd": None, "n": 0}}
        accuracy = combo["test_accuracy"]
        row = f"| {lr} | 2/2 | {100 * accuracy['mean']:.2f} ({100 * accuracy['sd']:.2f}) |"
        assert row in captured.out
    assert captured.out == (out / "summary.md").read_text()
    assert "- seed0-optimizer.lr=1e9: weights diverged" in captured.out
    assert (out / "curves.png").stat().st_size > 10_000

    # Again: every run has its summary.json, so nothing is trained and no file changes.
    files = {name: _files(out / name) for name in RUNS}

    def no_ray(*args, **kwargs):
        raise AssertionError("a sweep with nothing left to train started Ray")

    monkeypatch.setattr(sweep_module, "run_jobs", no_ray)
    assert main(_argv(out)) == 2
    assert {name: _files(out / name) for name in RUNS} == files
    again = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["action"] for r in again] == ["kept"] * 6
    assert json.loads((out / "summary.json").read_text())["combinations"][:2] == (
        summary["combinations"][:2])
    capsys.readouterr()

    # A changed setting (a lower cap among them) is refused before anything runs: one
    # table never mixes settings.
    assert main(["sweep", CONFIG, *TINY, "training.max_epochs=2", "--seeds", "0-1", "--grid",
                 GRID, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"neuroprop: error: {out / RUNS[0]} was trained with training.max_epochs = 3, this "
        "sweep sets 2; choose another --out (or move that run away)")
    assert {name: _files(out / name) for name in RUNS} == files


def test_a_higher_cap_extends_the_runs_it_ended_and_keeps_the_early_stopped(tmp_path):
    out = tmp_path / "sweep"
    # lr 1e-6 learns nothing: patience 1 ends a run after epoch 2, patience 50 runs to the cap
    base = ["dataset.limit=300", "training.time_to_accuracy=[]", "optimizer.lr=1e-6"]
    grid = "training.patience=50,1"
    first = plan_sweep(CONFIG, [*base, "training.max_epochs=3"], "0", [grid])
    for run in first.runs:
        Trainer(run.config, out / run.name, progress=False).run()
    capped, stalled = (out / run.name for run in first.runs)
    assert json.loads((capped / "summary.json").read_text())["stop_reason"] == "max_epochs"
    assert json.loads((stalled / "summary.json").read_text())["stop_reason"] == (
        "early_stopping")
    before = (capped / "metrics.jsonl").read_text().splitlines()[:3]
    first_weights = torch.load(capped / "checkpoint.pt", weights_only=False)["model"]

    longer = plan_sweep(CONFIG, [*base, "training.max_epochs=5"], "0", [grid])
    assert [run_state(run, out / run.name) for run in longer.runs] == ["resumed", "kept"]
    threads = torch.get_num_threads()  # train_run sets a Ray worker's: restore this process's
    try:
        assert train_run(longer.runs[0].config, str(capped), None) is None
    finally:
        torch.set_num_threads(threads)
    rows = [json.loads(line) for line in (capped / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if row["event"] == "epoch"] == [1, 2, 3, 4, 5]
    assert [json.loads(line) for line in before] == rows[:3]  # continued, not retrained
    assert json.loads((capped / "summary.json").read_text())["epochs"] == 5
    straight = tmp_path / "straight"  # the same run with the cap of 5 from the start
    summary = Trainer(longer.runs[0].config, straight, progress=False).run()
    assert json.loads((capped / "summary.json").read_text())["test_accuracy"] == (
        summary["test_accuracy"])
    extended_weights, straight_weights = (
        torch.load(path / "checkpoint.pt", weights_only=False)["model"]
        for path in (capped, straight))
    assert all(torch.equal(extended_weights[k], straight_weights[k]) for k in straight_weights)
    assert not all(torch.equal(first_weights[k], straight_weights[k]) for k in straight_weights)
    # extended once, the run is finished at the new cap: kept from now on
    assert run_state(longer.runs[0], capped) == "kept"

    lower = plan_sweep(CONFIG, [*base, "training.max_epochs=2"], "0", [grid])
    with pytest.raises(NeuropropError, match="was trained with training.max_epochs = 5, this "
                                             "sweep sets 2"):
        run_state(lower.runs[0], capped)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("extra", "message"), [
    (["--seeds", "0-x"], "--seeds '0-x': expected seeds such as 0-9, 3 or 0,2,5-7 "
                         "(integers >= 0; low-high is a range)"),
    (["--seeds", "5-2"], "--seeds '5-2': the range 5-2 runs backwards; write 2-5"),
    (["--seeds", "0-2,1"], "--seeds '0-2,1': seed 1 is given twice; give each once"),
    (["--grid", "optimiser.lr=0.1,0.2"], "--grid optimiser.lr=0.1: optimiser: unknown key; "
                                         "valid keys are dataset, network, rule, optimizer, "
                                         "schedule, training, name"),
    (["--grid", "optimizer.lr=0.1,fast"], "--grid optimizer.lr=fast: optimizer.lr: expected "
                                          "float, got 'fast'"),
    (["--grid", "rule.epsilonn=0.1"], "--grid rule.epsilonn=0.1: rule.epsilonn: not an option "
                                      "of rule 'brainprop'; allowed keys are name, epsilon, "
                                      "temperature, reward, feedback"),
    (["--grid", "optimizer.lr"], "--grid 'optimizer.lr': expected key=value1,value2,..., e.g. "
                                 "optimizer.lr=0.1,0.5"),
    (["--grid", "optimizer.lr=0.1,,0.2"], "--grid 'optimizer.lr=0.1,,0.2': an empty value; "
                                          "separate the values by single commas"),
    (["--grid", "training.seed=1,2"], "--grid 'training.seed=1,2': a sweep sets training.seed "
                                      "itself; give the seeds with --seeds, e.g. --seeds 0-9"),
    (["--workers", "0"], "--workers 0: expected a positive number of runs at once"),
    (["--address", "head-node"], "--address 'head-node': expected HOST:PORT of a Ray "
                                 "cluster's head, e.g. 10.0.0.5:6379"),
])
def test_bad_input_is_one_line_and_starts_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "sweep"
    assert main(["sweep", CONFIG, *TINY, "--out", str(out), *extra]) == 2
    assert capsys.readouterr().err.strip() == f"neuroprop: error: {message}"
    assert not out.exists()


def test_an_unreachable_cluster_is_one_line_within_seconds(tmp_path, capsys):
    out = tmp_path / "sweep"
    port = _closed_port()
    assert main(["sweep", CONFIG, *TINY, "--out", str(out),
                 "--address", f"127.0.0.1:{port}"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"neuroprop: error: --address 127.0.0.1:{port}: no Ray cluster reachable there "
        "(Connection refused); start one with 'ray start --head' or leave out --address for "
        "a local Ray")
    assert not out.exists()


def test_a_busy_sweep_directory_and_a_foreign_folder_are_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    with run_lock(out, kind="sweep", option="--out"):
        assert main(["sweep", CONFIG, *TINY, "--seeds", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"neuroprop: error: {out} is in use by neuroprop process ")
    assert err.endswith("; wait for it to finish or choose another --out")

    (out / "seed0").mkdir()
    (out / "seed0" / "notes.txt").write_text("mine")
    assert main(["sweep", CONFIG, *TINY, "--seeds", "0", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"neuroprop: error: {out / 'seed0'}: holds files but no config.yaml, so it is no run "
        "of neuroprop's; move it away or choose another --out")
    assert (out / "seed0" / "notes.txt").read_text() == "mine"


def test_ray_is_imported_only_by_a_sweep_that_trains():
    code = ("import sys, neuroprop.cli, neuroprop.sweep.sweep, neuroprop.training.trainer; "
            "print('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_a_sweep_on_a_ray_cluster_started_with_ray_start(tmp_path):
    """`ray start --head` in its own session (no PYTHONPATH: its workers get neuroprop from
    the sweep), then `neuroprop sweep --address` in a process of its own, as a user runs
    them; the head's whole session is killed afterwards."""
    port = _closed_port()
    token = secrets.token_hex(16)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    before = _ray_processes()
    with open(tmp_path / "head.log", "w") as log:
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
             "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats", "--block"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    out = tmp_path / "sweep"
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in (tmp_path / "head.log").read_text():
            assert head.poll() is None and time.monotonic() < deadline, (
                (tmp_path / "head.log").read_text())
            time.sleep(0.2)
        sweep = subprocess.run(
            [sys.executable, "-m", "neuroprop", "sweep", CONFIG, *TINY, "--seeds", "0",
             "--grid", "optimizer.lr=0.5", "--address", f"127.0.0.1:{port}", "--out", str(out),
             "--no-progress"], env=os.environ | {"RAY_AUTH_MODE": "token",
                                                 "RAY_AUTH_TOKEN": token},
            capture_output=True, text=True, timeout=120)
        assert sweep.returncode == 0, sweep.stderr[-2000:]
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        deadline = time.monotonic() + 15
        while _ray_processes() - before and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not _ray_processes() - before, "Ray processes left behind"
    [record] = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert record["run"] == "seed0-optimizer.lr=0.5" and record["status"] == "finished"
    summary = json.loads((out / record["run"] / "summary.json").read_text())
    assert record["test_accuracy"] == summary["test_accuracy"] and summary["epochs"] == 3
    assert "| 0.5 | 1/1 |" in sweep.stdout
