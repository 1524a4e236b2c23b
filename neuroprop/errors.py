"""The one exception type users see: a problem they can fix, said in one line."""


class NeuropropError(Exception):
    """A user-facing error. Its message is one line that names the problem and the fix.

    The CLI prints it as ``neuroprop: error: <message>`` and exits with status 2;
    anything else that escapes is a bug and keeps its traceback.
    """


class DivergedError(NeuropropError):
    """Training produced non-finite values; the trainer keeps the last good checkpoint."""
