"""The sidecar's work loop: read indicators from Prometheus, score them, publish, remember.

Start: restore the state file if there is one, then backfill history once with range queries (only
the gap since the saved state). Each cycle: one instant query per watched indicator returns the
newest value of every tenant's series, so a cycle costs O(series) whatever the history length; the
whole batch goes through the detector bank in one vectorised ``update``; the /metrics body is
re-rendered once. Forecasts are refreshed on a slower cadence from range queries. When Prometheus
cannot be read the sidecar keeps serving its last values with ``stale=1`` and simply tries again next
cycle, so it recovers by itself.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from tenantpulse.anomaly_sidecar import state as state_file
from tenantpulse.anomaly_sidecar.detector import DEFAULT_WARMUP, DetectorBank
from tenantpulse.anomaly_sidecar.episodes import EpisodeHold
from tenantpulse.anomaly_sidecar.exposition import FORECAST_FAMILIES, SERIES_FAMILIES, OutputTable
from tenantpulse.anomaly_sidecar.facade import ForecastUnavailable, forecast_series
from tenantpulse.anomaly_sidecar.reader import PrometheusReader, QueryError, RangeSeries
from tenantpulse.anomaly_sidecar.registry import Registry, SeriesKey
from tenantpulse.conventions import catalog as c
from tenantpulse.conventions import indicators
from tenantpulse.kernel.durations import format_duration
from tenantpulse.otel.tracing import set_attributes
from tenantpulse.otel.tracing import span as traced_span

log = structlog.get_logger("anomaly_sidecar")
STATE_VERSION = 1


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the loop needs; durations in seconds."""

    indicators: tuple[str, ...] = indicators.WATCHED
    interval: float = 15.0
    rate_window: float = 300.0
    backfill: float = 3600.0
    sensitivity: str = "medium"
    warmup: int = DEFAULT_WARMUP
    shard_index: int = 0
    shard_count: int = 1
    state_path: str | None = None
    state_every: float = 60.0
    forecast_horizon: float = 3600.0
    forecast_every: float = 300.0
    forecast_history: float = 2 * 86400.0
    forecast_step: float = 300.0
    confidence: float = 0.95
    forget_after: float = 86400.0
    # The newest part of a backfill is read by instant queries, one per step: VictoriaMetrics before 1.88
    # repeats its last -search.latencyOffset (default 30s) of a range answer; instant ones are exact.
    latency_offset: float = 30.0
    state_codec: state_file.Codec = field(default=state_file.PLAIN)

    def __post_init__(self) -> None:
        for name in self.indicators:
            indicators.get(name)  # KeyError naming the valid choices


@dataclass
class CycleReport:
    """What one cycle did (returned for tests and logs)."""

    at: float
    series: int = 0
    scored: int = 0
    alarms: int = 0
    errors: int = 0
    duration: float = 0.0


class SidecarService:
    """Owns the detector bank, the series registry and the output table; driven by ``run``."""

    def __init__(self, reader: PrometheusReader, config: ServiceConfig) -> None:
        self.reader = reader
        self.config = config
        self.indicators = [indicators.get(n) for n in config.indicators]
        self.horizon = format_duration(config.forecast_horizon)
        self.lock = threading.RLock()  # bank + registry: the loop and API calls (train) both touch them
        self._save_lock = threading.Lock()  # one save at a time, so an older snapshot never lands last
        self.table = OutputTable(self.horizon)
        self.query_errors = 0
        self.last_success = 0.0
        self.stale = False
        self.ready = threading.Event()
        self.restored_from: float | None = None
        self.state_discarded = 0  # state files set aside at start (damaged or incompatible)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_state_save = 0.0
        self._last_forecast = 0.0
        self._forecaster: threading.Thread | None = None
        self.erased: dict[str, float] = {}  # tenant -> erasure time (see remove_tenant)
        self._init_models(DetectorBank(config.sensitivity, config.warmup))
        if config.state_path:
            self._restore(config.state_path)

    def _init_models(self, bank: DetectorBank) -> None:
        self.bank = bank
        self.registry = Registry(self._allocate, self.config.shard_index, self.config.shard_count)
        self.registry.on_new.append(self.table.add)
        n = bank.capacity
        self.observed = np.zeros(n)  # samples learned per series: warm-up progress, shown by the API
        self.last_t = np.full(n, -np.inf)  # time of the newest sample learned, so none is fed twice
        self.episodes = EpisodeHold()  # the shown score, held for each episode (see learn)
        self.episodes.grow(n)
        self.last_seen = np.full(n, np.inf)  # when Prometheus last returned the series (+inf: free slot)

    def _allocate(self, n: int) -> np.ndarray:
        idx = self.bank.add(n)
        if self.bank.capacity > self.observed.size:
            extra = self.bank.capacity - self.observed.size
            self.observed = np.concatenate([self.observed, np.zeros(extra)])
            self.last_t = np.concatenate([self.last_t, np.full(extra, -np.inf)])
            self.episodes.grow(self.bank.capacity)
            self.last_seen = np.concatenate([self.last_seen, np.full(extra, np.inf)])
        self.observed[idx] = 0
        self.last_t[idx] = -np.inf
        self.episodes.reset(idx)
        self.last_seen[idx] = time.time()
        return idx

    # -- learning ----------------------------------------------------------------------------------

    def learn(self, idx: np.ndarray, t: np.ndarray, x: np.ndarray) -> tuple[int, int]:
        """Feed samples (any order, possibly several per series) in time order; skip already-learned ones.

        Returns ``(learned, alarms_in_last_step_per_series)``. The newest result of each series goes
        to the output table. Its score is held for the episode and then decays at a stated pace
        (``episodes``): the detector scores an episode once, and a scrape or a graph step that misses
        that one sample would miss the episode. A series still warming up has no score yet (NaN on
        /metrics, not 0) and ``ANOMALY_WARMUP_REMAINING`` says how many samples it still needs.
        """
        fresh = t > self.last_t[idx]
        idx, t, x = idx[fresh], t[fresh], x[fresh]
        if idx.size == 0:
            return 0, 0
        order = np.lexsort((idx, t))
        idx, t, x = idx[order], t[order], x[order]
        unset = np.unique(idx[~self.bank.domain_set(idx)])
        if unset.size:  # new series: their indicator's domain, once; the published band is clipped to it
            name_of = {j: name for (_, name), j in self.registry.items()}
            ind = [indicators.INDICATORS.get(name_of.get(j, "")) for j in unset.tolist()]
            dom = np.array([i.domain if i else (-np.inf, np.inf) for i in ind], float).reshape(-1, 2)
            self.bank.set_domain(unset, dom[:, 0], dom[:, 1])
        bounds = np.flatnonzero(np.diff(t)) + 1
        alarms = 0
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, idx.size], strict=True):
            i = idx[lo:hi]
            r = self.bank.update(i, t[lo:hi], x[lo:hi])
            shown = self.episodes.update(
                i, t[lo:hi], x[lo:hi], r.score, r.lower, r.upper, self.bank.threshold
            )
            warming = self.observed[i] < self.bank.warmup  # samples learned before this one
            self.observed[i] += np.isfinite(x[lo:hi])
            remaining = np.maximum(self.bank.warmup - self.observed[i], 0.0)
            for metric, values in (
                (c.ANOMALY_SCORE, np.where(warming, np.nan, shown)),
                (c.ANOMALY_WARMUP_REMAINING, np.where(warming, remaining, np.nan)),
                (c.ANOMALY_EXPECTED, r.expected),
                (c.ANOMALY_LOWER, r.lower),
                (c.ANOMALY_UPPER, r.upper),
            ):
                self.table.set(metric, i, values)
            self.table.set_warming(i, warming)
            self.last_t[i] = t[lo:hi]
            alarms = int(r.alarm.sum())
        self.last_seen[idx] = time.time()
        return int(idx.size), alarms

    @traced_span("sidecar backfill")
    def backfill(
        self,
        span: float,
        tenants: Sequence[str] | None = None,
        names: Sequence[str] | None = None,
        reset: bool = False,
    ) -> int:
        """Learn ``span`` seconds of history at the cycle step, from range queries (chunked).

        With ``reset`` the matching models are forgotten first (in the same locked step as the
        re-learning, so a cycle in between cannot slip a newer sample in ahead of the history).
        """
        end = time.time()
        chosen = self.indicators if names is None else [indicators.get(n) for n in names]
        window = format_duration(self.config.rate_window)
        fetched = [
            (ind.name, self.history(ind.promql(tenants, window=window), end - span, end)) for ind in chosen
        ]
        learned = 0
        with self.lock:
            if reset:
                keys = [
                    (t, ind.name) for t in tenants or () for ind in chosen if (t, ind.name) in self.registry
                ]
                self._drop(self.registry.remove(keys))
            for name, rows in fetched:
                parts = self._resolve_rows(name, rows, end)
                if parts:
                    idx, t, x = (np.concatenate(p) for p in zip(*parts, strict=True))
                    learned += self.learn(idx, t, x)[0]
        if learned:
            self.table.render_series()
        return learned

    def history(self, expr: str, start: float, end: float) -> list[RangeSeries]:
        """``expr`` from ``start`` to ``end`` at the cycle step: a range query up to ``latency_offset``
        before ``end``, then one instant query per step after it (see ServiceConfig.latency_offset)."""
        step = self.config.interval
        tail = min(self.config.latency_offset, end - start)
        n_tail = math.floor(tail / step)
        cut = end - n_tail * step
        rows = self.reader.query_range(expr, start, cut, step) if cut >= start else []
        merged = {tuple(sorted(r.labels.items())): (r.labels, [r.times], [r.values]) for r in rows}
        for k in range(n_tail - 1, -1, -1):
            vec = self.reader.query(expr, at=end - k * step)
            for labels, t, x in zip(vec.labels, vec.times.tolist(), vec.values.tolist(), strict=True):
                entry = merged.setdefault(tuple(sorted(labels.items())), (labels, [], []))
                entry[1].append(np.array([t]))
                entry[2].append(np.array([x]))
        return [RangeSeries(lab, np.concatenate(ts), np.concatenate(xs)) for lab, ts, xs in merged.values()]

    def _resolve_rows(
        self, name: str, rows: list[Any], asked_at: float
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Rows of a range query sent at ``asked_at`` as (slots, times, values); a tenant erased since then
        is skipped (as in ``cycle``): the answer may hold its data from before the erasure."""
        tenants = [r.labels.get(c.TENANT, "") for r in rows]
        if self.erased:  # the registry skips rows without a tenant
            tenants = [t if self.erased.get(t, -np.inf) < asked_at else "" for t in tenants]
        positions, found = self.registry.resolve(name, tenants)
        return [
            (np.full(rows[p].times.size, i, np.intp), rows[p].times, rows[p].values)
            for p, i in zip(positions.tolist(), found.tolist(), strict=True)
        ]

    # -- the cycle ---------------------------------------------------------------------------------

    @traced_span("sidecar cycle")  # the Prometheus queries below become its child spans
    def cycle(self) -> CycleReport:
        """One pass: newest value of every watched series, scored, published."""
        started = time.monotonic()
        report = CycleReport(at=time.time())
        window = format_duration(self.config.rate_window)
        batches: list[tuple[str, list[str], np.ndarray, np.ndarray]] = []
        unreachable = False
        for ind in self.indicators:
            try:
                vec = self.reader.query(ind.promql(window=window), at=report.at)
            except QueryError as exc:
                report.errors += 1
                unreachable = unreachable or exc.retriable
                log.warning("query failed", indicator=ind.name, error=str(exc))
                continue
            batches.append((ind.name, [lab.get(c.TENANT, "") for lab in vec.labels], vec.times, vec.values))
        with self.lock:
            if batches:  # all indicators at once: new series get one bank allocation, not one per query
                keys = [(tenant, name) for name, tenants, _, _ in batches for tenant in tenants]
                if self.erased:  # answers from before an erasure must not bring the tenant back
                    keys = [(t if self.erased.get(t, -np.inf) < report.at else "", n) for t, n in keys]
                # (the registry skips keys without a tenant)
                positions, idx = self.registry.resolve_keys(keys)
                t = np.concatenate([b[2] for b in batches])[positions]
                x = np.concatenate([b[3] for b in batches])[positions]
                report.scored, report.alarms = self.learn(idx, t, x)
            if batches:
                self._forget_absent(report.at)
            report.series = len(self.registry)
        self.query_errors += report.errors
        if batches:
            self.last_success = report.at
        if unreachable != self.stale:
            log.info(
                "prometheus unreachable, serving last values" if unreachable else "prometheus reachable again"
            )
        self.stale = unreachable
        report.duration = time.monotonic() - started
        self._publish(report, series_changed=bool(batches))
        set_attributes(series=report.series, scored=report.scored, alarms=report.alarms, errors=report.errors)
        return report

    def _forget_absent(self, now: float) -> None:
        """Drop series Prometheus has not returned for ``forget_after`` (a tenant that left)."""
        if not (now - self.last_seen > self.config.forget_after).any():  # free slots hold +inf
            return
        gone = [k for k, i in self.registry.items() if now - self.last_seen[i] > self.config.forget_after]
        # Free slots too: a restore marks every slot as just seen.
        self.last_seen[self.last_seen < now - self.config.forget_after] = np.inf
        if not gone:
            return
        self._drop(self.registry.remove(gone))
        log.info("forgot absent series", count=len(gone))

    def _drop(self, slots: np.ndarray) -> None:
        """Forget everything held for these slots, whose keys the caller has taken out of the registry.

        The bank's models, the published outputs (label set and values, forecasts included), the
        warm-up count, the newest-sample time and the last-seen time: nothing of the series stays in
        memory or reaches a later state file (the state file holds every slot), and the slots are free
        for new series. Used by every path that drops series: absent for ``forget_after``, erased,
        retrained."""
        self.bank.remove(slots)
        self.table.remove(slots)
        for arr in self.table.values.values():
            arr[slots] = np.nan
        self.observed[slots] = 0
        self.last_t[slots] = -np.inf
        self.episodes.reset(slots)
        self.last_seen[slots] = np.inf

    def _publish(self, report: CycleReport, series_changed: bool) -> None:
        t = self.table
        t.set_health(c.ANOMALY_STALE, 1.0 if self.stale else 0.0)
        t.set_health(c.SIDECAR_CYCLE_DURATION, report.duration)
        t.set_health(c.SIDECAR_SERIES, report.series or len(self.registry))
        t.set_health(c.SIDECAR_QUERY_ERRORS, self.query_errors)
        t.set_health(c.SIDECAR_LAST_SUCCESS, self.last_success)
        if series_changed:
            t.render_series()
        else:
            t.render_health()

    # -- forecasts ---------------------------------------------------------------------------------

    @traced_span("sidecar forecasts")
    def refresh_forecasts(self) -> int:
        """Forecast every tracked series at the horizon from its recent history (slow cadence)."""
        cfg = self.config
        end = time.time()
        done = 0
        for ind in self.indicators:
            expr = ind.promql(window=format_duration(cfg.rate_window))
            rows = self.reader.query_range(expr, end - cfg.forecast_history, end, cfg.forecast_step)
            found: list[tuple[SeriesKey, Any]] = []
            for row in rows:
                key = (row.labels.get(c.TENANT, ""), ind.name)
                if key not in self.registry:
                    continue
                try:  # too little history yet: no forecast series until there is (docs/anomaly-model.md)
                    found.append(
                        (
                            key,
                            forecast_series(
                                row, ind.name, cfg.forecast_horizon, cfg.confidence, cfg.forecast_step
                            ),
                        )
                    )
                except ForecastUnavailable:
                    continue
            with self.lock:  # indices are looked up now: a series retrained meanwhile has moved
                for key, f in found:
                    i = self.registry.get(key)
                    if i is not None:
                        one = np.array([i])
                        self.table.set(c.FORECAST, one, np.atleast_1d(f.mean)[-1:])
                        self.table.set(c.FORECAST_LOWER, one, np.atleast_1d(f.lower)[-1:])
                        self.table.set(c.FORECAST_UPPER, one, np.atleast_1d(f.upper)[-1:])
                        done += 1
        self.table.render_series()
        return done

    # -- state -------------------------------------------------------------------------------------

    def save_state(self) -> None:
        """Write the models atomically (a crash mid-write keeps the previous file); OSError if it cannot.

        Saves run one at a time, snapshot and write together: otherwise the loop's save, snapshotted just
        before an erasure, could be renamed over the erasure's own save and put the tenant back on disk."""
        if not self.config.state_path:
            return
        with self._save_lock:
            with self.lock:
                arrays = {f"bank.{k}": v for k, v in self.bank.state().items()}
                arrays |= {"observed": self.observed.copy(), "last_t": self.last_t.copy()}
                n = self.bank.capacity
                arrays |= {f"out.{k}": v[:n].copy() for k, v in self.table.values.items()}
                meta = {
                    "version": STATE_VERSION,
                    "saved_at": time.time(),
                    "series": self.registry.to_json(),
                    "shard": [self.config.shard_index, self.config.shard_count],
                }
            state_file.save(self.config.state_path, state_file.pack(arrays, meta), self.config.state_codec)
            self._last_state_save = time.monotonic()

    def _restore(self, path: str) -> None:
        """Load the state file. Not ours / wrong key: StateError (refuse to start, never overwrite it).
        Ours but unusable (damaged bytes, or from an incompatible model version): set aside, start fresh.

        First, the temporary files of saves that were killed before their rename are removed."""
        removed = state_file.remove_leftovers(path)
        if removed:
            log.warning(
                "removed temporary files of interrupted state saves",
                path=path,
                files=[str(p) for p, _ in removed],
                bytes=sum(n for _, n in removed),
            )
        try:
            payload = state_file.load(path, self.config.state_codec)
            if payload is None:
                return
            arrays, meta = state_file.unpack(payload)
            if not isinstance(meta, dict) or meta.get("version") != STATE_VERSION:
                version = meta.get("version") if isinstance(meta, dict) else None
                raise _Incompatible(f"state version {version} is not {STATE_VERSION}")
            bank = DetectorBank.from_state({k[5:]: v for k, v in arrays.items() if k.startswith("bank.")})
            series = _saved_series(meta.get("series"), bank.capacity)
            saved_at = float(meta["saved_at"])
            for name in ("observed", "last_t"):
                if arrays[name].ndim != 1 or arrays[name].size > bank.capacity:
                    raise ValueError(f"{name}: {arrays[name].size} values for {bank.capacity} slots")
        except state_file.DamagedStateError as exc:
            self._set_aside(path, "damaged", "state file damaged, starting fresh", exc)
            return
        except (_Incompatible, KeyError, ValueError, TypeError) as exc:
            self._set_aside(path, "rejected", "state file unusable, starting fresh", exc)
            return
        bank.sensitivity, bank.threshold = self.config.sensitivity, self.bank.threshold
        bank.warmup = self.config.warmup
        self._init_models(bank)
        self.observed[: arrays["observed"].size] = arrays["observed"]
        self.last_t[: arrays["last_t"].size] = arrays["last_t"]
        keys: list[SeriesKey] = []
        idx: list[int] = []
        for tenant, name, i in series:
            key = (tenant, name)
            if name in self.config.indicators and self.registry.owns(key):
                keys.append(key)
                idx.append(i)
        self.registry.adopt(keys, np.asarray(idx, np.intp))
        dropped = sorted({i for _, _, i in series} - set(idx))
        if dropped:
            bank.remove(np.asarray(dropped, np.intp))  # series of another shard or indicator: free the slots
        kept = np.asarray(idx, np.intp)
        for metric in SERIES_FAMILIES + FORECAST_FAMILIES:
            saved = arrays.get(f"out.{metric.name}")
            if saved is not None and kept.size:
                self.table.set(metric, kept, saved[kept])  # serve the last values until the first cycle
        self.table.render_series()
        self.last_seen[:] = time.time()
        self.restored_from = saved_at
        log.info("state restored", path=path, series=len(keys), saved_at=self.restored_from)

    def _set_aside(self, path: str, why: str, message: str, error: Exception) -> None:
        """Move an unusable state file to ``<path>.<why>-<time>`` (kept for inspection), count it, log it.
        A file that cannot be moved is a StateError: starting fresh would overwrite it at the next save."""
        stamp = int(time.time())
        aside = f"{path}.{why}-{stamp}"
        n = 1
        while os.path.lexists(aside):  # two in the same second: keep both
            aside, n = f"{path}.{why}-{stamp}.{n}", n + 1
        try:
            os.replace(path, aside)
        except OSError as exc:
            raise state_file.StateError(
                f"{path}: unusable ({error}), and cannot be moved aside: {exc.strerror}"
            ) from None
        self.state_discarded += 1
        self.table.set_health(c.SIDECAR_STATE_DISCARDED, self.state_discarded)
        self.table.render_health()
        log.warning(message, path=path, moved_to=aside, error=str(error))

    # -- running -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="sidecar-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.save_state()

    def run(self) -> None:
        """Backfill (retrying until Prometheus answers), then cycle every ``interval`` until stopped."""
        cfg = self.config
        while not self._stop.is_set():
            span = cfg.backfill
            if self.restored_from is not None:
                span = min(span, max(time.time() - self.restored_from + cfg.interval, cfg.interval))
            try:
                learned = self.backfill(span)
                log.info("backfill done", seconds=span, samples=learned, series=len(self.registry))
                break
            except QueryError as exc:
                self.query_errors += 1
                self.stale = True
                self._publish(CycleReport(at=time.time()), series_changed=False)
                log.warning("backfill failed, retrying", error=str(exc))
                self._stop.wait(cfg.interval)
            except Exception:  # noqa: BLE001 - keep the loop alive; the next attempt may well work
                log.exception("backfill failed, retrying")
                self._stop.wait(cfg.interval)
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                report = self.cycle()
            except Exception:  # noqa: BLE001 - a bug in one cycle must not stop the loop for good
                log.exception("cycle failed")
                self.stale = True  # the last good values are what is served, so say they are stale
                report = CycleReport(at=time.time())
                self._publish(report, series_changed=False)
            self.ready.set()
            now = time.monotonic()
            if cfg.state_path and now - self._last_state_save >= cfg.state_every:
                self._guard(self.save_state, "state save failed")
            if not self.stale and now - self._last_forecast >= cfg.forecast_every and not self._forecasting():
                self._last_forecast = now
                self._forecaster = threading.Thread(
                    target=self._guard, args=(self.refresh_forecasts, "forecast refresh failed"), daemon=True
                )
                self._forecaster.start()  # slow and independent: scoring cycles keep their cadence
            log.debug("cycle", scored=report.scored, alarms=report.alarms, seconds=round(report.duration, 4))
            next_at = max(next_at + cfg.interval, time.monotonic())
            self._stop.wait(next_at - time.monotonic())

    def _forecasting(self) -> bool:
        return self._forecaster is not None and self._forecaster.is_alive()

    def _guard(self, action: Any, message: str) -> None:
        try:
            action()
        except (QueryError, OSError, ValueError) as exc:
            log.warning(message, error=str(exc))

    # -- API helpers -------------------------------------------------------------------------------

    def models(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """One entry per tracked series (optionally one tenant's), with its latest outputs."""
        out = []
        with self.lock:
            for (t, name), i in sorted(self.registry.items()):
                if tenant is not None and t != tenant:
                    continue
                row: dict[str, Any] = {"tenant_id": t, "indicator": name}
                for key, metric in (
                    ("score", c.ANOMALY_SCORE),
                    ("expected", c.ANOMALY_EXPECTED),
                    ("lower", c.ANOMALY_LOWER),
                    ("upper", c.ANOMALY_UPPER),
                    ("forecast", c.FORECAST),
                    ("forecast_lower", c.FORECAST_LOWER),
                    ("forecast_upper", c.FORECAST_UPPER),
                ):
                    v = self.table.get(metric, i)
                    row[key] = v if np.isfinite(v) else None
                row["observations"] = int(self.observed[i])
                row["warming_up"] = bool(self.observed[i] < self.bank.warmup)
                row["alarm"] = bool(
                    not row["warming_up"] and row["score"] is not None and row["score"] >= self.bank.threshold
                )
                row["last_sample"] = float(self.last_t[i]) if np.isfinite(self.last_t[i]) else None
                out.append(row)
        return out

    def remove_tenant(self, tenant: str) -> dict[str, Any]:
        """Erase a tenant's models and outputs (right to erasure) and rewrite the state file without them.

        Answers of queries sent before this moment are not learned for the tenant afterwards, so a
        cycle or backfill in flight cannot bring it back. Never raises for the state file: the answer
        says whether it was ``saved``, ``not_configured`` or ``failed`` (with ``state_error``); until a
        save succeeds the file on disk still holds the tenant, and a restart would bring it back."""
        with self.lock:
            keys = [k for k, _ in self.registry.items() if k[0] == tenant]
            self._drop(self.registry.remove(keys))
            self.erased[tenant] = time.time()
        self.table.render_series()
        done: dict[str, Any] = {"series": len(keys), "memory_erased": True, "state_file": "not_configured"}
        if not self.config.state_path:
            return done
        try:
            self.save_state()
        except OSError as exc:
            error = exc.strerror or type(exc).__name__
            log.error(
                "erasure: state file not saved", tenant=tenant, path=self.config.state_path, error=error
            )
            return done | {"state_file": "failed", "state_error": error}
        return done | {"state_file": "saved"}

    def retrain(self, tenant: str, names: Sequence[str], window: float) -> int:
        """Forget a tenant's models for ``names`` and learn them again from ``window`` of history."""
        return self.backfill(window, tenants=[tenant], names=names, reset=True)


class _Incompatible(Exception):
    """A well-formed state file from another model version."""


def _saved_series(raw: Any, capacity: int) -> list[tuple[str, str, int]]:
    """The registry's saved ``[tenant, indicator, slot]`` rows, checked (ValueError when malformed)."""
    if not isinstance(raw, list):
        raise ValueError("series: not a list")
    rows = []
    for row in raw:
        if not (isinstance(row, list) and len(row) == 3):
            raise ValueError(f"series: bad row {row!r}")
        tenant, name, i = row
        if not (isinstance(tenant, str) and isinstance(name, str) and type(i) is int and 0 <= i < capacity):
            raise ValueError(f"series: bad row {row!r}")
        rows.append((tenant, name, i))
    return rows
