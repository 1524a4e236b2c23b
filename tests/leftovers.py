"""What a Lava run may leave behind, read from the system (stdlib only: the torch-side and
the hardware tests both use it): shared-memory segments, live child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SHM = Path("/dev/shm")


def segments() -> set[str]:
    """The names of the shared-memory segments in /dev/shm now."""
    return {p.name for p in SHM.iterdir()} if SHM.is_dir() else set()


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def interruptible() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: SIGINT's default
    disposition, as a terminal's foreground job has it. Tests started in the background
    of a non-interactive shell inherit SIGINT ignored, Python then never raises
    KeyboardInterrupt, and the child would not see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_group(process: subprocess.Popen) -> None:
    """If ``process`` (started with ``start_new_session=True``) still runs, SIGKILL its
    whole process group, its Lava children too, and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    """Poll ``condition`` every 0.1 s for up to ``timeout`` seconds; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())
