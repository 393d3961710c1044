"""Bytes and CPU per ``/metrics`` scrape of ~100k series, gzip (as Prometheus asks) vs plain text.

Each scrape is the collector's render plus ``metrics_response`` (the negotiation and, for gzip, the
compression every app's route does), on the counters scenario of bench_exposition (2,000 tenants x 50
event types). The two requests alternate, plain then gzip, for several rounds in one run; the figures
are the min and median CPU per scrape. For reference: prometheus_client's own gzip answer (level 9) of
the same body, as the bytes a scrape of a prometheus_client exporter would carry.
"""

from __future__ import annotations

import gzip
import statistics
import time

from starlette.requests import Request

from benchmarks.bench_exposition import counters_ours
from tenantpulse.web.compression import GZIP_LEVEL, metrics_response

ROUNDS = 7
MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def request(accept_encoding: str) -> Request:
    """A bare ASGI request carrying only the header the negotiation reads."""
    headers = [(b"accept-encoding", accept_encoding.encode())]
    return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": headers})


def main() -> None:
    render = counters_ours()
    asks = {"plain": request("identity"), "gzip": request("gzip")}
    cpu: dict[str, list[float]] = {name: [] for name in asks}
    size: dict[str, int] = {}
    render()  # warm-up: the first render builds the collector's caches
    for _ in range(ROUNDS):
        for name, req in asks.items():  # interleaved: plain, gzip, plain, gzip, ...
            t0 = time.process_time()
            answer = metrics_response(req, render(), MEDIA_TYPE)
            cpu[name].append(time.process_time() - t0)
            size[name] = len(answer.body)
    body = render()
    samples = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    reference = len(gzip.compress(body))
    print(f"series: {samples:,}, {ROUNDS} interleaved rounds, gzip level {GZIP_LEVEL}")
    for name in asks:
        print(
            f"  {name:5}: {size[name]:>10,} B per scrape, CPU min {min(cpu[name]) * 1000:6.1f} ms, "
            f"median {statistics.median(cpu[name]) * 1000:6.1f} ms"
        )
    extra = [g - p for g, p in zip(cpu["gzip"], cpu["plain"], strict=True)]
    print(
        f"  gzip is {size['plain'] / size['gzip']:.1f}x fewer bytes for {min(extra) * 1000:+.1f} ms "
        f"(median {statistics.median(extra) * 1000:+.1f} ms) of CPU per scrape; prometheus_client's "
        f"gzip (level 9) of the same body: {reference:,} B"
    )


if __name__ == "__main__":
    main()
