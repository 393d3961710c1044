"""Personal data through the real exporter process, Prometheus and the exporter's debug log.

User ids and metadata outside the allowlist are personal data: the user ids must be counted (unique
users, through keyed HMAC pseudonyms) but never appear in clear anywhere the bundle writes or serves —
``/metrics`` (text and OpenMetrics), the tenant snapshot, the aggregate, error answers, the log at debug
level, and any label value Prometheus stored. Metadata keys outside the allowlist are dropped.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import requests
import yaml

from tenantpulse.conventions import catalog as c
from tests.support.exporter import Exporter, sample_value
from tests.support.ports import wait_until
from tests.support.prometheus import Prometheus

pytestmark = pytest.mark.integration

USERS = 25


def test_user_ids_and_dropped_metadata_never_leave_the_process(tmp_path: Path) -> None:
    marker = f"pii{secrets.token_hex(6)}"
    users = [f"{marker}-user{i}@example.com" for i in range(USERS)]
    secret_ip = f"203.0.113.{secrets.randbelow(250)}-{marker}"
    keyfile = tmp_path / "pseudonym.yaml"
    keyfile.write_text(yaml.safe_dump({"current": "v1", "keys": {"v1": secrets.token_hex(16)}}))
    with Exporter(
        tmp_path / "exporter", extra_args=["--pseudonym-key-file", str(keyfile), "--log-level", "debug"]
    ) as ex:
        for user in users:
            event = {
                "tenant_id": "t1",
                "user_id": user,
                "event_type": "song_play",
                "metadata": {"duration_ms": 120, "ip": secret_ip, "email": user},
            }
            assert ex.post(event, key="t1").status_code == 200
        # Refused input is not echoed back either.
        bad = {"tenant_id": "t1", "user_id": marker * 40, "event_type": "song_play"}
        refused = ex.post(bad, key="t1", check=False)
        assert refused.status_code == 422 and marker not in refused.text

        with Prometheus(tmp_path, [ex.scrape_config()]) as prom:
            selector = c.UNIQUE_USERS.selector(tenant="t1", window="1h")
            wait_until(lambda: prom.query(selector), what="unique users scraped")
            # Counted: HLL is exact at this size.
            assert prom.value(selector) == USERS
            assert sample_value(ex.metrics(), c.UNIQUE_USERS.name, tenant="t1", window="1h") == USERS
            label_values = [
                v
                for name in requests.get(f"{prom.url}/api/v1/labels", timeout=10).json()["data"]
                for v in requests.get(f"{prom.url}/api/v1/label/{name}/values", timeout=10).json()["data"]
            ]
            assert label_values and not any(marker in v for v in label_values)

        served = [
            ex.metrics(),
            ex.metrics(openmetrics=True),
            requests.get(f"{ex.url}/analytics/metrics/t1", headers=ex.auth("t1"), timeout=10).text,
            requests.get(f"{ex.url}/analytics/metrics/aggregated", headers=ex.auth("admin"), timeout=10).text,
        ]
        assert all(marker not in text for text in served)
        assert '"ip"' not in served[2] and "email" not in served[2]
    log = ex.log_path.read_text()
    assert log.count('"request"') >= USERS  # the debug log did see every request ...
    assert marker not in log  # ... and none of their personal data
