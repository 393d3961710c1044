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
        return yaml.safe_load(p.read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what} {p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise error(f"cannot read {what} {p}: not valid YAML: {exc}") from None
