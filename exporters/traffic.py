"""Synthetic tenant traffic for the demo and for tests: batches posted to the real ingest API.

Each tenant sends song plays, session starts and errors (with durations) at a rate that follows a
daily curve, plus business figures (revenue, active users, conversion). One tenant can be made to
misbehave — an error spike or a traffic drop — so alerts, dashboards and the anomaly sidecar have
something to find. A "day" can be compressed (``day_seconds``) so the curve shows in a short demo.

Usage::

    gen = TrafficGenerator(url, [TenantProfile("t1", key1), TenantProfile("t2", key2)], seed=1)
    gen.tick(dt=1.0)                      # one batch per tenant, now
    gen.misbehave("t2", "error_spike")    # from now on; None to heal
    gen.start(interval=1.0); ...; gen.stop()   # background thread
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests
import structlog

from tenantpulse.conventions.indicators import ERROR_EVENT, PLAY_EVENT, SESSION_EVENT
from tenantpulse.exporters.misbehaviours import MISBEHAVIOURS, Misbehaviour

log = structlog.get_logger("tenantpulse.traffic")


@dataclass
class TenantProfile:
    """How one synthetic tenant behaves when well."""

    tenant: str
    key: str
    rate: float = 20.0  # events/s at the daily mean
    error_share: float = 0.02
    session_share: float = 0.1
    users: int = 500
    play_latency_ms: float = 150.0  # median time to start playback
    error_latency_ms: float = 400.0
    revenue_per_play: float = 0.004
    conversion_rate: float = 0.04


@dataclass
class TrafficStats:
    batches: int = 0
    events: int = 0
    refused: int = 0
    last_error: str | None = None
    by_status: dict[int, int] = field(default_factory=dict)


class TrafficGenerator:
    """Posts one batch per tenant per tick to ``{url}/analytics/metrics``."""

    def __init__(
        self,
        url: str,
        profiles: Sequence[TenantProfile],
        day_seconds: float = 86_400.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/analytics/metrics"
        self.profiles = {p.tenant: p for p in profiles}
        self.day_seconds = day_seconds
        self.rng = np.random.default_rng(seed)
        self.clock = clock
        self.session = session or requests.Session()
        self.stats = TrafficStats()
        self._bad: dict[str, Misbehaviour] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def misbehave(self, tenant: str, mode: Misbehaviour | None) -> None:
        """Make ``tenant`` spike errors / drop traffic from the next tick on (None: back to normal)."""
        if tenant not in self.profiles:
            raise ValueError(f"unknown tenant {tenant!r}; known: {sorted(self.profiles)}")
        if mode is None:
            self._bad.pop(tenant, None)
        elif mode in MISBEHAVIOURS:
            self._bad[tenant] = mode
        else:
            raise ValueError(f"unknown misbehaviour {mode!r}; choose one of {MISBEHAVIOURS}")

    def daily_factor(self, now: float) -> float:
        """Traffic relative to the daily mean: 0.4 at midnight, 1.6 at noon (UTC of the compressed day)."""
        phase = (now % self.day_seconds) / self.day_seconds
        return 1.0 - 0.6 * math.cos(2 * math.pi * phase)

    def batch(self, profile: TenantProfile, dt: float, now: float | None = None) -> dict[str, Any]:
        """The body for ``dt`` seconds of one tenant's traffic (no I/O; tests can inspect it)."""
        now = self.clock() if now is None else now
        mode = self._bad.get(profile.tenant)
        rate = profile.rate * self.daily_factor(now) * (0.1 if mode == "traffic_drop" else 1.0)
        error_share = 0.3 if mode == "error_spike" else profile.error_share
        slow = 4.0 if mode == "error_spike" else 1.0
        n = int(self.rng.poisson(rate * dt))
        kinds = self.rng.choice(
            3, size=n, p=[1 - error_share - profile.session_share, profile.session_share, error_share]
        )
        users = self.rng.integers(0, profile.users, size=n)
        events = []
        for kind, user in zip(kinds.tolist(), users.tolist(), strict=True):
            event: dict[str, Any] = {"tenant_id": profile.tenant, "user_id": f"user-{user}"}
            if kind == 0:
                event["event_type"] = PLAY_EVENT
                event["metadata"] = {"duration_ms": self._latency(profile.play_latency_ms * slow)}
            elif kind == 1:
                event["event_type"] = SESSION_EVENT
            else:
                event["event_type"] = ERROR_EVENT
                event["metadata"] = {"duration_ms": self._latency(profile.error_latency_ms * slow)}
            events.append(event)
        plays = int((kinds == 0).sum())
        business = {
            "tenant_id": profile.tenant,
            "revenue": round(plays * profile.revenue_per_play, 6),
            "active_users": float(round(profile.users * 0.3 * self.daily_factor(now))),
            "conversion_rate": float(np.clip(self.rng.normal(profile.conversion_rate, 0.003), 0, 1)),
        }
        return {"events": events, "business": [business]}

    def _latency(self, median_ms: float) -> float:
        return round(float(self.rng.lognormal(math.log(median_ms), 0.5)), 3)

    def tick(self, dt: float = 1.0) -> int:
        """Post one batch per tenant; returns events accepted. Refusals are counted, not raised."""
        accepted = 0
        now = self.clock()
        for profile in self.profiles.values():
            body = self.batch(profile, dt, now)
            try:
                r = self.session.post(
                    self.url, json=body, headers={"Authorization": f"Bearer {profile.key}"}, timeout=10
                )
            except requests.RequestException as exc:
                self.stats.refused += 1
                self.stats.last_error = f"{profile.tenant}: {type(exc).__name__}"
                continue
            self.stats.by_status[r.status_code] = self.stats.by_status.get(r.status_code, 0) + 1
            if r.status_code == 200:
                self.stats.batches += 1
                self.stats.events += len(body["events"])
                accepted += len(body["events"])
            else:
                self.stats.refused += 1
                self.stats.last_error = f"{profile.tenant}: {r.status_code} {r.text[:200]}"
                log.warning("traffic batch refused", tenant=profile.tenant, status=r.status_code)
        return accepted

    def run(self, duration: float | None = None, interval: float = 1.0) -> None:
        """Tick every ``interval`` seconds until ``stop()`` or ``duration`` seconds have passed."""
        end = None if duration is None else time.monotonic() + duration
        last = time.monotonic()
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            now = time.monotonic()
            self.tick(dt=max(now - last, 1e-3))
            last = now
            self._stop.wait(max(0.0, interval - (time.monotonic() - now)))

    def start(self, interval: float = 1.0) -> TrafficGenerator:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, kwargs={"interval": interval}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
