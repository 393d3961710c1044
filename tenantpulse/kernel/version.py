"""The distribution's version, in one place (the CLI's ``--version``, build info, span resources)."""

__version__ = "0.1.0"
