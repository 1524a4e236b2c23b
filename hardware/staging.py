"""Temporary folders that neuroprop writes beside their target, and finding the ones a
killed process left behind.

A staging folder is made by ``make_staging(parent, prefix)``: its name is ``prefix``,
the writer's pid, ``-`` and a random part (``tempfile.mkdtemp``); the first thing
written into it is the marker file ``.neuroprop-staging.json``::

    {"prefix": PREFIX, "pid": PID, "host": HOSTNAME, "created": UNIX_TIME,
     "target": NAME | null}

(``target``: the name, in ``parent``, of what the folder is for.)

What goes in place is built in its subfolder ``content``. A process killed with
SIGKILL (or a power cut) runs no cleanup and leaves the folder. ``stale_staging(parent,
prefix)`` lists the folders of ``parent`` that are such leftovers, and nothing else:

- the name is ``prefix`` + digits + ``-`` + a suffix, and it is a real folder (no link);
- it holds the marker, a JSON object whose prefix and pid are those of the name;
- its writer is gone: the marker is older than ``STALE_AFTER_S``, or it was written on
  this host and no process with that pid is alive (a live process with that pid that
  started after the marker was written is another process: the pid was reused).

A folder that fails any of these, a user's folder of a similar name included, is never
touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

MARKER = ".neuroprop-staging.json"
CONTENT = "content"
STALE_AFTER_S = 24 * 3600.0
"""A staging folder this old is stale whatever its pid says (writes take seconds)."""


def make_staging(parent: Path, prefix: str, target: str | None = None) -> Path:
    """A new staging folder ``parent/<prefix><pid>-<random>`` holding its marker (an
    OSError if ``parent`` is not writable; nothing is left then)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    marker = {"prefix": prefix, "pid": os.getpid(), "host": socket.gethostname(),
              "created": time.time(), "target": target}
    try:
        (folder / MARKER).write_text(json.dumps(marker))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def stale_staging(parent: Path, prefix: str) -> list[tuple[Path, dict]]:
    """The staging folders of ``parent`` named by ``prefix`` whose writer is gone, with
    their markers."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)-[A-Za-z0-9_]+")
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not entry.is_symlink() and entry.is_dir():
            marker = _marker(entry)
            if marker and marker["prefix"] == prefix and marker["pid"] == int(match[1]) \
                    and _writer_gone(marker):
                stale.append((entry, marker))
    return stale


def _marker(folder: Path) -> dict | None:
    """The folder's marker if it is a well-formed one, else None."""
    path = folder / MARKER
    try:
        if path.is_symlink() or not path.is_file():
            return None
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("prefix"), str) or \
            not isinstance(marker.get("host"), str) or \
            not isinstance(marker.get("target"), (str, type(None))):
        return None
    for key, kind in (("pid", int), ("created", (int, float))):
        if isinstance(marker.get(key), bool) or not isinstance(marker.get(key), kind):
            return None
    return marker


def _writer_gone(marker: dict) -> bool:
    if time.time() - marker["created"] > STALE_AFTER_S:
        return True
    if marker["host"] != socket.gethostname():
        return False  # another machine's pid (a shared file system): only age tells
    pid = marker["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    started = _start_time(pid)
    return started is not None and started > marker["created"] + 1.0


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started (UNIX time, from /proc), or None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text()
                    .splitlines() if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None
