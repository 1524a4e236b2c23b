"""Staging folders: what counts as the leftover of a dead writer, and what never does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from hardware.staging import MARKER, STALE_AFTER_S, make_staging, stale_staging

PREFIX = ".neuroprop-test-"


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _fake(parent, pid: int, created: object, name_pid: int | None = None, suffix: str = "abc",
          **marker):
    """A staging folder as a writer with ``pid`` would leave it (marker entries overridable)."""
    folder = parent / f"{PREFIX}{pid if name_pid is None else name_pid}-{suffix}"
    folder.mkdir()
    content = {"prefix": PREFIX, "pid": pid, "host": socket.gethostname(), "created": created,
               "target": "export", **marker}
    (folder / MARKER).write_text(json.dumps(content))
    return folder


def test_a_live_writers_folder_is_not_stale_and_a_dead_ones_is(tmp_path):
    mine = make_staging(tmp_path, PREFIX, "export")
    marker = json.loads((mine / MARKER).read_text())
    assert mine.name.startswith(f"{PREFIX}{os.getpid()}-") and marker["target"] == "export"
    dead = _fake(tmp_path, _dead_pid(), time.time())
    assert stale_staging(tmp_path, PREFIX) == [(dead, json.loads((dead / MARKER).read_text()))]


def test_age_and_pid_reuse_make_a_folder_stale(tmp_path):
    old = _fake(tmp_path, os.getpid(), time.time() - STALE_AFTER_S - 60)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(1.5)  # the marker below predates the sleeper by more than a second
        reused = _fake(tmp_path, sleeper.pid, time.time() - 3600)
        assert sorted(path for path, _ in stale_staging(tmp_path, PREFIX)) == sorted(
            [old, reused])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_nothing_but_a_marked_folder_of_a_dead_writer_is_ever_stale(tmp_path):
    dead = _dead_pid()
    (tmp_path / f"{PREFIX}{dead}-user").mkdir()  # the right name, no marker: a user's folder
    _fake(tmp_path, dead, time.time(), name_pid=dead + 1)  # the marker names another pid
    _fake(tmp_path, dead, time.time(), suffix="p", prefix=".other-")  # ... another prefix
    _fake(tmp_path, dead, "yesterday", suffix="c")  # a malformed marker
    other_host = _fake(tmp_path, dead, time.time(), suffix="h", host="elsewhere")
    (tmp_path / f"{PREFIX}{dead}-link").symlink_to(other_host)  # links are never followed
    (tmp_path / f"{PREFIX}{dead}-file").write_text("a file")
    (tmp_path / f"x{PREFIX}{dead}-abc").mkdir()  # another prefix
    assert stale_staging(tmp_path, PREFIX) == []
