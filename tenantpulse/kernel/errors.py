"""The one error type the CLI turns into a message and exit code 2 (never a traceback)."""


class UsageError(Exception):
    """Bad input from the user: a spec, a file, a flag. The message says what and where."""
