"""HTTP ingest events/s of one exporter replica with shared state in Redis (``--redis-url``) against the
in-memory default and against a plain ``XADD`` loop, and the p99 time of one 500-event batch.

Two exporters run side by side (uvicorn subprocesses, logging off, rate limit out of the way), one with
a local ``redis-server`` (``--save ''``, no AOF); one client posts the same pre-serialised batches of
``bench_http_ingest`` (3 tenants in turn, user ids, durations) to each, rounds interleaved A, B, A, B so
machine noise hits both alike. The Redis replica does per batch: the token bucket script, the record
script (caps, PFADD of the batch's users to two HyperLogLogs per tenant), the append to the ingest
stream, and (its consumer thread) the apply script, on top of what the in-memory one does. The third
contender, interleaved too, is the physical limit: one client ``XADD``ing each batch's JSON body to a
stream of the same Redis, back to back, nothing else. Run: ``python -m benchmarks redis_ingest``
(needs ``redis-server``).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis as redis_py
import requests
import yaml

from benchmarks.bench_http_ingest import BATCH, TENANTS, batches, free_port, start

ROUNDS = 6
ROUND_SECONDS = 3.0


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def measure(
    session: requests.Session, url: str, work: list[tuple[bytes, dict[str, str]]], seconds: float
) -> tuple[float, list[float]]:
    """(events/s, seconds per batch) over ``seconds`` of back-to-back batch posts."""
    latencies = []
    i = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        body, headers = work[i % len(work)]
        started = time.perf_counter()
        r = session.post(f"{url}/analytics/metrics", data=body, headers=headers, timeout=30)
        latencies.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise RuntimeError(f"{url} refused a batch: {r.status_code} {r.text[:300]}")
        i += 1
    return len(latencies) * BATCH / (time.perf_counter() - t0), latencies


def measure_xadd(
    client: redis_py.Redis, work: list[tuple[bytes, dict[str, str]]], seconds: float
) -> tuple[float, list[float]]:
    """(events/s, seconds per batch) of ``XADD``ing the batches' bodies back to back."""
    latencies = []
    i = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        started = time.perf_counter()
        client.xadd("bench:xadd", {"body": work[i % len(work)][0]})
        latencies.append(time.perf_counter() - started)
        i += 1
    client.delete("bench:xadd")
    return len(latencies) * BATCH / (time.perf_counter() - t0), latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    keys = {t: f"bench-{t}-key" for t in TENANTS}
    keys_file = tmp / "keys.yaml"
    keys_file.write_text(
        yaml.safe_dump({"keys": [{"key": k, "tenant": t, "scopes": ["write"]} for t, k in keys.items()]})
    )
    pseudonyms = tmp / "pseudonym-keys.yaml"
    pseudonyms.write_text(yaml.safe_dump({"current": "v1", "keys": {"v1": "bench-pseudonym-key-0123456789"}}))
    redis, redis_url = start_redis(tmp)
    common = ["--api-keys", str(keys_file), "--pseudonym-key-file", str(pseudonyms)]
    common += ["--rate-limit", "1e9", "--log-level", "warning"]
    procs = [redis]
    try:
        urls = {}
        for name, extra in (("in memory", []), ("redis", ["--redis-url", redis_url])):
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            command = [
                sys.executable,
                "-m",
                "tenantpulse.cli",
                "exporter",
                "--port",
                str(port),
                *common,
                *extra,
            ]
            procs.append(start(command, urls[name]))
        work = batches(keys)
        session = requests.Session()
        client = redis_py.Redis.from_url(redis_url)
        for url in urls.values():
            measure(session, url, work, 1.0)  # warm-up: every tenant and event type seen
        names = [*urls, "plain XADD"]
        rates: dict[str, list[float]] = {name: [] for name in names}
        latencies: dict[str, list[float]] = {name: [] for name in names}
        waiting = []
        for _ in range(ROUNDS):
            for name in names:
                if name == "plain XADD":
                    rate, lat = measure_xadd(client, work, ROUND_SECONDS)
                else:
                    rate, lat = measure(session, urls[name], work, ROUND_SECONDS)
                if name == "redis":
                    waiting.append(client.xlen("tp:{tp:ingest}:stream"))  # not yet applied at round's end
                rates[name].append(rate)
                latencies[name].extend(lat)
        print(
            f"http ingest per replica, {BATCH}-event JSON batches, 1 client, {ROUNDS} interleaved rounds of {ROUND_SECONDS:g}s"
        )
        for name in names:
            r, lat = rates[name], latencies[name]
            print(
                f"  {name:<10} {min(r):>9,.0f} min {statistics.median(r):>9,.0f} median events/s;"
                f"  batch p50 {statistics.median(lat) * 1e3:.1f} ms  p99 {p99(lat) * 1e3:.1f} ms"
            )
        ratio = statistics.median(b / a for a, b in zip(rates["in memory"], rates["redis"], strict=True))
        print(f"  redis / in memory: {ratio:.2f}x (median of per-round ratios)")
        limit = statistics.median(b / a for a, b in zip(rates["plain XADD"], rates["redis"], strict=True))
        print(
            f"  redis / plain XADD: {limit:.2f}x; stream entries not yet applied at each round's end: {waiting}"
        )
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
