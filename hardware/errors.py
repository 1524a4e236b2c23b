"""The hardware layer's user-facing error."""


class HardwareError(ValueError):
    """A problem with an export or a run, in one line that names the problem and the fix."""
