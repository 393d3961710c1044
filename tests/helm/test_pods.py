"""The rendered pods run: the exporter and a sidecar shard are started as local processes with exactly
the command lines, environment and Secret files the chart renders; a real Prometheus scrapes them with
the rendered ServiceMonitors (per-tenant ``params``) and evaluates the rendered PrometheusRule; a tenant
is erased through the rendered exporter from the rendered sidecar and Prometheus, and both audit logs
verify; before that, the rendered gateway answers in front of that Prometheus with the rendered keys. Run
twice: plain HTTP, and with the chart's TLS (a CA and a certificate made here).

This catches what schema checks cannot: a flag the program no longer accepts, a keys file it cannot
read, a probe path it does not serve, a per-tenant scrape that leaks another tenant's series, an
erasure key the sidecar refuses, a certificate nobody can verify.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python
import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tenantpulse.anomaly_sidecar import state as state_file
from tenantpulse.security.state_crypto import StateCipher, new_key_hex, parse_key
from tests.helm.test_chart import CHART_DIR, NAMESPACE, RELEASE, of_kind, one, pod_labels, subset
from tests.support.ports import free_port, wait_until
from tests.support.prometheus import Prometheus

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
TLS_VALUES = {"tls": {"secretName": "tp-tls"}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tls_secret(dns_names: list[str]) -> dict[str, str]:
    """A kubernetes.io/tls Secret's data as cert-manager writes it: a CA and a certificate it signed for
    the Services' DNS names (and 127.0.0.1, where the processes listen here)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantpulse test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    sans = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return {
        "tls.crt": b64(cert.public_bytes(pem)),
        "tls.key": b64(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        ),
        "ca.crt": b64(ca.public_bytes(pem)),
    }


@dataclass
class Release:
    """The rendered objects, and every Secret's data: the chart's and those the operator created."""

    docs: list[dict[str, Any]]
    secrets: dict[str, dict[str, str]]
    scheme: str


@pytest.fixture(scope="module", params=["http", "https"])
def release(request: pytest.FixtureRequest) -> Release:
    values = VALUES | (TLS_VALUES if request.param == "https" else {})
    with helm_python.Chart.load(CHART_DIR) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = [
        d for path, text in manifests.items() if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d
    ]
    secrets = {"tp-state-key": {"state-key": b64(new_key_hex().encode())}}
    if request.param == "https":
        services = [s["metadata"]["name"] for s in of_kind(docs, "Service")]
        secrets["tp-tls"] = tls_secret([f"{s}.{NAMESPACE}.svc" for s in services])
    secrets |= {s["metadata"]["name"]: s["data"] for s in of_kind(docs, "Secret")}
    return Release(docs, secrets, request.param)


def command_line(
    pod: dict[str, Any], secrets: dict[str, dict[str, str]], root: Path, port: int = 0
) -> tuple[list[str], dict[str, str]]:
    """A pod spec's first container's args and env for a local run: Secret volumes written under
    ``root``, mount paths in args and env values rewritten to them, the listen address moved to
    loopback and ``port``."""
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    local: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        path = root / mount["name"]
        path.mkdir(parents=True, exist_ok=True)
        volume = volumes[mount["name"]]
        if "secret" in volume:
            data = secrets[volume["secret"]["secretName"]]
            for item in volume["secret"]["items"]:
                (path / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
        local[mount["mountPath"]] = str(path)

    def localised(value: str, prefix: str) -> str:
        for mount_path in sorted(local, key=len, reverse=True):  # the deepest mount owns the path
            if value.startswith(f"{prefix}{mount_path}/"):
                return value.replace(f"{prefix}{mount_path}/", f"{prefix}{local[mount_path]}/", 1)
        return value

    args = []
    for arg in container.get("args", []):
        arg = localised(arg, arg.split("=", 1)[0] + "=") if "=" in arg else arg
        if arg.startswith("--host="):
            arg = "--host=127.0.0.1"
        elif arg.startswith("--port="):
            arg = f"--port={port}"
        args.append(arg)
    env = {e["name"]: localised(e["value"], "") for e in container.get("env", []) if "value" in e}
    return args, env


def probe_urls(deployment: dict[str, Any], port: int) -> list[str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    probes = [container[p]["httpGet"] for p in ("startupProbe", "livenessProbe", "readinessProbe")]
    return [f"{p.get('scheme', 'HTTP').lower()}://127.0.0.1:{port}{p['path']}" for p in probes]


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


def wait_ready(
    http: requests.Session, urls: list[str], proc: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    """Until every probe answers 200; a process that exits fails at once, with its output."""

    def ready() -> bool:
        return proc.poll() is not None or all(http.get(u, timeout=2).status_code == 200 for u in urls)

    wait_until(ready, timeout=timeout, what=f"probes {urls}")
    assert proc.poll() is None, f"the process exited ({proc.returncode}):\n{log.read_text()}"


def scrape_config(monitor: dict[str, Any], target: str, release: Release, root: Path) -> dict[str, Any]:
    """The scrape job the Prometheus Operator generates for one ServiceMonitor endpoint (the target
    found through the Service replaced by the local process, Secret references resolved into ``root``)."""
    endpoint = monitor["spec"]["endpoints"][0]
    job = {
        "job_name": monitor["metadata"]["name"],
        "metrics_path": endpoint["path"],
        "honor_labels": endpoint["honorLabels"],
        "static_configs": [{"targets": [target]}],
        "scheme": endpoint.get("scheme", "http"),
    }
    if "params" in endpoint:
        job["params"] = endpoint["params"]
    if "authorization" in endpoint:
        ref = endpoint["authorization"]["credentials"]
        job["authorization"] = {
            "type": endpoint["authorization"]["type"],
            "credentials": base64.b64decode(release.secrets[ref["name"]][ref["key"]]).decode(),
        }
    if "tlsConfig" in endpoint:
        tls = endpoint["tlsConfig"]
        ref = tls["ca"]["secret"]
        ca_file = root / f"{monitor['metadata']['name']}-ca.crt"
        ca_file.write_bytes(base64.b64decode(release.secrets[ref["name"]][ref["key"]]))
        job["tls_config"] = {"ca_file": str(ca_file), "server_name": tls["serverName"]}
    return job


def service_of(url: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Service a rendered in-cluster URL names (``<service>[.<namespace>.svc]:<port>``)."""
    parsed = urlsplit(url)
    name, *domain = (parsed.hostname or "").split(".")
    assert domain in ([], [NAMESPACE, "svc"]), url
    service = one(docs, "Service", name)
    assert parsed.port == service["spec"]["ports"][0]["port"], url
    return service


def on_loopback(url: str, port: int) -> str:
    """The same URL (scheme and path) to the local process standing in for the Service."""
    return urlsplit(url)._replace(netloc=f"127.0.0.1:{port}").geturl()


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


def check_gateway(release: Release, prom: Prometheus, http: requests.Session, root: Path) -> None:
    """The rendered gateway in front of the real Prometheus: its probes answer, a tenant key of the chart's
    Secret reads its tenant's series only (as bearer or basic auth, as Grafana sends it), the chart's
    Grafana key reads every series, and no key reads nothing."""
    gateway = one(release.docs, "Deployment", f"{RELEASE}-tenantpulse-gateway")
    port = free_port()
    root.mkdir()
    args, env = command_line(gateway["spec"]["template"]["spec"], release.secrets, root, port)
    assert flag(args, "backend") == "http://prometheus-operated.monitoring.svc:9090"
    grafana_key = base64.b64decode(
        release.secrets[f"{RELEASE}-tenantpulse-keys"]["grafana-gateway-key"]
    ).decode()
    with running(replace_flag(args, "backend", prom.url), env, root) as proc:
        wait_ready(http, probe_urls(gateway, port), proc, root / "log")
        url = f"{release.scheme}://127.0.0.1:{port}/api/v1/query"

        def series(query: str, **auth: Any) -> list[dict[str, str]]:
            r = http.post(url, data={"query": query}, timeout=10, **auth)
            assert r.status_code == 200, r.text
            return [row["metric"] for row in r.json()["data"]["result"]]

        bearer = {"headers": {"Authorization": f"Bearer {T1_KEY}"}}
        assert {m["tenant"] for m in series("count by (tenant) (tenantpulse_events_total)", **bearer)} == {
            "t1"
        }
        assert series("up", **bearer) == [], "series without a tenant label are not the tenant's"
        assert series("up", auth=("grafana", T1_KEY)) == []
        assert series("up", headers={"Authorization": f"Bearer {grafana_key}"}), "the Grafana key reads all"
        refused = http.post(url, data={"query": 'up{tenant="t2"}'}, timeout=10, **bearer)
        assert refused.status_code == 403, refused.text
        assert http.post(url, data={"query": "up"}, timeout=10).status_code == 401


@pytest.mark.integration
def test_rendered_pods_run_scrape_per_tenant_and_erase(release: Release, tmp_path: Path) -> None:
    docs = release.docs
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    exporter_port, sidecar_port = free_port(), free_port()
    monitors = {m["metadata"]["name"]: m for m in of_kind(docs, "ServiceMonitor")}
    per_tenant = monitors[f"{RELEASE}-tenantpulse-exporter-t1"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump({"groups": one(docs, "PrometheusRule", f"{RELEASE}-tenantpulse")["spec"]["groups"]})
    )
    http = requests.Session()  # the test's own client trusts the chart's CA, nothing else
    http.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment would override ``verify``
    if release.scheme == "https":
        (tmp_path / "ca.crt").write_bytes(base64.b64decode(release.secrets["tp-tls"]["ca.crt"]))
        http.verify = str(tmp_path / "ca.crt")
    # The sidecar run here is the one the exporter's rendered --sidecar-url reaches (through its Service).
    (tmp_path / "exporter").mkdir()
    args, env = command_line(
        exporter["spec"]["template"]["spec"], release.secrets, tmp_path / "exporter", exporter_port
    )
    sidecar_url = flag(args, "sidecar-url")
    assert sidecar_url.startswith(f"{release.scheme}://")
    sidecar_service = service_of(sidecar_url, docs)
    (sidecar,) = [
        d for d in of_kind(docs, "Deployment") if subset(sidecar_service["spec"]["selector"], pod_labels(d))
    ]
    (tmp_path / "prometheus").mkdir()
    jobs = [
        scrape_config(per_tenant, f"127.0.0.1:{exporter_port}", release, tmp_path / "prometheus"),
        scrape_config(
            monitors[f"{RELEASE}-tenantpulse-sidecar"],
            f"127.0.0.1:{sidecar_port}",
            release,
            tmp_path / "prometheus",
        ),
    ]
    assert {j["scheme"] for j in jobs} == {release.scheme}
    with Prometheus(tmp_path / "prometheus", jobs, rule_files=[str(rules)]) as prom:
        args = replace_flag(args, "sidecar-url", on_loopback(sidecar_url, sidecar_port))
        args = replace_flag(args, "prometheus-url", prom.url)
        with running(args, env, tmp_path / "exporter") as exporter_proc:
            wait_ready(
                http, probe_urls(exporter, exporter_port), exporter_proc, tmp_path / "exporter" / "log"
            )
            base = f"{release.scheme}://127.0.0.1:{exporter_port}"
            for key, tenant in ((T1_KEY, "t1"), (ADMIN_KEY, "t2")):
                event = {"tenant_id": tenant, "user_id": "u1", "event_type": "song_play"}
                r = http.post(
                    f"{base}/analytics/metrics",
                    json=event,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=5,
                )
                assert r.status_code < 300, r.text
            denied = http.post(
                f"{base}/analytics/metrics",
                json={"tenant_id": "t2", "user_id": "u1", "event_type": "song_play"},
                headers={"Authorization": f"Bearer {T1_KEY}"},
                timeout=5,
            )
            assert denied.status_code == 403, (
                "a tenant key from the chart's Secret must not write another tenant"
            )
            # `helm test` would pass: the hook pod's command, env and CA, against the exporter's Service.
            hook_pod = one(docs, "Pod", f"{RELEASE}-tenantpulse-test-exporter")["spec"]
            (tmp_path / "hook").mkdir()
            _, hook_env = command_line(hook_pod, release.secrets, tmp_path / "hook")
            assert service_of(hook_env["TARGET"], docs) == one(
                docs, "Service", f"{RELEASE}-tenantpulse-exporter"
            )
            hook_env["TARGET"] = on_loopback(hook_env["TARGET"], exporter_port)
            hook = hook_pod["containers"][0]["command"]
            assert hook[0] == "python"  # the image's interpreter; here, the one running the tests
            helm_test = subprocess.run(
                [sys.executable, *hook[1:]], env=os.environ | hook_env, capture_output=True, timeout=30
            )
            assert helm_test.returncode == 0, helm_test.stderr
            anonymous = http.get(f"{base}/metrics", params={"tenant": "t1"}, timeout=5)
            assert anonymous.status_code == 401, "with metricsAuth, /metrics needs the scrape token"

            (tmp_path / "sidecar").mkdir()
            args, env = command_line(
                sidecar["spec"]["template"]["spec"], release.secrets, tmp_path / "sidecar", sidecar_port
            )
            assert "--shard-index=0" in args and "--shard-count=2" in args
            args = replace_flag(args, "prometheus-url", prom.url)
            with running(args, env, tmp_path / "sidecar") as sidecar_proc:
                log = tmp_path / "sidecar" / "log"
                wait_ready(http, probe_urls(sidecar, sidecar_port), sidecar_proc, log, 60)
                wait_until(prom.targets_up, what="both targets up")
                wait_until(lambda: prom.query('tenantpulse_events_total{tenant="t1"}'), what="t1 series")
                assert not prom.query('{tenant="t2"}'), (
                    "the per-tenant ServiceMonitor must carry tenant t1 only"
                )
                check_gateway(release, prom, http, tmp_path / "gateway")

                def rules_evaluated() -> bool:
                    groups = requests.get(f"{prom.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
                    states = [
                        (r["name"], r["health"], r.get("lastError")) for g in groups for r in g["rules"]
                    ]
                    bad = [s for s in states if s[1] == "err"]
                    assert not bad, bad
                    return bool(states) and all(s[1] == "ok" for s in states)

                wait_until(rules_evaluated, what="every rendered rule evaluated without error")
                sidecar_metrics = f"{release.scheme}://127.0.0.1:{sidecar_port}/metrics"
                wait_until(
                    lambda: 'tenant="t1"' in http.get(sidecar_metrics, timeout=5).text,
                    timeout=60,
                    what="the sidecar scoring t1",
                )

                # Erasure through the rendered exporter reaches the rendered sidecar and Prometheus.
                erased = http.delete(
                    f"{base}/analytics/tenants/t1",
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                    timeout=150,
                )
                assert erased.status_code == 200, erased.text
                report = erased.json()
                assert report["complete"], report
                assert report["sidecar"]["status"] == "removed", report["sidecar"]
                assert report["prometheus"]["status"] == "removed", report["prometheus"]
                assert 'tenant="t1"' not in http.get(sidecar_metrics, timeout=5).text
                assert not prom.query('{tenant="t1"}'), "Prometheus still answers with t1's samples"
            # Saved (at the erasure and on SIGTERM) encrypted with the key from the Secret: readable with
            # it, and only with it.
            state = tmp_path / "sidecar" / "state" / "state.json"
            key = parse_key(base64.b64decode(release.secrets["tp-state-key"]["state-key"]), "state-key")
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
