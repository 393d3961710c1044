"""Free loopback ports and waiting for servers, for tests that start real components."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    check: Callable[[], object], timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> object:
    """Poll ``check`` until it returns a truthy value (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - the component is still starting
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what or check}: last error {last!r}")
