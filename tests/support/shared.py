"""The team's shared data beside the checkout (``../shared``), or where an environment variable says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # the checkout the tests run in


def crd_dir() -> Path:
    """The Prometheus Operator CRD schemas; skips the test with a message when they are absent."""
    env = os.environ.get("TENANTPULSE_CRDS_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "crds"
    if not path.is_dir():
        pytest.skip(f"Prometheus Operator CRD schemas not found at {path} (set TENANTPULSE_CRDS_DIR)")
    return path
