"""Errors a user can fix: each carries one line that names the file, line or argument at fault.

The command line prints ``seqtext: error: <message>`` for these and exits with status 2, without a
traceback. Anything else that escapes is a bug in seqtext and keeps its traceback.
"""


class SeqtextError(Exception):
    """Base class for user-facing errors; ``str(err)`` is the one-line message."""


class DataError(SeqtextError):
    """A dataset, file or row that cannot be read as asked."""


class ConfigError(SeqtextError):
    """A recipe, option or value that is not valid."""


class Interrupted(SeqtextError):
    """Training stopped by SIGINT or SIGTERM after saving its state; the message says how to resume."""
