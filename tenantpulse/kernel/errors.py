"""The error types the CLI turns into a message and exit code 2 (never a traceback)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a spec, a file, a flag. The message says what and where."""


class SpecError(UsageError):
    """A refused spec (alerts or dashboards), on one readable line: ``<source>: field '<field>': <reason>``.

    ``field`` is the key at fault inside ``source`` (``condition``, ``components[2].indicator``; None
    for the spec as a whole), ``reason`` why and what is valid instead, ``source`` where: the alert or
    dashboard (``alert 'HighErrors'``, ``dashboard 'Ops', component 'Plays'``), prefixed with the file's
    path when the spec was loaded from one (``within``). ``item`` is the bare name of that alert or
    dashboard, for an API's answer. The HTTP APIs answer 422 with ``field`` and ``reason``.
    """

    def __init__(
        self, field: str | None, reason: str, source: str | None = None, *, item: str | None = None
    ) -> None:
        parts = [p for p in (source, f"field {field!r}" if field else None, reason) if p]
        super().__init__(": ".join(parts))
        self.field = field
        self.reason = reason
        self.source = source
        self.item = item

    def within(self, path: object) -> SpecError:
        """The same error, its source prefixed with the file it was read from."""
        source = f"{path}: {self.source}" if self.source else str(path)
        return SpecError(self.field, self.reason, source, item=self.item)
