"""Ray: an embedded local Ray with ``workers`` CPUs, or an existing cluster at ``address``
(whose workers get this machine's neuroprop and hardware packages through Ray).

The only module of neuroprop that imports Ray, and only inside ``run_jobs``: the rest of
neuroprop never pays its import time. Each run is a task that asks for one CPU, so Ray
runs as many at once as there are CPUs (local) or free CPUs in the cluster; ``workers``
also caps the runs in flight on a cluster.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

import hardware
import neuroprop
from neuroprop.errors import NeuropropError
from neuroprop.sweep.task import one_line, train_run

CONNECT_TIMEOUT_S = 5.0
SHIPPED = [str(Path(package.__file__).parent) for package in (neuroprop, hardware)]
"""The packages a cluster's workers import from this machine (Ray's ``py_modules``)."""
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")


@dataclass(frozen=True)
class Job:
    """A run for a worker: ``args`` are ``train_run``'s."""

    name: str
    args: tuple


def check_address(address: str) -> None:
    """Refuse, in one line and within seconds, an address that is malformed or where
    nothing listens (Ray itself would wait minutes for an unreachable cluster)."""
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match[2]) < 65536:
        raise NeuropropError(f"--address {address!r}: expected HOST:PORT of a Ray cluster's "
                             "head, e.g. 10.0.0.5:6379")
    host = match[1].strip("[]")
    try:
        socket.create_connection((host, int(match[2])), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise NeuropropError(f"--address {address}: no Ray cluster reachable there ({reason}); "
                             "start one with 'ray start --head' or leave out --address for a "
                             "local Ray") from None


def last_line(error: BaseException) -> str:
    """Ray's error, by its last line (the innermost cause), without terminal colours."""
    lines = [line.strip() for line in _COLOURS.sub("", str(error)).splitlines()]
    return next((line for line in reversed(lines) if line), type(error).__name__)


@contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[object]:
    """Ray, started (``address`` None: local, ``workers`` CPUs) or joined, and shut down
    after the ``with`` block, whatever happens in it."""
    import ray

    options = {"include_dashboard": False, "log_to_driver": False,
               "logging_level": logging.ERROR}
    try:
        if address is None:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
            ray.init(address="local", num_cpus=workers, **options)
        else:  # the cluster's workers get this neuroprop, whatever version their nodes hold
            ray.init(address=address, runtime_env={"py_modules": SHIPPED,
                                                   "excludes": ["__pycache__"]}, **options)
    except Exception as error:  # Ray raises many types for a failed start or connection
        ray.shutdown()
        if address is None:
            raise NeuropropError(f"cannot start a local Ray ({one_line(error)}); see Ray's "
                                 "log in /tmp/ray/session_latest/logs") from None
        raise NeuropropError(f"cannot connect to the Ray cluster at {address} "
                             f"({one_line(error)}); if it uses token authentication, run with "
                             "RAY_AUTH_MODE=token and its token (see docs/sweeps.md)") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_jobs(jobs: list[Job], address: str | None, workers: int,
             on_done: Callable[[str, str | None], None], progress: bool | None = None) -> None:
    """Run every job on Ray, at most ``workers`` at a time; ``on_done(name, error)`` after
    each (error None: the run finished). A task that Ray loses (its worker died) counts as
    a failed run, named with Ray's reason."""
    with ray_session(address, workers) as ray:
        task = ray.remote(num_cpus=1, max_retries=0)(train_run)
        queue = list(jobs)
        pending: dict = {}
        bar = tqdm(total=len(jobs), desc="sweep", unit="run", file=sys.stderr,
                   disable=None if progress is None else not progress)
        try:
            while queue or pending:
                while queue and len(pending) < workers:
                    job = queue.pop(0)
                    pending[task.remote(*job.args)] = job.name
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    name = pending.pop(ref)
                    try:
                        error = ray.get(ref)
                    except ray.exceptions.RayError as lost:
                        error = f"on Ray: {last_line(lost)}"
                    bar.update(1)
                    on_done(name, error)
        finally:
            bar.close()
