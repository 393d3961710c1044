"""A start cut short (Ctrl-C while the demo comes up) still stops cleanly: every component whose
``prepare`` ran can be stopped, started or not, and promptly."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from pathlib import Path

from tenantpulse.demo.context import DemoContext
from tenantpulse.demo.sinks import MailSink, WebhookSink
from tenantpulse.demo.stack import COMPONENTS
from tests.support.prometheus import require


def finishes(call: Callable[[], None], within: float = 15.0) -> BaseException | None:
    """Run ``call`` in a thread: what it raised, if anything; fails if it is still running after ``within``."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"{call} still running after {within}s"
    return raised[0] if raised else None


def test_sinks_stop_without_having_started() -> None:
    assert finishes(WebhookSink().stop) is None
    assert finishes(MailSink().stop) is None


def test_every_component_stops_after_prepare_alone(tmp_path: Path) -> None:
    require("prometheus")
    require("prometheus-alertmanager")
    args = argparse.Namespace(
        workdir=str(tmp_path), exporter_port=0, prometheus_port=0, scrape_interval="1s", misbehave=None
    )
    ctx = DemoContext(workdir=tmp_path, args=args)
    components = [make() for make in COMPONENTS]
    for component in components:
        component.prepare(ctx)
    for component in reversed(components):
        assert finishes(component.stop) is None, component.name
