"""Errors a user can fix: each carries one line that names the file, line or parameter at fault.

Everything seqtext raises for bad input derives from ``SeqtextError``, so a caller can catch it all; the
subclasses say what failed. Library messages name the library's parameters (``temperature must be at
least 0``); the command line prints ``seqtext: error: <message>`` with its own flags in their place and
exits with status 2, without a traceback. Anything else that escapes is a bug in seqtext.
"""


class SeqtextError(Exception):
    """Base class for user-facing errors; ``str(err)`` is the one-line message.

    ``parameter`` names the argument at fault when there is one (``"temperature"``), so that the command
    line can put its flag (``--temperature``) in the message instead.
    """

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


class DataError(SeqtextError):
    """A dataset, file, row or text that cannot be read as asked."""


class ConfigError(SeqtextError):
    """A recipe, argument or value that is not valid."""


class CheckpointError(DataError):
    """A checkpoint that is missing, unreadable, of another kind, or does not match its config."""


class TrainingError(SeqtextError):
    """Training that cannot go on (a non-finite loss, a run directory already in use); checkpoints stay intact."""


class Interrupted(TrainingError):
    """Training stopped by SIGINT or SIGTERM after saving its state in ``run_dir``."""

    def __init__(self, message: str, run_dir: str | None = None):
        super().__init__(message)
        self.run_dir = run_dir
