"""Reading the YAML files users hand us (specs, keys), with one kind of error for every way it fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tenantpulse.kernel.errors import UsageError


def read_yaml(path: str | Path, what: str, error: type[UsageError] = UsageError) -> Any:
    """The parsed document; a missing, unreadable, non-UTF-8 or malformed file is ``error`` naming it."""
    p = Path(path)
    try:
        text = p.read_text()
        return yaml.safe_load(text)
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what} {p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise error(f"cannot read {what} {p}: not valid YAML {_where(exc, text)}") from None


def _where(exc: yaml.YAMLError, text: str) -> str:
    """``at line L, column C: problem`` on one line. PyYAML's own message spans several lines and names
    the input ``"<unicode string>"``, since it parses the text, not the file."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        if exc.context and exc.context_mark is not None and exc.context_mark.line != mark.line:
            where += f" ({exc.context} at line {exc.context_mark.line + 1})"
        return " ".join(where.split())
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return f"at line {line}, column {column}: character #x{exc.character:04x}: {exc.reason}"
    return ": " + " ".join(str(exc).split())
