"""``python -m hardware.run``: outputs, errors, and runs killed mid-way (no Lava processes
and no /dev/shm segments may stay behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from leftovers import alive, descendants, interruptible, kill_group, segments, wait_for

LAVA_MISSING = "lava-nc not installed (run in .venv-lava)"
pytest.importorskip("lava.magma.core.run_configs", reason=LAVA_MISSING)

from hardware.emulator import forward_fixed, forward_float  # noqa: E402
from hardware.format import save_export  # noqa: E402
from hardware.quantize import quantise  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def _cli(*args: str, **options) -> subprocess.Popen:
    command = [sys.executable, "-m", "hardware.run", *args]
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible, **options
    )










@pytest.fixture
def export(make_network, make_inputs, tmp_path):
    net = quantise(make_network("dense", 0), make_inputs(make_network("dense", 0), 64))
    path = save_export(net, tmp_path / "export")
    return net, Path(path)


def test_cli_writes_fixed_point_q_values_and_timing(export, make_inputs, tmp_path):
    net, path = export
    x = make_inputs(net, 20, seed=3)
    np.save(tmp_path / "x.npy", x)
    out, timing = tmp_path / "out" / "q.npy", tmp_path / "timing.json"
    process = _cli(
        str(path), "--inputs", str(tmp_path / "x.npy"), "--out", str(out), "--timing", str(timing)
    )
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    q = np.load(out)
    assert q.dtype == np.int64
    np.testing.assert_array_equal(q, forward_fixed(net, x))
    report = json.loads(timing.read_text())
    assert report["samples"] == 20
    assert report["seconds_run"] > 0 and report["seconds_build"] > 0
    assert report["samples_per_second"] == pytest.approx(20 / report["seconds_run"])


def test_cli_runs_a_spiking_export(make_spiking_network, make_inputs, tmp_path):
    net = make_spiking_network("dense", 0, timesteps=4)
    quant = quantise(net, make_inputs(net, 64))
    path = save_export(quant, tmp_path / "export")
    x = make_inputs(net, 10, seed=3)
    np.save(tmp_path / "x.npy", x)
    process = _cli(str(path), "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "q.npy"))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    np.testing.assert_array_equal(np.load(tmp_path / "q.npy"), forward_fixed(quant, x))


def test_cli_float_mode_writes_float64(export, make_inputs, tmp_path):
    net, path = export
    x = make_inputs(net, 8, seed=4)
    np.save(tmp_path / "x.npy", x)
    process = _cli(
        str(path), "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "q.npy"), "--float"
    )
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    q = np.load(tmp_path / "q.npy")
    assert q.dtype == np.float64
    np.testing.assert_allclose(q, forward_float(net, x * net.input_scale), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("problem", ["missing_export", "corrupt_export", "float_inputs"])
def test_cli_errors_exit_2_with_one_line(export, make_inputs, tmp_path, problem):
    net, path = export
    x = make_inputs(net, 2)
    if problem == "missing_export":
        path = tmp_path / "nowhere"
    elif problem == "corrupt_export":
        (path / "manifest.json").write_text("{ not json")
    else:
        x = x.astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    process = _cli(str(path), "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "q.npy"))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert not (tmp_path / "q.npy").exists()


@pytest.fixture
def spiking_export(make_spiking_network, make_inputs, tmp_path):
    net = make_spiking_network("dense", 0, timesteps=4)
    quant = quantise(net, make_inputs(net, 64))
    return quant, Path(save_export(quant, tmp_path / "spiking-export"))


@pytest.mark.parametrize(
    ("substrate", "signal_name", "whole_group"),
    [("rate", "SIGINT", False), ("rate", "SIGTERM", False), ("rate", "SIGINT", True),
     ("rate", "SIGTERM", True), ("spiking", "SIGINT", False), ("spiking", "SIGTERM", True)],
)
def test_killed_run_leaves_no_processes_or_shared_memory(
    request, make_inputs, tmp_path, substrate, signal_name, whole_group
):
    """Signal a long run once Lava runs (to the CLI alone, or to its whole process group
    as Ctrl-C or a job killer would): it exits 128 + signal, and its Lava children and
    shared-memory segments are gone; for rate and spiking exports."""
    net, path = request.getfixturevalue("export" if substrate == "rate" else "spiking_export")
    np.save(tmp_path / "x.npy", make_inputs(net, 200_000, seed=5))
    before = segments()
    process = _cli(
        str(path),
        "--inputs",
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "q.npy"),
        start_new_session=True,
    )
    try:
        started = wait_for(
            lambda: len(descendants(process.pid)) >= 4 and segments() - before, 60
        )
        assert started, "the Lava run did not start"
        time.sleep(1.0)
        children = descendants(process.pid)
        number = signal.Signals[signal_name]
        if whole_group:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)
        _, stderr = process.communicate(timeout=90)
    finally:
        kill_group(process)
    assert process.returncode == 128 + number, stderr
    assert f"interrupted by {signal_name}" in stderr
    assert wait_for(lambda: not any(alive(pid) for pid in children), 15), children
    assert wait_for(lambda: not segments() - before, 15), segments() - before
