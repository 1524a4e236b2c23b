"""One process per run (or sweep) directory: an exclusive advisory lock on ``DIR/.lock``.

``flock`` is released by the kernel when the holder exits, killed or not, so a stale lock
never blocks a later ``--resume``. A second ``neuroprop train`` on the same directory stops
with one line instead of mixing its epochs into the first one's files.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from neuroprop.errors import NeuropropError

LOCK = ".lock"


@contextmanager
def run_lock(run_dir: Path, kind: str = "run", option: str = "--run-dir") -> Iterator[None]:
    """Hold the lock of ``run_dir`` (created if needed) for the ``with`` block; errors name
    it as a ``kind`` directory and the ``option`` that chooses another."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / LOCK, "a+")  # held, and closed, by the with block below
    except OSError as error:
        raise NeuropropError(f"{run_dir}: cannot use it as a {kind} directory "
                             f"({error.strerror}); choose another {option}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise NeuropropError(f"{run_dir} is in use by {holder}; wait for it to finish or "
                                 f"choose another {option}") from None
        with suppress(OSError):  # who holds it is for messages only (a full disk: unknown)
            os.ftruncate(handle.fileno(), 0)
            os.pwrite(handle.fileno(), f"neuroprop process {os.getpid()}".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
