"""Whether the optional ``jaeger`` extra is installed: tests that need thrift skip without it, so the
suite passes with and without the extra (the entry points' error without it is tested either way)."""

from __future__ import annotations

import importlib.util

import pytest


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def require_jaeger_extra() -> None:
    """Skip the calling test module (or test) when thrift or the Thrift exporter is not installed."""
    missing = [
        m for m in ("thrift", "deprecated", "opentelemetry.exporter.jaeger.thrift") if not _installed(m)
    ]
    if missing:
        pytest.skip(f"the jaeger extra is not installed (no {', '.join(missing)})", allow_module_level=True)
