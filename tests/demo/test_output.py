"""The demo's threads (the Slack/SMTP/webhook sinks, the sidecar's injector) print whole lines: two
notifications arriving together never run into one another."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from tenantpulse.demo import alerting


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so that a line written in two parts is split."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_notifications_from_several_threads_stay_whole_lines(
    eager_thread_switches: None, capsys: pytest.CaptureFixture[str]
) -> None:
    def deliver(sink: int) -> None:
        for i in range(400):
            alerting._show(f"sink {sink} message {i}")

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = capsys.readouterr().out.splitlines()
    broken = [line for line in lines if not line.startswith("  [notification] sink ") or line.count("[") != 1]
    assert len(lines) == 6 * 400 and not broken, broken[:3]
