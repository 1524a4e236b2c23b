"""The Lava environment's subprocess: its errors, its environment, and signals to neuroprop
that must stop it cleanly (no processes, /dev/shm segments or temporary folders left)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from leftovers import alive, descendants, kill_group, segments, wait_for

from neuroprop.cli import main
from neuroprop.deploy import lava_env
from neuroprop.deploy.lava_env import REPO_ROOT, TEMP_PREFIX, lava_python, run_lava_python
from neuroprop.errors import Interrupted, NeuropropError

needs_lava = pytest.mark.skipif(
    not (REPO_ROOT / ".venv-lava" / "bin" / "python").exists(),
    reason="the Lava environment .venv-lava is absent (run 'bash scripts/setup.sh')",
)


@needs_lava
def test_run_lava_python_returns_the_output_and_passes_the_environment():
    script = "import os, sys; print(os.environ['PROBE'], sys.version_info[:2])"
    done = run_lava_python(["-c", script], env={"PROBE": "seen"})
    assert done.returncode == 0 and done.stdout.strip() == "seen (3, 10)"


@needs_lava
def test_a_failing_child_is_one_line_with_its_last_stderr_line():
    script = "import sys; print('a traceback', file=sys.stderr); sys.exit('error: the reason')"
    with pytest.raises(NeuropropError) as error:
        run_lava_python(["-c", script], what="learning run")
    assert str(error.value) == "learning run failed: error: the reason"


@needs_lava
def test_a_child_that_does_not_stop_is_killed_with_its_group(monkeypatch, tmp_path):
    """SIGTERM to neuroprop is forwarded; a child that ignores it (and its own child) is
    killed with its process group once STOP_TIMEOUT_S has passed, then Interrupted."""
    monkeypatch.setattr(lava_env, "STOP_TIMEOUT_S", 0.5)
    pids = tmp_path / "pids"
    script = ("import os, signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
              "child = subprocess.Popen(['sleep', '60']);"
              f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}'); time.sleep(60)")
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    with pytest.raises(Interrupted) as interrupted:
        run_lava_python(["-c", script])
    assert interrupted.value.signal_number == signal.SIGTERM
    assert time.monotonic() - started < 10
    assert not any(map(alive, map(int, pids.read_text().split())))


def test_lava_python_pointing_at_a_folder_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROPROP_LAVA_PYTHON", str(tmp_path))
    with pytest.raises(NeuropropError, match=f"^{tmp_path} is a folder, not a Python interpreter"):
        lava_python()


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A deep narrow net: Lava's time per step grows with its processes, and streaming the
    training split through it takes some 4 s here."""
    folder = tmp_path_factory.mktemp("signals")
    layers = ", ".join(["{type: dense, units: 16}"] * 6 + ["{type: output}"])
    assert main(["train", "--run-dir", str(folder / "run"), "--no-progress",
                 "training.max_epochs=1", f"network.layers=[{layers}]"]) == 0
    assert main(["export", "--target", "lava", str(folder / "run"), "--out",
                 str(folder / "export")]) == 0
    return folder / "export"








@needs_lava
@pytest.mark.slow
@pytest.mark.parametrize(("signal_name", "whole_group"),
                         [("SIGINT", False), ("SIGTERM", False), ("SIGTERM", True)])
def test_a_signal_to_neuroprop_stops_the_lava_run_and_leaves_nothing(export, tmp_path,
                                                                     signal_name, whole_group):
    """SIGINT or SIGTERM to `neuroprop run` alone, or SIGTERM to its process group, once
    Lava runs: neuroprop stops its Lava child, exits 128 + signal with one line, and no
    process, shared-memory segment or temporary folder of the run is left; a temporary
    folder that a killed run left before is removed too."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = temp / f"{TEMP_PREFIX}{dead.pid}-old"  # what a SIGKILLed neuroprop leaves
    leftover.mkdir()
    (leftover / ".neuroprop-staging.json").write_text(json.dumps(
        {"prefix": TEMP_PREFIX, "pid": dead.pid, "host": socket.gethostname(),
         "created": time.time(), "target": None}))
    before = segments()
    process = subprocess.Popen(
        [sys.executable, "-m", "neuroprop", "run", "--target", "lava", str(export),
         "--split", "train"],
        env={**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_for(lambda: len(descendants(process.pid)) >= 4
                         and segments() - before, 90), "Lava did not start"
        children = descendants(process.pid)
        number = signal.Signals[signal_name]
        if whole_group:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)
        _, stderr = process.communicate(timeout=90)
    finally:
        kill_group(process)
    assert process.returncode == 128 + number
    assert stderr.splitlines() == [f"neuroprop: interrupted by {signal_name}; the Lava run "
                                   "was stopped"]
    assert wait_for(lambda: not any(map(alive, children)), 15), children
    assert wait_for(lambda: not segments() - before, 15)
    assert list(temp.iterdir()) == []
