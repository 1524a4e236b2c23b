"""Fixtures that make the file system refuse writes, for the one-line error tests.

``read_only(folder)``: the folder's mode becomes r-x for everyone. Root writes there
anyway, so for root the capabilities that override file permissions (CAP_DAC_OVERRIDE,
CAP_FOWNER) also leave this thread's effective set while inside (they stay permitted
and come back on leaving). ``full_disk()``: RLIMIT_FSIZE 0, so every write into a
regular file fails in the kernel (EFBIG), as on a full disk. Both check that writes
really fail before they yield, so a test cannot pass because the simulation did not work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

import pytest

_CAPABILITY_VERSION_3 = 0x20080522
_OVERRIDES = (1 << 1) | (1 << 3)  # CAP_DAC_OVERRIDE, CAP_FOWNER


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@contextmanager
def _without_permission_overrides() -> Iterator[None]:
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    header, data = _Header(_CAPABILITY_VERSION_3, 0), (_Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    saved = data[0].effective
    data[0].effective = saved & ~_OVERRIDES
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)


def _writes_fail(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"x")
    except OSError:
        return True
    finally:
        with suppress(OSError):
            probe.unlink(missing_ok=True)
    return False


@pytest.fixture
def read_only() -> Callable[[Path], AbstractContextManager[None]]:
    @contextmanager
    def make(folder: Path) -> Iterator[None]:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            with _without_permission_overrides():
                assert _writes_fail(folder), f"{folder} stayed writable"
                yield
        finally:
            folder.chmod(mode)
    return make


@pytest.fixture
def full_disk(tmp_path: Path) -> Callable[[], AbstractContextManager[None]]:
    @contextmanager
    def make() -> Iterator[None]:
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, limits[1]))
        try:
            assert _writes_fail(tmp_path), "files can still grow"
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            signal.signal(signal.SIGXFSZ, previous)
    return make
