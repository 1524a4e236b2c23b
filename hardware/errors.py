"""The hardware layer's user-facing error."""

REEXPORT = "re-export the network with this neuroprop (neuroprop export ...)"
"""The fix for an export that this hardware layer cannot read or run."""


class HardwareError(ValueError):
    """A problem with an export or a run, in one line that names the problem and the fix."""
