"""The rendered pods run: the exporter and a sidecar shard are started as local processes with exactly
the command lines, environment and Secret files the chart renders; a real Prometheus scrapes them with
the rendered ServiceMonitors (per-tenant ``params``) and evaluates the rendered PrometheusRule.

This catches what schema checks cannot: a flag the program no longer accepts, a keys file it cannot
read, a probe path it does not serve, a per-tenant scrape that leaks another tenant's series.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python
import pytest
import requests
import yaml

from anomaly_sidecar import state as state_file
from security.state_crypto import StateCipher, new_key_hex, parse_key
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus
from tests.test_helm_chart import CHART_DIR, NAMESPACE, RELEASE, Loader, of_kind, one, pod_labels, subset

# Secrets the operator creates before installing (referenced by name in the values).
EXISTING_SECRETS = {"tp-state-key": {"state-key": base64.b64encode(new_key_hex().encode()).decode()}}
T1_KEY = "t1-ingest-key-0123456789"
ADMIN_KEY = "ops-admin-key-0123456789"
VALUES: dict[str, Any] = {
    "secret": {
        "apiKeys": [
            {"key": T1_KEY, "tenant": "t1", "scopes": ["write", "read"]},
            {"key": ADMIN_KEY, "tenant": "*", "scopes": ["admin"], "id": "ops"},
        ],
        "pseudonymisationSecret": "0123456789abcdef0123456789abcdef",
    },
    "exporter": {
        "metricsAuth": True,
        "erasure": {"prometheusUrl": "http://prometheus-operated.monitoring.svc:9090"},
    },
    "sidecar": {"shards": 2, "interval": "1s", "stateKeySecret": {"name": "tp-state-key"}},
    "serviceMonitor": {"allTenants": False, "perTenant": {"enabled": True, "tenants": ["t1"]}},
}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    with helm_python.Chart.load(CHART_DIR) as chart:
        manifests = chart.render(VALUES, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        d
        for path, text in manifests.items()
        if path.endswith(".yaml")
        for d in yaml.load_all(text, Loader=Loader)
        if d
    ]


def command_line(
    deployment: dict[str, Any], docs: list[dict[str, Any]], root: Path, port: int
) -> tuple[list[str], dict[str, str]]:
    """The container's args and env for a local run: Secret volumes written under ``root``, mount paths
    rewritten to them, the listen address moved to loopback and a free port."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    secrets = EXISTING_SECRETS | {s["metadata"]["name"]: s["data"] for s in of_kind(docs, "Secret")}
    local: dict[str, str] = {}
    for mount in container["volumeMounts"]:
        path = root / mount["name"]
        path.mkdir(parents=True, exist_ok=True)
        volume = volumes[mount["name"]]
        if "secret" in volume:
            data = secrets[volume["secret"]["secretName"]]
            for item in volume["secret"]["items"]:
                (path / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
        local[mount["mountPath"]] = str(path)
    args = []
    for arg in container["args"]:
        for mount_path in sorted(local, key=len, reverse=True):  # the deepest mount owns the path
            if f"={mount_path}/" in arg:
                arg = arg.replace(f"={mount_path}/", f"={local[mount_path]}/", 1)
                break
        if arg.startswith("--host="):
            arg = "--host=127.0.0.1"
        elif arg.startswith("--port="):
            arg = f"--port={port}"
        args.append(arg)
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return args, env


def probe_urls(deployment: dict[str, Any], port: int) -> list[str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    probes = ("startupProbe", "livenessProbe", "readinessProbe")
    return [f"http://127.0.0.1:{port}{container[p]['httpGet']['path']}" for p in probes]


@contextmanager
def running(args: list[str], env: dict[str, str], root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tenantpulse <args>`` (the image's entrypoint) as a process; its output goes to root/log."""
    with open(root / "log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tenantpulse.cli", *args],
            env=os.environ | env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_ready(urls: list[str], proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Until every probe answers 200; a process that exits fails at once, with its output."""

    def ready() -> bool:
        return proc.poll() is not None or all(requests.get(u, timeout=2).status_code == 200 for u in urls)

    wait_until(ready, timeout=timeout, what=f"probes {urls}")
    assert proc.poll() is None, f"the process exited ({proc.returncode}):\n{log.read_text()}"


def scrape_config(monitor: dict[str, Any], target: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The scrape job the Prometheus Operator generates for one ServiceMonitor endpoint (the target
    found through the Service replaced by the local process, Secret references resolved)."""
    endpoint = monitor["spec"]["endpoints"][0]
    job = {
        "job_name": monitor["metadata"]["name"],
        "metrics_path": endpoint["path"],
        "honor_labels": endpoint["honorLabels"],
        "static_configs": [{"targets": [target]}],
    }
    if "params" in endpoint:
        job["params"] = endpoint["params"]
    if "authorization" in endpoint:
        ref = endpoint["authorization"]["credentials"]
        secret = one(docs, "Secret", ref["name"])["data"][ref["key"]]
        job["authorization"] = {
            "type": endpoint["authorization"]["type"],
            "credentials": base64.b64decode(secret).decode(),
        }
    return job


def service_of(url: str, docs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The Service a rendered in-cluster URL names, and the URL's path."""
    parsed = urlsplit(url)
    name, namespace = parsed.hostname.split(".")[:2]
    assert namespace == NAMESPACE
    service = one(docs, "Service", name)
    assert parsed.port == service["spec"]["ports"][0]["port"], url
    return service, parsed.path


def flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name}: {values}"
    return values[0]


def replace_flag(args: list[str], name: str, value: str) -> list[str]:
    return [f"--{name}={value}" if a.startswith(f"--{name}=") else a for a in args]


def audit_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of an audit log, after ``tenantpulse audit verify`` found its chain intact."""
    verify = subprocess.run(
        [sys.executable, "-m", "tenantpulse.cli", "audit", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.integration
def test_rendered_pods_run_and_prometheus_scrapes_them_per_tenant(
    docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    exporter_port, sidecar_port = free_port(), free_port()
    monitors = {m["metadata"]["name"]: m for m in of_kind(docs, "ServiceMonitor")}
    per_tenant = monitors[f"{RELEASE}-tenantpulse-exporter-t1"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump({"groups": one(docs, "PrometheusRule", f"{RELEASE}-tenantpulse")["spec"]["groups"]})
    )
    # The sidecar run here is the one the exporter's rendered --sidecar-url reaches (through its Service).
    (tmp_path / "exporter").mkdir()
    args, env = command_line(exporter, docs, tmp_path / "exporter", exporter_port)
    sidecar_service, _ = service_of(flag(args, "sidecar-url"), docs)
    (sidecar,) = [
        d for d in of_kind(docs, "Deployment") if subset(sidecar_service["spec"]["selector"], pod_labels(d))
    ]
    jobs = [
        scrape_config(per_tenant, f"127.0.0.1:{exporter_port}", docs),
        scrape_config(monitors[f"{RELEASE}-tenantpulse-sidecar"], f"127.0.0.1:{sidecar_port}", docs),
    ]
    (tmp_path / "prometheus").mkdir()
    with Prometheus(tmp_path / "prometheus", jobs, rule_files=[str(rules)]) as prom:
        args = replace_flag(args, "sidecar-url", f"http://127.0.0.1:{sidecar_port}")
        args = replace_flag(args, "prometheus-url", prom.url)
        with running(args, env, tmp_path / "exporter") as exporter_proc:
            wait_ready(probe_urls(exporter, exporter_port), exporter_proc, tmp_path / "exporter" / "log")
            ingest = f"http://127.0.0.1:{exporter_port}/analytics/metrics"
            for key, tenant in ((T1_KEY, "t1"), (ADMIN_KEY, "t2")):
                event = {"tenant_id": tenant, "user_id": "u1", "event_type": "song_play"}
                r = requests.post(ingest, json=event, headers={"Authorization": f"Bearer {key}"}, timeout=5)
                assert r.status_code < 300, r.text
            denied = requests.post(
                ingest,
                json={"tenant_id": "t2", "user_id": "u1", "event_type": "song_play"},
                headers={"Authorization": f"Bearer {T1_KEY}"},
                timeout=5,
            )
            assert denied.status_code == 403, (
                "a tenant key from the chart's Secret must not write another tenant"
            )
            hook = one(docs, "Pod", f"{RELEASE}-tenantpulse-test-exporter")["spec"]["containers"][0]
            target = {e["name"]: e["value"] for e in hook["env"]}["TARGET"]
            assert target.startswith(f"http://{RELEASE}-tenantpulse-exporter:8080/")
            local = target.replace(f"{RELEASE}-tenantpulse-exporter:8080", f"127.0.0.1:{exporter_port}")
            assert hook["command"][0] == "python"  # the image's interpreter; here, the one running the tests
            command = [sys.executable, *hook["command"][1:]]
            helm_test = subprocess.run(
                command, env=os.environ | {"TARGET": local}, capture_output=True, timeout=30
            )
            assert helm_test.returncode == 0, helm_test.stderr  # `helm test` would pass
            anonymous = requests.get(
                f"http://127.0.0.1:{exporter_port}/metrics", params={"tenant": "t1"}, timeout=5
            )
            assert anonymous.status_code == 401, "with metricsAuth, /metrics needs the scrape token"

            (tmp_path / "sidecar").mkdir()
            args, env = command_line(sidecar, docs, tmp_path / "sidecar", sidecar_port)
            assert "--shard-index=0" in args and "--shard-count=2" in args
            args = replace_flag(args, "prometheus-url", prom.url)
            with running(args, env, tmp_path / "sidecar") as sidecar_proc:
                wait_ready(probe_urls(sidecar, sidecar_port), sidecar_proc, tmp_path / "sidecar" / "log", 60)
                wait_until(prom.targets_up, what="both targets up")
                wait_until(lambda: prom.query('tenantpulse_events_total{tenant="t1"}'), what="t1 series")
                assert not prom.query('{tenant="t2"}'), (
                    "the per-tenant ServiceMonitor must carry tenant t1 only"
                )

                def rules_evaluated() -> bool:
                    groups = requests.get(f"{prom.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
                    states = [
                        (r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
                    ]
                    bad = [s for s in states if s[1] == "err"]
                    assert not bad, bad
                    return bool(states) and all(s[1] == "ok" for s in states)

                wait_until(rules_evaluated, what="every rendered rule evaluated without error")
                sidecar_metrics = f"http://127.0.0.1:{sidecar_port}/metrics"
                wait_until(
                    lambda: 'tenant="t1"' in requests.get(sidecar_metrics, timeout=5).text,
                    timeout=60,
                    what="the sidecar scoring t1",
                )

                # Erasure through the rendered exporter reaches the rendered sidecar and Prometheus.
                erased = requests.delete(
                    f"http://127.0.0.1:{exporter_port}/analytics/tenants/t1",
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                    timeout=150,
                )
                assert erased.status_code == 200, erased.text
                report = erased.json()
                assert report["complete"], report
                assert report["sidecar"]["status"] == "removed", report["sidecar"]
                assert report["prometheus"]["status"] == "removed", report["prometheus"]
                assert 'tenant="t1"' not in requests.get(sidecar_metrics, timeout=5).text
                assert not prom.query('{tenant="t1"}'), "Prometheus still answers with t1's samples"
            # Saved on SIGTERM, encrypted with the key from the Secret: readable with it, and only with it.
            state = tmp_path / "sidecar" / "state" / "state.json"
            key = parse_key(base64.b64decode(EXISTING_SECRETS["tp-state-key"]["state-key"]), "state-key")
            assert state_file.load(state, state_file.CipherCodec(StateCipher(key))) is not None
            with pytest.raises(state_file.StateError):
                state_file.load(state)

    # Both audit trails sit on the rendered volumes, hold the erasure, and verify.
    exporter_audit = audit_entries(tmp_path / "exporter" / "audit" / "audit.jsonl")
    assert ("tenant.erase", "ops", "t1", "ok") in {
        (e["action"], e["actor"], e["tenant"], e["outcome"]) for e in exporter_audit
    }
    sidecar_audit = audit_entries(tmp_path / "sidecar" / "state" / "audit.jsonl")
    assert ("tenant.erase", "exporter-erasure", "t1", "ok") in {
        (e["action"], e["actor"], e["tenant"], e["outcome"]) for e in sidecar_audit
    }
