"""Runs the hardware layer inside the Lava environment (``.venv-lava``, Python 3.10).

lava-nc runs only on Python 3.10 and must never see torch, so the main environment
hands it an export folder and a file of integer inputs and reads back Q-values.

``run_lava_python`` is the one way to start something in that environment. The child
runs in a session of its own, so a signal meant for neuroprop (Ctrl-C in a terminal,
SIGTERM to neuroprop's process group, SIGINT or SIGTERM to neuroprop alone) reaches it
only through neuroprop, which forwards SIGINT or SIGTERM to it and waits until it has
stopped its Lava runtime (its processes end and its /dev/shm segments are unlinked:
``hardware.lava.runtime``); a child that has not ended ``STOP_TIMEOUT_S`` later is
killed with its whole process group. Then ``Interrupted`` is raised, so that
temporary folders are removed on the way out. A SIGKILL to neuroprop cannot be
forwarded: the child then runs on alone, and the temporary folder it was given stays
until the next ``run_in_lava_env`` removes it (``hardware.staging``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.staging import make_staging, stale_staging
from neuroprop.errors import Interrupted, NeuropropError

REPO_ROOT = Path(__file__).resolve().parents[2]
FORWARDED = (signal.SIGINT, signal.SIGTERM)
STOP_TIMEOUT_S = 60.0
"""How long a child may take to stop after a forwarded signal (the Lava runtime's own
stop takes at most 35 s) before it and its process group are killed."""
POLL_S = 0.2
TEMP_PREFIX = "neuroprop-lava-"


def lava_python() -> Path:
    """The Lava environment's interpreter: $NEUROPROP_LAVA_PYTHON or .venv-lava at the repo root."""
    configured = os.environ.get("NEUROPROP_LAVA_PYTHON")
    path = Path(configured) if configured else REPO_ROOT / ".venv-lava" / "bin" / "python"
    if not path.exists():
        raise NeuropropError(
            f"Lava environment not found ({path}); run 'bash scripts/setup.sh' "
            "or set NEUROPROP_LAVA_PYTHON to a Python 3.10 with lava-nc"
        )
    if not path.is_file() or not os.access(path, os.X_OK):
        raise NeuropropError(
            f"{path} is {'a folder' if path.is_dir() else 'not executable'}, not a Python "
            "interpreter; set NEUROPROP_LAVA_PYTHON to the python of the Lava environment "
            "(e.g. .venv-lava/bin/python)"
        )
    return path


def run_lava_python(args: Sequence[str], env: Mapping[str, str] | None = None,
                    what: str = "Lava run") -> subprocess.CompletedProcess[str]:
    """Run the Lava environment's Python with ``args`` (e.g. ``["-m", "hardware.run",
    ...]``) to its end and return it, with its stdout and stderr as text.

    Its environment is this process's, with PYTHONPATH set to this repository, updated
    with ``env``. A non-zero exit raises NeuropropError ``"<what> failed: <the child's
    last stderr line>"``. SIGINT and SIGTERM received meanwhile are forwarded to the
    child, which is waited for (module docstring); then ``Interrupted`` is raised.
    Signals are forwarded only when called in the main thread (elsewhere they keep
    their handlers).
    """
    command = [str(lava_python()), *args]
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    with _forwarding() as forward:
        child = subprocess.Popen(command, env=full_env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        try:
            forward(child)
            stdout, stderr = _wait(child, forward.received)
        finally:
            if child.poll() is None:  # an exception of this process's own: leave nothing
                _kill_group(child)
    if forward.received:
        raise Interrupted(forward.received[0], f"the {what} was stopped")
    if child.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {child.returncode}"
        raise NeuropropError(f"{what} failed: {reason}")
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)


class _Forwarder:
    """Records SIGINT/SIGTERM and passes them on to the child once there is one."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.child: subprocess.Popen | None = None

    def __call__(self, child: subprocess.Popen) -> None:
        self.child = child
        for number in self.received:
            self._send(number)

    def handle(self, number: int, frame: object) -> None:
        self.received.append(number)
        self._send(number)

    def _send(self, number: int) -> None:
        if self.child is not None and self.child.returncode is None:
            with suppress(ProcessLookupError):
                os.kill(self.child.pid, number)


@contextmanager
def _forwarding() -> Iterator[_Forwarder]:
    forwarder = _Forwarder()
    if threading.current_thread() is not threading.main_thread():
        yield forwarder
        return
    previous = {number: signal.signal(number, forwarder.handle) for number in FORWARDED}
    try:
        yield forwarder
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _wait(child: subprocess.Popen, received: list[int]) -> tuple[str, str]:
    """The child's output once it has ended; killed with its group if it has not ended
    STOP_TIMEOUT_S after the first forwarded signal."""
    deadline = None
    while True:
        try:
            return child.communicate(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            if received and deadline is None:
                deadline = time.monotonic() + STOP_TIMEOUT_S
            if deadline is not None and time.monotonic() > deadline:
                _kill_group(child)


def _kill_group(child: subprocess.Popen) -> None:
    """SIGKILL the child's process group (it leads it: its own session), then reap it.
    Called only while the child is unreaped, so its pid cannot have been reused."""
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


@dataclass
class LavaRun:
    q: np.ndarray
    timing: dict


def run_in_lava_env(export_dir: Path, x_int: np.ndarray, use_float: bool = False,
                    dense_model: str = "lava", per_sample: bool = False) -> LavaRun:
    """Stream ``x_int`` (N, C, H, W) through the export on Lava's simulator; Q-values back.

    The inputs and results pass through a ``temporary_folder``.
    """
    with temporary_folder() as tmp:
        inputs, q_path, timing_path = (tmp / name for name in
                                       ("inputs.npy", "q.npy", "timing.json"))
        try:
            np.save(inputs, x_int)
        except OSError as error:
            raise NeuropropError(f"cannot write {inputs} ({error.strerror}); make room there "
                                 "or set TMPDIR to a writable folder") from None
        args = ["-m", "hardware.run", str(export_dir), "--inputs", str(inputs), "--out",
                str(q_path), "--timing", str(timing_path)]
        args += ["--float"] if use_float else ["--dense-model", dense_model]
        args += ["--per-sample"] if per_sample else []
        run_lava_python(args)
        return LavaRun(q=np.load(q_path), timing=json.loads(timing_path.read_text()))


@contextmanager
def temporary_folder() -> Iterator[Path]:
    """A new folder ``neuroprop-lava-<pid>-*`` in the temporary directory
    (``hardware.staging``, with its marker), removed on leaving; those that killed
    processes left there go first."""
    parent = Path(tempfile.gettempdir())
    for stale, _ in stale_staging(parent, TEMP_PREFIX):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        folder = make_staging(parent, TEMP_PREFIX)
    except OSError as error:
        raise NeuropropError(f"cannot create a temporary folder in {parent} ({error.strerror}); "
                             "make room there or set TMPDIR to a writable folder") from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
