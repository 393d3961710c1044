"""Automatic garbage collection paused while a big JSON answer is parsed and unpacked.

Parsing a 20,000-series query answer allocates ~200,000 containers at once; each 700 allocations the
collector runs, and every ~10th of those scans the older generations too, so about 70% of the sidecar's
parse time was collections that find nothing (the objects are all reachable until the answer is
dropped, then freed by reference counting). Measured by benchmarks/bench_sidecar_cost.py.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic collection inside the block; collection resumes after it only if it was on before
    (so nesting, or a caller that turned collection off, is left as it was)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
