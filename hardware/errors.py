"""The hardware layer's user-facing error, and how its commands end."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

REEXPORT = "re-export the network with this neuroprop (neuroprop export ...)"
"""The fix for an export that this hardware layer cannot read or run."""


class HardwareError(ValueError):
    """A problem with an export or a run, in one line that names the problem and the fix."""


EXIT_ERROR = 2


def command_exit(work: Callable[[], int]) -> int:
    """Run a ``python -m hardware.*`` command: a HardwareError is one line on stderr and
    exit status 2; SIGINT/SIGTERM (the Lava runtime already stopped) 128 + the signal."""
    try:
        return work()
    except HardwareError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:
        number = getattr(interrupt, "signal_number", signal.SIGINT)
        print(f"interrupted by {signal.Signals(number).name}; Lava runtime stopped",
              file=sys.stderr)
        return 128 + int(number)
