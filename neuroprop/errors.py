"""The one exception type users see: a problem they can fix, said in one line."""


class NeuropropError(Exception):
    """A user-facing error. Its message is one line that names the problem and the fix.

    The CLI prints it as ``neuroprop: error: <message>`` and exits with status 2;
    anything else that escapes is a bug and keeps its traceback.
    """


class DivergedError(NeuropropError):
    """Training produced non-finite values; the trainer keeps the last good checkpoint."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a command (after what it started was stopped and its
    temporary files removed). The CLI prints one line naming the signal and
    ``consequence`` and exits with status 128 + the signal's number."""

    def __init__(self, signal_number: int,
                 consequence: str = ("a training run continues with --resume, a sweep "
                                     "when the same command runs again")) -> None:
        super().__init__(signal_number, consequence)
        self.signal_number = signal_number
        self.consequence = consequence
