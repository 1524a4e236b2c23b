"""Run a compiled Lava process graph and always tear it down.

Lava's Python runtime forks one OS process per Lava process plus a shared-memory
manager. Left running, they keep the interpreter from exiting and keep their
segments in /dev/shm. Hence:

- ``create_runtime`` forks the children with SIGINT ignored (a Ctrl-C that reaches
  the whole process group must not kill them before the parent stops them cleanly)
  and SIGTERM at its default (an at-fork hook, so the parent keeps its handlers), and
  holds SIGINT/SIGTERM in the parent until the forks are done;
- ``managed_runtime`` turns SIGTERM in the parent into ``RunInterrupted`` (SIGINT
  already raises KeyboardInterrupt) and stops the runtime in a ``finally``;
- ``stop_runtime`` tries Lava's clean stop; when that cannot work (a child died, the
  runtime never started) or does not finish in ``STOP_TIMEOUT_S``, it kills the
  children and shuts the shared-memory manager down; either way it then makes sure
  the manager's process has ended;
- ``run_steps`` runs non-blocking and polls the runtime and its children, so a model
  that raises (which in Lava leaves its downstream models waiting forever) ends the
  run with a ``HardwareError`` carrying the model's own error line instead of Lava's
  "N Exception(s) occurred".
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.shared_memory import SharedMemory

from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import RunConfig
from lava.magma.runtime.mgmt_token_enums import MGMT_RESPONSE, enum_equal

from hardware.errors import HardwareError

STOP_TIMEOUT_S = 30.0
POLL_S = 0.05
MANAGER_STOP_S = 5.0
"""How long the shared-memory manager may take to end after its shutdown before a kill."""
ERROR_REPORT_S = 5.0
"""How long to wait for a failed model's traceback once the runtime reported an error."""

_forking_runtime = False
"""True while ``create_runtime`` forks the runtime's children (read by the at-fork hook)."""
_at_fork_registered = False


class RunInterrupted(KeyboardInterrupt):
    """The run was interrupted by SIGINT or SIGTERM; the runtime has been stopped."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


def create_runtime(root: AbstractProcess, run_cfg: RunConfig) -> None:
    """Compile the graph of ``root`` and start its runtime.

    The children are forked with SIGINT ignored and SIGTERM at its default (they die
    on a group-wide SIGTERM; the parent then kills what is left and frees the memory).
    SIGINT and SIGTERM are held while forking and delivered once it is done: raised in
    an at-fork hook (logging registers some), the interruption would be printed as
    "Exception ignored" and the run would go on to its end.
    """
    global _forking_runtime
    if not _at_fork_registered:
        _register_at_fork()
    _forking_runtime = True
    try:
        with _signals_deferred():
            root.create_runtime(run_cfg=run_cfg)
    finally:
        _forking_runtime = False


def run_steps(root: AbstractProcess, num_steps: int) -> None:
    """Run the runtime of ``root`` for ``num_steps``; a failed model raises HardwareError.

    Lava's blocking run waits for every process model in turn, so a model that raises
    before sending leaves its downstream models (and the run) waiting forever. The run
    is therefore started non-blocking and the main thread polls: the runtime
    service's answer (DONE or ERROR, peeked without taking it) and the runtime's
    children (one that reported an exception or died ends the run at once with its
    own error line). Nothing else reads the runtime's ports, so a later ``stop()``
    gets its answer. Poll intervals grow from 0.1 ms to ``POLL_S``.
    """
    runtime = root.runtime
    root.run(condition=RunSteps(num_steps=num_steps, blocking=False))
    interval = 1e-4
    while True:
        answers = [port.peek() for port in runtime.service_to_runtime if port.probe()]
        if len(answers) == len(runtime.service_to_runtime):
            break
        failure = failed_child(root)
        if failure:
            raise HardwareError(f"the Lava run failed: {failure}")
        time.sleep(interval)
        interval = min(2 * interval, POLL_S)
    if all(enum_equal(answer, MGMT_RESPONSE.DONE) for answer in answers):
        root.wait()  # takes the DONE answers; returns at once
        return
    deadline = time.monotonic() + ERROR_REPORT_S
    while not failed_child(root) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    raise HardwareError(
        f"the Lava run failed: {failed_child(root) or 'a process model reported an error'}"
    )


@contextmanager
def managed_runtime(root: AbstractProcess) -> Iterator[None]:
    """Stop the runtime of ``root`` on leaving, whatever happened; SIGTERM interrupts."""
    try:
        with _sigterm_interrupts():
            yield
    finally:
        stop_runtime(root)


def stop_runtime(root: AbstractProcess, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop the runtime of ``root``; kill its children if a clean stop hangs or fails.

    Lava's own ``stop()`` waits forever on a runtime that was initialised but never
    started (its children wait for a command) or that lost a child; those cases go
    straight to killing. Either way the shared-memory manager is ended last
    (``_end_manager``).
    """
    runtime = root.runtime
    if runtime is None:
        return
    manager, segments = _python_manager(runtime), _segment_names(runtime)
    with _signals_deferred():
        try:
            if _stopped_cleanly(runtime, timeout):
                return
            _force_stop(runtime)
        finally:
            _end_manager(manager, segments)


def _stopped_cleanly(runtime: object, timeout: float) -> bool:
    """Try Lava's clean stop (in a thread, at most ``timeout``); whether it worked."""
    if not (getattr(runtime, "_is_started", False) and all(map(_alive, _actors(runtime)))):
        return False
    stopper = threading.Thread(target=_quiet_stop, args=(runtime,), daemon=True)
    stopper.start()
    deadline = time.monotonic() + timeout
    while stopper.is_alive() and time.monotonic() < deadline:
        stopper.join(POLL_S)
        if any(_died(actor) for actor in _actors(runtime)):
            break  # a killed child never answers: the clean stop would hang
    return not stopper.is_alive() and not _children_alive(runtime)


def failed_child(root: AbstractProcess) -> str | None:
    """The error line of a runtime child that raised or died, if any."""
    for actor in _actors(root.runtime):
        failure = actor.exception
        if failure:
            return _last_line(failure)
        if _died(actor):
            return f"a Lava process ended with exit code {actor.exitcode}"
    return None


def _last_line(failure: object) -> str:
    """The last non-empty line of an actor's (exception, traceback) report."""
    text = failure[1] if isinstance(failure, tuple) else failure
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else repr(failure)


def _actors(runtime: object) -> list:
    infrastructure = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infrastructure, "actors", []))


def _quiet_stop(runtime: object) -> None:
    try:
        runtime.stop()
    except Exception:  # a failed clean stop is followed by a forced one
        pass


def _children_alive(runtime: object) -> bool:
    return any(_alive(actor) for actor in _actors(runtime))


def _alive(actor: object) -> bool:
    try:
        return actor.is_alive()
    except ValueError:  # closed by a clean join
        return False


def _died(actor: object) -> bool:
    """Ended other than cleanly (killed by a signal or an error)."""
    try:
        return actor.exitcode not in (0, None)
    except ValueError:  # closed by a clean join
        return False


def _force_stop(runtime: object) -> None:
    """Kill the runtime's children, unlink its shared memory, and mark it stopped (so that
    Lava's ``Runtime.__del__`` does not try a clean stop that would wait forever)."""
    for actor in _actors(runtime):
        if _alive(actor):
            actor.kill()
            actor.join()
    smm = getattr(getattr(runtime, "_messaging_infrastructure", None), "smm", None)
    if smm is not None:
        try:
            smm.shutdown()
        except (OSError, EOFError):  # its server was killed too: the resource tracker
            pass  # unlinks the segments it registered
    watchdogs = getattr(runtime, "_watchdog_manager", None)
    if watchdogs is not None:
        watchdogs.stop()
    runtime._is_started = False
    runtime._is_running = False


def _lava_smm(runtime: object) -> object | None:
    """Lava's shared-memory wrapper of ``runtime`` (``lava...shared_memory_manager``)."""
    return getattr(getattr(runtime, "_messaging_infrastructure", None), "smm", None)


def _python_manager(runtime: object) -> object | None:
    """Python's ``SharedMemoryManager`` inside Lava's wrapper."""
    return getattr(_lava_smm(runtime), "_manager", None)


def _segment_names(runtime: object) -> list[str]:
    """Names of the shared-memory segments Lava's wrapper created for ``runtime``."""
    return [handle.name for handle in getattr(_lava_smm(runtime), "_shared_memory_handles", [])]


def _end_manager(manager: object | None, segments: list[str]) -> None:
    """Make sure the shared-memory manager's process has ended and its segments are gone.

    Lava's ``stop()`` shuts the manager down only after joining its actors, and that join
    raises when another thread has reaped the actor first (Lava's ``SystemProcess.join``
    then closes a process it believes still running: "Cannot close a process while it
    is still running"; the clean stop runs in a thread while this module polls the
    actors). The manager process and its /dev/shm segments then outlived the runtime,
    intermittently, in the test suite. Shut it down here (its server unlinks its
    segments), wait up to ``MANAGER_STOP_S``, then kill it. Python's own shutdown
    terminates a server that takes over a second (under load), before it has unlinked
    every segment: unlink what is left of ``segments``.
    """
    process = getattr(manager, "_process", None)
    if process is not None and process.is_alive():
        try:
            manager.shutdown()
        except (OSError, EOFError):  # the server is gone already: reaped below
            pass
        process.join(MANAGER_STOP_S)
        if process.is_alive():
            process.kill()
            process.join()
    for name in segments:
        try:
            segment = SharedMemory(name=name)
        except FileNotFoundError:  # unlinked by the server, as it should be
            continue
        segment.close()
        segment.unlink()


def _register_at_fork() -> None:
    global _at_fork_registered
    os.register_at_fork(after_in_child=_child_signals)
    _at_fork_registered = True


def _child_signals() -> None:
    """In a child forked by ``create_runtime``: ignore SIGINT, default SIGTERM."""
    if _forking_runtime:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Inside, SIGTERM raises RunInterrupted in the main thread (SIGINT: KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signal_number: int, frame: object) -> None:
        raise RunInterrupted(signal_number)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while stopping; re-deliver them once the children are gone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signal_number: int, frame: object) -> None:
        received.append(signal_number)

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])
            time.sleep(0)  # let the restored handler run here, not later
