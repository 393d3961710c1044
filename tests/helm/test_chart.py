"""The Helm chart, rendered by the real Helm engine (helm-python-sdk) for realistic value sets.

Every rendered object is checked against the Kubernetes OpenAPI schemas (kubernetes-validate, strict)
or the Prometheus Operator CRD schemas from ../shared/crds; selectors must line up across objects;
the rules pass promtool; the schema refuses bad values with a message naming the key.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tenantpulse.exporters.settings import load_pseudonym_keys
from tenantpulse.security.keys import KeyRing, sha256_hex
from tests.support.shared import crd_dir

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "tenantpulse"
RELEASE, NAMESPACE = "pulse", "observability"
KUBE_VERSION = "1.33.0"
OLDEST_KUBE = "1.25.0"  # Chart.yaml kubeVersion
CRD_GROUP = "monitoring.coreos.com"

PLAIN_KEY = "t1-ingest-key-0123456789"
ADMIN_SHA = sha256_hex("ops-admin-key-0123456789")

SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "production": {
        "secret": {
            "apiKeys": [
                {"key": PLAIN_KEY, "tenant": "t1", "scopes": ["write", "read"]},
                {"keySha256": ADMIN_SHA, "tenant": "*", "scopes": ["admin"], "id": "ops"},
            ],
            "pseudonymisationSecret": "0123456789abcdef0123456789abcdef",
        },
        "exporter": {
            "replicas": 3,
            "autoscaling": {"enabled": True, "maxReplicas": 8},
            "redis": {
                "existingSecret": {"name": "tp-redis"},
                "cluster": True,
                "networkPolicy": {"enabled": True},
            },
            "auditLog": {"persistence": {"enabled": True, "accessModes": ["ReadWriteMany"]}},
            "erasure": {"prometheusUrl": "http://prometheus-operated.monitoring.svc:9090"},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": [{"host": "ingest.example.com", "paths": ["/analytics"]}],
                "tls": [{"secretName": "ingest-tls", "hosts": ["ingest.example.com"]}],
            },
        },
        "sidecar": {
            "shards": 3,
            "persistence": {"enabled": True, "storageClassName": "fast"},
            "stateKeySecret": {"name": "tp-state-key"},
            "orgId": "platform",
            "bearerTokenSecret": {"name": "mimir-reader"},
        },
        "otel": {"endpoint": "http://jaeger-collector.tracing.svc:4318", "samplingRatio": 0.2},
        "alertmanagerConfig": {
            "slackWebhookUrl": "https://hooks.slack.com/services/T/B/X",
            "smtpPassword": "pw",
        },
        "dashboards": {"datasources": {"enabled": True}},
        "tls": {"secretName": "tp-tls"},
        "gateway": {
            "replicas": 3,
            "networkPolicy": {
                "enabled": True,
                "extraFrom": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "thanos-query"}}}],
            },
        },
        "networkPolicy": {"gatewayFrom": [{"namespaceSelector": {"matchLabels": {"team": "grafana"}}}]},
    },
    "existing-secrets": {
        "secret": {"existingSecret": "tp-keys"},
        "alertmanagerConfig": {"existingSecret": "tp-alerting"},
        "serviceAccount": {"create": False, "name": "tp-sa"},
    },
    "per-tenant-scrape": {
        "exporter": {"metricsAuth": True},
        "serviceMonitor": {
            "allTenants": False,
            "perTenant": {"enabled": True, "tenants": ["t1", "acme.eu", "Acme.EU", "trail_"]},
        },
        "networkPolicy": {
            "exporterFrom": [{"namespaceSelector": {"matchLabels": {"tenantpulse.io/ingest": "true"}}}]
        },
    },
    "minimal": {
        "networkPolicy": {"enabled": False},
        "sidecar": {"enabled": False},
        "exporter": {"replicas": 1},
        "dashboards": {"enabled": False},
        "alertmanagerConfig": {"enabled": False},
        "gateway": {"enabled": False},
    },
    "gateway-mimir": {
        "sidecar": {"enabled": False},
        "gateway": {
            "backend": "http://mimir-query-frontend.mimir.svc:8080/prometheus",
            "backendKind": "mimir",
            "timeout": "1m",
            "networkPolicy": {
                "enabled": True,
                "prometheusNamespace": "metrics",
                "prometheusPodSelector": {"matchLabels": {"app.kubernetes.io/component": "query-frontend"}},
                "prometheusPort": 8080,
                "prometheusComponents": [],
            },
        },
        "dashboards": {"datasources": {"enabled": True, "gatewayKeyRef": "$__env{TP_GATEWAY_KEY}"}},
    },
}


# Rendered manifests are parsed with plain ``yaml.safe_load``: what PyYAML (and the tools built on it)
# refuses, such as a bare ``=`` that YAML 1.1 takes for the obsolete ``!!value`` tag, fails the tests.


@pytest.fixture(scope="module")
def chart() -> helm_python.Chart:
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


def render(chart: helm_python.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    """All objects of one release, parsed from every rendered manifest."""
    manifests = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def test_every_manifest_loads_with_safe_load(chart: helm_python.Chart) -> None:
    """Regression: the AlertmanagerConfig held a bare ``matchType: =``, which PyYAML refuses."""
    values = SCENARIOS["production"]
    manifests = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            try:
                list(yaml.safe_load_all(text))
            except yaml.YAMLError as exc:
                pytest.fail(f"{path}: {exc}")


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def subset(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against an object's labels."""
    tests = {
        "In": lambda e: labels.get(e["key"]) in e["values"],
        "NotIn": lambda e: labels.get(e["key"]) not in e["values"],
        "Exists": lambda e: e["key"] in labels,
        "DoesNotExist": lambda e: e["key"] not in labels,
    }
    return subset(selector.get("matchLabels", {}), labels) and all(
        tests[e["operator"]](e) for e in selector.get("matchExpressions", [])
    )


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, chart: helm_python.Chart) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(chart, SCENARIOS[request.param])


# --- Lint and schema validation ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_lint_is_clean(name: str) -> None:
    report = helm_python.lint(
        CHART_DIR, copy.deepcopy(SCENARIOS[name]), strict=True, kube_version=f"v{KUBE_VERSION}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, (report["errors"], problems)


@pytest.mark.parametrize("kube", [OLDEST_KUBE, KUBE_VERSION])
def test_core_objects_pass_kubernetes_strict_schemas(
    scenario: tuple[str, list[dict[str, Any]]], kube: str
) -> None:
    _, docs = scenario
    core = [d for d in docs if not d["apiVersion"].startswith(CRD_GROUP)]
    assert of_kind(core, "Deployment") and of_kind(core, "Service")
    for doc in core:
        try:
            kubernetes_validate.validate(doc, kube, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"Kubernetes {kube}: {doc['kind']} {doc['metadata']['name']}: {exc.message}")


def closed(schema: Any) -> Any:
    """The CRD schema with unknown fields refused: the API server would silently prune a misspelt field
    (so it would never take effect); here it fails the test instead."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def test_operator_objects_pass_crd_schemas(scenario: tuple[str, list[dict[str, Any]]]) -> None:
    directory = crd_dir()
    _, docs = scenario
    for doc in (d for d in docs if d["apiVersion"].startswith(CRD_GROUP)):
        version = doc["apiVersion"].split("/")[1]
        schema = json.loads((directory / f"{doc['kind']}.{CRD_GROUP}_{version}.schema.json").read_text())
        body = {k: v for k, v in doc.items() if k != "metadata"}
        errors = sorted(jsonschema.Draft202012Validator(closed(schema)).iter_errors(body), key=str)
        assert not errors, f"{doc['kind']} {doc['metadata']['name']}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
        )


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_object_names_are_valid_kubernetes_names(scenario: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = scenario
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(set(names)) == len(names), "two objects of one kind share a name"
    for kind, name in names:
        assert len(name) <= 253 and DNS_SUBDOMAIN.match(name), f"{kind} {name!r}"
        if kind == "Service":  # Service names are DNS labels
            assert len(name) <= 63 and DNS_LABEL.match(name), f"{kind} {name!r}"
    for cm in of_kind(docs, "ConfigMap"):
        assert sum(len(v.encode()) for v in cm["data"].values()) < 1024 * 1024, (
            f"{cm['metadata']['name']} over 1 MiB"
        )


def test_long_release_names_still_give_valid_names(chart: helm_python.Chart) -> None:
    release = "a-very-long-release-name-for-the-analytics-platform"  # Helm allows up to 53 characters
    manifests = chart.render({}, name=release, namespace=NAMESPACE)
    texts = [text for path, text in manifests.items() if path.endswith(".yaml")]
    docs = [d for text in texts for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        assert len(name) <= (63 if kind == "Service" else 253) and DNS_SUBDOMAIN.match(name), (
            f"{kind} {name!r}"
        )
        assert all(len(v) <= 63 for v in doc["metadata"]["labels"].values()), f"{kind} {name}: label over 63"


# --- Objects refer to each other correctly ------------------------------------------------------------


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_selectors_and_references_line_up(scenario: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = scenario
    deployments = of_kind(docs, "Deployment")
    services = of_kind(docs, "Service")
    for dep in deployments:
        assert subset(dep["spec"]["selector"]["matchLabels"], pod_labels(dep)), dep["metadata"]["name"]
    for svc in services:
        backing = [d for d in deployments if subset(svc["spec"]["selector"], pod_labels(d))]
        assert backing, f"Service {svc['metadata']['name']} selects no pods"
        for dep in backing:
            port_names = {
                p["name"] for c in dep["spec"]["template"]["spec"]["containers"] for p in c["ports"]
            }
            assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names
    for sm in of_kind(docs, "ServiceMonitor"):
        assert sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
        targets = [s for s in services if selects(sm["spec"]["selector"], s["metadata"]["labels"])]
        assert targets, f"ServiceMonitor {sm['metadata']['name']} selects no Service"
        scraped = [d for s in targets for d in deployments if subset(s["spec"]["selector"], pod_labels(d))]
        assert len(scraped) == len({d["metadata"]["name"] for d in scraped}), (
            f"ServiceMonitor {sm['metadata']['name']} would scrape a pod twice"
        )
        for svc in targets:
            assert {e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert any(subset(pdb["spec"]["selector"]["matchLabels"], pod_labels(d)) for d in deployments)
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        target = one(docs, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], "the HPA owns the replica count"
    for ingress in of_kind(docs, "Ingress"):
        for path in (p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]):
            backend = one(docs, "Service", path["backend"]["service"]["name"])
            assert path["backend"]["service"]["port"]["name"] in {p["name"] for p in backend["spec"]["ports"]}
    hooks = of_kind(docs, "Pod")
    for policy in of_kind(docs, "NetworkPolicy"):
        if policy["metadata"]["namespace"] != NAMESPACE:  # the Prometheus one: test_prometheus_policy_...
            continue
        if policy["metadata"]["name"].endswith("-redis-clients"):  # Redis's pods, not ours: test_redis_...
            continue
        assert any(subset(policy["spec"]["podSelector"]["matchLabels"], pod_labels(d)) for d in deployments)
        peers = [p for rule in policy["spec"]["ingress"] for p in rule.get("from", [])]
        if (
            peers and "exporter" in policy["metadata"]["name"]
        ):  # restricted: the helm test pod must still get in
            selectors = [p["podSelector"]["matchLabels"] for p in peers if "podSelector" in p]
            assert all(any(subset(s, h["metadata"]["labels"]) for s in selectors) for h in hooks)
    secrets = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}
    external = {"tp-state-key", "mimir-reader", "tp-tls", "tp-redis"} | (
        {"tp-keys", "tp-alerting"} if name == "existing-secrets" else set()
    )
    for dep in deployments:
        spec = dep["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] in {
            a["metadata"]["name"] for a in of_kind(docs, "ServiceAccount")
        } | {"tp-sa"}
        for volume in spec["volumes"]:
            if "secret" in volume:
                ref, keys = volume["secret"]["secretName"], [i["key"] for i in volume["secret"]["items"]]
                assert ref in external or set(keys) <= set(secrets[ref]["data"]), (ref, keys)
            if "persistentVolumeClaim" in volume:
                one(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        for env in (
            e for c in spec["containers"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})
        ):
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] in external or ref["key"] in secrets[ref["name"]]["data"], ref
    for sm in of_kind(docs, "ServiceMonitor"):
        for ref in (
            e["authorization"]["credentials"] for e in sm["spec"]["endpoints"] if "authorization" in e
        ):
            assert ref["name"] in external or ref["key"] in secrets[ref["name"]]["data"], ref
    for amc in of_kind(docs, "AlertmanagerConfig"):
        for receiver in amc["spec"]["receivers"]:
            refs = [c["apiURL"] for c in receiver.get("slackConfigs", [])]
            refs += [c["authPassword"] for c in receiver.get("emailConfigs", []) if "authPassword" in c]
            for ref in refs:
                assert ref["name"] in external or ref["key"] in secrets[ref["name"]]["data"], ref


# --- Generated assets inside the chart --------------------------------------------------------------


def test_rendered_rules_pass_promtool(chart: helm_python.Chart, tmp_path: Path) -> None:
    if not shutil.which("promtool"):
        pytest.skip("promtool not on PATH (Debian package prometheus)")
    rule = one(render(chart, {}), "PrometheusRule", f"{RELEASE}-tenantpulse")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts, "the PrometheusRule carries no alerts"
    assert all(r["labels"]["namespace"] == NAMESPACE for r in alerts), (
        "alerts must carry the release namespace"
    )


def test_rendered_dashboards_parse_with_panels(chart: helm_python.Chart) -> None:
    maps = [
        m
        for m in of_kind(render(chart, {}), "ConfigMap")
        if m["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert maps, "no dashboard ConfigMaps rendered"
    uids = set()
    for cm in maps:
        assert cm["metadata"]["annotations"]["grafana_folder"] == "tenantpulse"
        for key, text in cm["data"].items():
            dashboard = json.loads(text)
            panels = dashboard["panels"] + [p for row in dashboard["panels"] for p in row.get("panels", [])]
            assert any(p.get("targets") for p in panels), f"{key}: no panel with a query"
            uids.add(dashboard["uid"])
    assert len(uids) == len(maps), "dashboard uids must be unique"


def test_datasources_link_exemplars_to_jaeger_without_taking_the_default(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["production"])
    cm = one(docs, "ConfigMap", f"{RELEASE}-tenantpulse-datasources")
    assert cm["metadata"]["labels"]["grafana_datasource"] == "1"
    sources = yaml.safe_load(cm["data"]["tenantpulse-datasources.yaml"])["datasources"]
    assert not any(s["isDefault"] for s in sources), (
        "kube-prometheus-stack already has the default datasource"
    )
    by_type = {s["type"]: s for s in sources}
    links = by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [d["datasourceUid"] for d in links] == [by_type["jaeger"]["uid"]]
    assert not any(
        m["metadata"]["name"].endswith("-datasources") for m in of_kind(render(chart, {}), "ConfigMap")
    )


# --- Values that change what is rendered ------------------------------------------------------------


def test_api_keys_secret_holds_only_hashes_the_exporter_accepts(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    secret = one(render(chart, SCENARIOS["production"]), "Secret", f"{RELEASE}-tenantpulse-keys")
    keys_file = base64.b64decode(secret["data"]["api-keys.yaml"])
    assert PLAIN_KEY.encode() not in keys_file
    path = tmp_path / "api-keys.yaml"
    path.write_bytes(keys_file)
    ring = KeyRing.from_file(path)
    t1 = ring.authenticate(PLAIN_KEY)
    assert t1 is not None and t1.allows("t1", "write") and not t1.allows("t2", "read")
    admin = ring.authenticate("ops-admin-key-0123456789")
    assert admin is not None and admin.key_id == "ops" and admin.allows("t2", "admin")
    assert ring.authenticate("not-a-key") is None
    pseudonym_file = tmp_path / "pseudonym-keys.yaml"
    pseudonym_file.write_bytes(base64.b64decode(secret["data"]["pseudonym-keys.yaml"]))
    keys, current = load_pseudonym_keys(pseudonym_file)
    assert keys[current] == SCENARIOS["production"]["secret"]["pseudonymisationSecret"].encode()


def test_generated_pseudonymisation_secret_is_long_and_random(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    def secret() -> bytes:
        data = one(render(chart, {}), "Secret", f"{RELEASE}-tenantpulse-keys")["data"]["pseudonym-keys.yaml"]
        path = tmp_path / "pseudonym-keys.yaml"
        path.write_bytes(base64.b64decode(data))
        keys, current = load_pseudonym_keys(path)  # what the exporter reads at start
        return keys[current]

    first, second = secret(), secret()
    assert len(first) >= 32 and first != second


def args_of(deployment: dict[str, Any]) -> list[str]:
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_sidecar_shards_split_the_work(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["production"])
    shards = sorted(
        (
            d
            for d in of_kind(docs, "Deployment")
            if d["metadata"]["labels"]["app.kubernetes.io/component"] == "sidecar"
        ),
        key=lambda d: d["metadata"]["name"],
    )
    assert [d["spec"]["replicas"] for d in shards] == [1, 1, 1]
    assert [[a for a in args_of(d) if a.startswith("--shard-")] for d in shards] == [
        [f"--shard-index={i}", "--shard-count=3"] for i in range(3)
    ]
    for shard in shards:
        args = args_of(shard)
        assert {"--state-key-file=/etc/tenantpulse/state-key/state-key", "--org-id=platform"} <= set(args)
        assert "--bearer-token-file=/etc/tenantpulse/query-token/token" in args
    states = {
        d["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] for d in shards
    }
    assert len(states) == 3, "each shard needs its own state volume"
    claims = [p for p in of_kind(docs, "PersistentVolumeClaim") if p["metadata"]["name"] in states]
    assert all(p["spec"]["storageClassName"] == "fast" for p in claims)
    assert all(d["spec"]["strategy"]["type"] == "Recreate" for d in shards)


def test_sidecar_state_defaults_to_empty_dir(chart: helm_python.Chart) -> None:
    docs = render(chart, {})
    sidecar = one(docs, "Deployment", f"{RELEASE}-tenantpulse-sidecar-0")
    state = next(v for v in sidecar["spec"]["template"]["spec"]["volumes"] if v["name"] == "state")
    assert state == {"name": "state", "emptyDir": {}}
    assert not of_kind(docs, "PersistentVolumeClaim")


def test_per_tenant_service_monitors_scrape_one_tenant_each(chart: helm_python.Chart) -> None:
    monitors = of_kind(render(chart, SCENARIOS["per-tenant-scrape"]), "ServiceMonitor")
    per_tenant = {m["metadata"]["labels"].get("tenantpulse.io/tenant"): m for m in monitors}
    assert set(per_tenant) == {"t1", "acme.eu", "Acme.EU", "trail_", None}  # None: the sidecar's monitor
    assert len({m["metadata"]["name"] for m in monitors}) == len(monitors), "one name per tenant"
    for tenant in ("t1", "acme.eu", "Acme.EU", "trail_"):
        assert per_tenant[tenant]["spec"]["endpoints"][0]["params"] == {"tenant": [tenant]}
    assert not any("params" in e for e in per_tenant[None]["spec"]["endpoints"])


def test_hpa_and_pdb_follow_the_exporter_settings(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["production"])
    hpa = one(docs, "HorizontalPodAutoscaler", f"{RELEASE}-tenantpulse-exporter")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert one(docs, "PodDisruptionBudget", f"{RELEASE}-tenantpulse-exporter")["spec"]["maxUnavailable"] == 1
    autoscaled_down_to_one = {
        "exporter": {
            "autoscaling": {"enabled": True, "minReplicas": 1},
            "redis": {"url": "redis://redis:6379"},
        }
    }
    assert not of_kind(render(chart, autoscaled_down_to_one), "PodDisruptionBudget")
    single = render(chart, SCENARIOS["minimal"])
    assert not of_kind(single, "PodDisruptionBudget"), "a PDB on one pod would block node drains"
    assert not of_kind(single, "HorizontalPodAutoscaler")
    assert not of_kind(single, "NetworkPolicy")


def test_redis_reaches_every_exporter_pod_from_a_secret(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["production"])
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    container = exporter["spec"]["template"]["spec"]["containers"][0]
    assert (
        "--redis-url=$(TENANTPULSE_REDIS_URL)" in container["args"] and "--redis-cluster" in container["args"]
    )
    env = {e["name"]: e for e in container["env"]}
    assert env["TENANTPULSE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tp-redis",
        "key": "redis-url",
    }
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-tenantpulse-redis-clients")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "redis"}}
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    assert rule["from"][0]["podSelector"]["matchLabels"] == exporter["spec"]["selector"]["matchLabels"]
    plain = render(chart, {"exporter": {"replicas": 2, "redis": {"url": "rediss://:pw@redis:6380/0"}}})
    container = one(plain, "Deployment", f"{RELEASE}-tenantpulse-exporter")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert {"name": "TENANTPULSE_REDIS_URL", "value": "rediss://:pw@redis:6380/0"} in container["env"]
    assert "--redis-cluster" not in container["args"]
    single = render(chart, {})
    container = one(single, "Deployment", f"{RELEASE}-tenantpulse-exporter")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert not any("redis" in a for a in container["args"]) and not of_kind(single, "PodDisruptionBudget")


def test_otel_endpoint_reaches_both_components(chart: helm_python.Chart) -> None:
    for dep in of_kind(render(chart, SCENARIOS["production"]), "Deployment"):
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger-collector.tracing.svc:4318"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.2"
        assert env["OTEL_SERVICE_NAME"].startswith("tenantpulse-")


def test_existing_secrets_are_used_not_created(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["existing-secrets"])
    assert not of_kind(docs, "Secret")
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    volumes = exporter["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == "tp-keys" for v in volumes)
    amc = one(docs, "AlertmanagerConfig", f"{RELEASE}-tenantpulse")
    names = {c["apiURL"]["name"] for r in amc["spec"]["receivers"] for c in r.get("slackConfigs", [])}
    assert names == {"tp-alerting"}


def test_metrics_auth_gives_prometheus_a_read_key_for_every_tenant(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    docs = render(chart, SCENARIOS["per-tenant-scrape"])
    secret = one(docs, "Secret", f"{RELEASE}-tenantpulse-keys")["data"]
    path = tmp_path / "api-keys.yaml"
    path.write_bytes(base64.b64decode(secret["api-keys.yaml"]))
    scraper = KeyRing.from_file(path).authenticate(base64.b64decode(secret["metrics-token"]).decode())
    assert scraper is not None and scraper.tenant == "*" and scraper.scopes == {"read"}
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    assert "--metrics-auth=required" in args_of(exporter)
    assert "--metrics-auth=none" in args_of(
        one(render(chart, {}), "Deployment", f"{RELEASE}-tenantpulse-exporter")
    )


# --- Security wiring: audit trail, erasure, key rotation, TLS --------------------------------------------


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def flag(deployment: dict[str, Any], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args_of(deployment) if a.startswith(f"--{name}=")]
    assert len(values) <= 1, values
    return values[0] if values else None


def mount_of(deployment: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume mount holding ``path`` (the deepest one) and its volume."""
    mounts = [m for m in container(deployment)["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert mounts, f"{path} is on no volume (the root filesystem is read-only)"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    return mount, volume


def keyring_from(secret: dict[str, Any], key: str, tmp_path: Path) -> KeyRing:
    path = tmp_path / key
    path.write_bytes(base64.b64decode(secret["data"][key]))
    return KeyRing.from_file(path)


def test_audit_logs_are_written_to_writable_volumes(chart: helm_python.Chart) -> None:
    docs = render(chart, {})
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    assert container(exporter)["securityContext"]["readOnlyRootFilesystem"]
    mount, volume = mount_of(exporter, flag(exporter, "audit-log") or "")
    assert not mount.get("readOnly") and "emptyDir" in volume and "subPathExpr" not in mount
    sidecar = one(docs, "Deployment", f"{RELEASE}-tenantpulse-sidecar-0")
    audit, state = flag(sidecar, "audit-log") or "", flag(sidecar, "state-file") or ""
    assert mount_of(sidecar, audit) == mount_of(sidecar, state), (
        "the sidecar's audit log is on its state volume"
    )

    production = render(chart, SCENARIOS["production"])
    exporter = one(production, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    mount, volume = mount_of(exporter, flag(exporter, "audit-log") or "")
    claim = one(production, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # Pods sharing the claim write one chain each, in a directory named after the pod.
    assert mount["subPathExpr"] == "$(POD_NAME)"
    env = {e["name"]: e for e in container(exporter)["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}

    off = one(
        render(chart, {"exporter": {"auditLog": {"enabled": False}}}),
        "Deployment",
        exporter["metadata"]["name"],
    )
    assert flag(off, "audit-log") is None
    assert "audit" not in {v["name"] for v in off["spec"]["template"]["spec"]["volumes"]}


def test_erasure_key_is_an_admin_key_of_the_sidecar_only(chart: helm_python.Chart, tmp_path: Path) -> None:
    docs = render(chart, {})
    secret = one(docs, "Secret", f"{RELEASE}-tenantpulse-keys")
    token = base64.b64decode(secret["data"]["sidecar-admin-key"]).decode()
    assert len(token) >= 32
    on_sidecar = keyring_from(secret, "sidecar-api-keys.yaml", tmp_path).authenticate(token)
    assert on_sidecar is not None and on_sidecar.allows("any-tenant", "admin")
    assert on_sidecar.key_id == "exporter-erasure"
    assert keyring_from(secret, "api-keys.yaml", tmp_path).authenticate(token) is None, (
        "the erasure key must grant nothing on the exporter"
    )
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    sidecar = one(docs, "Deployment", f"{RELEASE}-tenantpulse-sidecar-0")
    key_file = flag(exporter, "sidecar-key-file") or ""
    mount, volume = mount_of(exporter, key_file)
    assert {"key": "sidecar-admin-key", "path": key_file.rsplit("/", 1)[1]} in volume["secret"]["items"]
    _, sidecar_keys = mount_of(sidecar, flag(sidecar, "api-keys") or "")
    assert {"key": "sidecar-api-keys.yaml", "path": "api-keys.yaml"} in sidecar_keys["secret"]["items"]
    # The URL names the sidecar's Service, which selects the sidecar's pod; its NetworkPolicy lets the exporter in.
    url = flag(exporter, "sidecar-url") or ""
    assert url == f"http://{RELEASE}-tenantpulse-sidecar.{NAMESPACE}.svc:9108"
    service = one(docs, "Service", f"{RELEASE}-tenantpulse-sidecar")
    assert subset(service["spec"]["selector"], pod_labels(sidecar))
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-tenantpulse-sidecar")
    peers = [
        p["podSelector"]["matchLabels"]
        for r in policy["spec"]["ingress"]
        for p in r["from"]
        if "podSelector" in p
    ]
    assert any(subset(s, pod_labels(exporter)) for s in peers)
    assert flag(exporter, "prometheus-url") is None, "Prometheus erasure needs its admin API: opt-in"


def test_erasure_with_shards_reaches_shard_zero_and_prometheus(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["production"])
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    assert flag(exporter, "prometheus-url") == "http://prometheus-operated.monitoring.svc:9090"
    url = flag(exporter, "sidecar-url") or ""
    service = one(docs, "Service", url.split("://")[1].split(".")[0])
    backing = [d for d in of_kind(docs, "Deployment") if subset(service["spec"]["selector"], pod_labels(d))]
    assert [d["metadata"]["name"] for d in backing] == [f"{RELEASE}-tenantpulse-sidecar-0"]
    assert "--shard-index=0" in args_of(backing[0])


def test_erasure_off_or_with_an_existing_secret(chart: helm_python.Chart) -> None:
    docs = render(chart, {"exporter": {"erasure": {"sidecar": False}}})
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    assert flag(exporter, "sidecar-url") is None and flag(exporter, "sidecar-key-file") is None
    assert "sidecar-admin-key" not in one(docs, "Secret", f"{RELEASE}-tenantpulse-keys")["data"]
    sidecar = one(docs, "Deployment", f"{RELEASE}-tenantpulse-sidecar-0")
    _, keys = mount_of(sidecar, flag(sidecar, "api-keys") or "")
    assert [i["key"] for i in keys["secret"]["items"]] == ["api-keys.yaml"]
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-tenantpulse-sidecar")
    assert not any("podSelector" in p for r in policy["spec"]["ingress"] for p in r["from"])

    existing = render(chart, SCENARIOS["existing-secrets"])
    exporter = one(existing, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    _, volume = mount_of(exporter, flag(exporter, "sidecar-key-file") or "")
    assert volume["secret"]["secretName"] == "tp-keys"
    sidecar = one(existing, "Deployment", f"{RELEASE}-tenantpulse-sidecar-0")
    _, keys = mount_of(sidecar, flag(sidecar, "api-keys") or "")
    assert [i["key"] for i in keys["secret"]["items"]] == ["api-keys.yaml"]  # holds the erasure key's hash


def test_changed_keys_roll_the_pods_that_read_them(chart: helm_python.Chart) -> None:
    def checksums(values: dict[str, Any]) -> dict[str, str]:
        """Component -> the pod template's checksum/keys (the same on every shard)."""
        found = {
            (d["metadata"]["labels"]["app.kubernetes.io/component"], pod_annotations["checksum/keys"])
            for d in of_kind(render(chart, values), "Deployment")
            for pod_annotations in [d["spec"]["template"]["metadata"]["annotations"]]
        }
        assert len(found) == len(dict(found)), found
        return dict(found)

    before = checksums(SCENARIOS["production"])
    assert set(before) == {"exporter", "sidecar", "gateway"}
    assert before == checksums(SCENARIOS["production"]), (
        "an unchanged release must not roll (generated secrets are read back, not part of the checksum)"
    )
    rotated = copy.deepcopy(SCENARIOS["production"])
    rotated["secret"]["apiKeys"][0]["key"] = "t1-ingest-key-rotated-2026"
    after = checksums(rotated)
    assert all(after[c] != before[c] for c in before)
    # What only the exporter reads rolls only the exporter (a sidecar on an emptyDir would relearn).
    scrape_token = checksums({"exporter": {"metricsAuth": True}})
    assert scrape_token["exporter"] != checksums({})["exporter"]
    assert scrape_token["sidecar"] == checksums({})["sidecar"]
    assert scrape_token["gateway"] == checksums({})["gateway"], "the scrape token is no key of the gateway"


def test_tls_switches_servers_probes_and_scrapes_to_https(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["production"])
    for dep in of_kind(docs, "Deployment"):
        for name, key in (("tls-cert", "tls.crt"), ("tls-key", "tls.key")):
            path = flag(dep, name) or ""
            _, volume = mount_of(dep, path)
            assert volume["secret"]["secretName"] == "tp-tls"
            assert {"key": key, "path": path.rsplit("/", 1)[1]} in volume["secret"]["items"]
        probes = [container(dep)[p]["httpGet"] for p in ("startupProbe", "livenessProbe", "readinessProbe")]
        assert {p["scheme"] for p in probes} == {"HTTPS"}
    exporter = one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter")
    assert (flag(exporter, "sidecar-url") or "").startswith("https://")
    bundle = {e["name"]: e.get("value") for e in container(exporter)["env"]}["REQUESTS_CA_BUNDLE"]
    _, volume = mount_of(exporter, bundle)
    assert {"key": "ca.crt", "path": "ca.crt"} in volume["secret"]["items"]
    services = of_kind(docs, "Service")
    for sm in of_kind(docs, "ServiceMonitor"):
        (service,) = [s for s in services if selects(sm["spec"]["selector"], s["metadata"]["labels"])]
        for endpoint in sm["spec"]["endpoints"]:
            assert endpoint["scheme"] == "https"
            assert endpoint["tlsConfig"]["serverName"] == f"{service['metadata']['name']}.{NAMESPACE}.svc"
            assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": "tp-tls", "key": "ca.crt"}}
    hook = one(docs, "Pod", f"{RELEASE}-tenantpulse-test-exporter")["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in hook["env"]}
    assert env["TARGET"] == f"https://{RELEASE}-tenantpulse-exporter.{NAMESPACE}.svc:8080/readyz"
    assert env["SSL_CERT_FILE"].startswith(hook["volumeMounts"][0]["mountPath"] + "/")

    plain = render(chart, {})
    assert all(
        container(d)["readinessProbe"]["httpGet"]["scheme"] == "HTTP" and flag(d, "tls-cert") is None
        for d in of_kind(plain, "Deployment")
    )
    assert not any("scheme" in e for sm in of_kind(plain, "ServiceMonitor") for e in sm["spec"]["endpoints"])


# --- Bad values are refused by the schema -------------------------------------------------------------

BAD_VALUES = [
    ({"exporter": {"replicas": -1}}, "replicas"),
    ({"sidecar": {"shards": 0}}, "shards"),
    ({"exporter": {"pdb": {"maxUnavailable": 0}}}, "maxUnavailable"),
    ({"exporter": {"replicaCount": 2}}, "replicaCount"),
    ({"sidcar": {"shards": 2}}, "sidcar"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"exporter": {"service": {"type": "Ingress", "port": 80}}}, "type"),
    ({"secret": {"apiKeys": [{"key": "short", "tenant": "t1", "scopes": ["write"]}]}}, "key"),
    ({"secret": {"apiKeys": [{"keySha256": "abc", "tenant": "t1", "scopes": ["write"]}]}}, "keySha256"),
    ({"secret": {"apiKeys": [{"key": PLAIN_KEY, "tenant": "t1", "scopes": ["root"]}]}}, "scopes"),
    ({"serviceMonitor": {"perTenant": {"tenants": ["bad tenant"]}}}, "tenants"),
    ({"serviceMonitor": {"interval": "fast"}}, "interval"),
    ({"exporter": {"erasure": {"prometheusUrl": "prometheus:9090"}}}, "prometheusUrl"),
    ({"exporter": {"auditLog": {"persistence": {"size": "lots"}}}}, "size"),
    ({"exporter": {"auditLog": {"path": "/tmp/a"}}}, "path"),
    ({"tls": {"secret": "tp-tls"}}, "secret"),
    ({"gateway": {"backendKind": "thanos"}}, "backendKind"),
    ({"gateway": {"backend": "prometheus:9090"}}, "backend"),
    ({"gateway": {"maxConcurrentPerTenant": 0}}, "maxConcurrentPerTenant"),
    ({"gateway": {"networkPolicy": {"prometheusNamespace": "Monitoring"}}}, "prometheusNamespace"),
    ({"dashboards": {"datasources": {"gatewayKeyRef": "a-plain-key-0123456789"}}}, "gatewayKeyRef"),
    ({"exporter": {"replicas": 2}}, "/exporter/replicas"),  # several pods need Redis
    ({"exporter": {"autoscaling": {"enabled": True}}}, "/exporter/autoscaling/enabled"),
    ({"exporter": {"replicas": 2, "redis": {"url": "http://redis:6379"}}}, "/exporter/redis/url"),
]


@pytest.mark.parametrize(("values", "key"), BAD_VALUES, ids=[k for _, k in BAD_VALUES])
def test_schema_refuses_bad_values_naming_the_key(
    chart: helm_python.Chart, values: dict[str, Any], key: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        chart.validate_schema(chart.merge_values(values))
    assert key in str(refused.value)
    with pytest.raises(helm_python.HelmError) as render_refused:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert key in str(render_refused.value)


def test_ingress_needs_a_host(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError, match="exporter.ingress.hosts"):
        chart.render({"exporter": {"ingress": {"enabled": True}}}, name=RELEASE)


def test_hpa_bounds_are_checked(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError, match="minReplicas must not exceed"):
        chart.render(
            {
                "exporter": {
                    "autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2},
                    "redis": {"url": "redis://redis:6379"},
                }
            },
            name=RELEASE,
        )


# --- The gateway ----------------------------------------------------------------------------------------

GATEWAY = f"{RELEASE}-tenantpulse-gateway"


def namespace_labels(namespace: str) -> dict[str, str]:
    """The label Kubernetes puts on every namespace, which the policies select namespaces by."""
    return {"kubernetes.io/metadata.name": namespace}


def admits(policy: dict[str, Any], labels: dict[str, str], namespace: str, port: int) -> bool:
    """Whether an ingress NetworkPolicy lets a pod (labels, namespace) in on ``port`` (numeric ports)."""

    def peer_admits(peer: dict[str, Any]) -> bool:
        if "ipBlock" in peer:
            return False
        if "namespaceSelector" in peer:
            in_namespace = selects(peer["namespaceSelector"], namespace_labels(namespace))
        else:
            in_namespace = namespace == policy["metadata"]["namespace"]
        return in_namespace and selects(peer.get("podSelector", {}), labels)

    def port_matches(p: dict[str, Any]) -> bool:
        return p["port"] <= port <= p.get("endPort", p["port"])

    return any(
        any(port_matches(p) for p in rule.get("ports", [{"port": 1, "endPort": 65535}]))
        and ("from" not in rule or any(peer_admits(peer) for peer in rule["from"]))
        for rule in policy["spec"]["ingress"]
    )


def test_gateway_runs_like_the_other_components(chart: helm_python.Chart) -> None:
    docs = render(chart, {})
    gateway = one(docs, "Deployment", GATEWAY)
    spec = gateway["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] and spec["automountServiceAccountToken"] is False
    box = container(gateway)
    assert box["securityContext"]["readOnlyRootFilesystem"] and box["securityContext"]["capabilities"] == {
        "drop": ["ALL"]
    }
    assert box["resources"]["requests"] and box["resources"]["limits"]["memory"]
    assert box["image"] == container(one(docs, "Deployment", f"{RELEASE}-tenantpulse-exporter"))["image"]
    assert {
        container(gateway)[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")
    } == {"/healthz"}
    assert args_of(gateway)[0] == "gateway" and gateway["spec"]["replicas"] == 2
    assert flag(gateway, "backend") == "http://prometheus-operated.monitoring.svc:9090"
    assert flag(gateway, "backend-kind") == "prometheus"
    _, keys = mount_of(gateway, flag(gateway, "keys") or "")
    assert keys["secret"]["secretName"] == f"{RELEASE}-tenantpulse-keys"
    service = one(docs, "Service", GATEWAY)
    assert [p["port"] for p in service["spec"]["ports"]] == [9110]
    assert subset(service["spec"]["selector"], pod_labels(gateway))
    backing = [d for d in of_kind(docs, "Deployment") if subset(service["spec"]["selector"], pod_labels(d))]
    assert backing == [gateway], "the gateway's Service selects the gateway's pods only"
    monitor = one(docs, "ServiceMonitor", GATEWAY)
    assert selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    mimir = one(render(chart, SCENARIOS["gateway-mimir"]), "Deployment", GATEWAY)
    assert flag(mimir, "backend-kind") == "mimir" and flag(mimir, "timeout") == "1m"
    assert flag(mimir, "backend") == "http://mimir-query-frontend.mimir.svc:8080/prometheus"
    off = render(chart, SCENARIOS["minimal"])
    assert not [d for d in off if d["metadata"]["name"].startswith(GATEWAY)]
    assert "grafana-gateway-key" not in one(off, "Secret", f"{RELEASE}-tenantpulse-keys")["data"]


def test_gateway_keys_hold_the_tenants_and_a_grafana_key_of_the_gateway_only(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    docs = render(chart, SCENARIOS["production"])
    secret = one(docs, "Secret", f"{RELEASE}-tenantpulse-keys")
    gateway = keyring_from(secret, "gateway-api-keys.yaml", tmp_path)
    t1 = gateway.authenticate(PLAIN_KEY)
    assert t1 is not None and t1.tenant == "t1" and t1.allows("t1", "read") and not t1.allows("t2", "read")
    grafana_key = base64.b64decode(secret["data"]["grafana-gateway-key"]).decode()
    assert len(grafana_key) >= 32
    grafana = gateway.authenticate(grafana_key)
    assert grafana is not None and grafana.tenant == "*" and grafana.scopes == {"read"}
    assert grafana.key_id == "grafana-operators"
    assert keyring_from(secret, "api-keys.yaml", tmp_path).authenticate(grafana_key) is None, (
        "the Grafana key must grant nothing on the exporter"
    )
    assert gateway.authenticate(base64.b64decode(secret["data"]["sidecar-admin-key"]).decode()) is None
    _, volume = mount_of(one(docs, "Deployment", GATEWAY), "/etc/tenantpulse/keys/api-keys.yaml")
    assert volume["secret"]["items"] == [{"key": "gateway-api-keys.yaml", "path": "api-keys.yaml"}]
    existing = one(render(chart, SCENARIOS["existing-secrets"]), "Deployment", GATEWAY)
    _, volume = mount_of(existing, "/etc/tenantpulse/keys/api-keys.yaml")
    assert volume["secret"] == {
        "secretName": "tp-keys",
        "items": [{"key": "api-keys.yaml", "path": "api-keys.yaml"}],
    }


def test_grafana_datasource_reads_through_the_gateway_with_a_key_reference(chart: helm_python.Chart) -> None:
    for scenario, reference in (
        ("production", "$__file{/etc/secrets/tenantpulse-gateway/grafana-key}"),
        ("gateway-mimir", "$__env{TP_GATEWAY_KEY}"),
    ):
        docs = render(chart, SCENARIOS[scenario])
        cm = one(docs, "ConfigMap", f"{RELEASE}-tenantpulse-datasources")
        sources = {
            d["type"]: d for d in yaml.safe_load(cm["data"]["tenantpulse-datasources.yaml"])["datasources"]
        }
        prometheus = sources["prometheus"]
        scheme = "https" if scenario == "production" else "http"
        assert prometheus["url"] == f"{scheme}://{GATEWAY}.{NAMESPACE}.svc:9110"
        assert prometheus["basicAuth"] is True
        assert prometheus["secureJsonData"] == {"basicAuthPassword": reference}
        assert sources["jaeger"]["url"].startswith("http://jaeger-query")
    secret = one(render(chart, SCENARIOS["production"]), "Secret", f"{RELEASE}-tenantpulse-keys")
    key = base64.b64decode(secret["data"]["grafana-gateway-key"]).decode()
    assert key not in json.dumps(cm), "the ConfigMap holds a reference, never the key"
    direct = render(chart, {"gateway": {"enabled": False}, "dashboards": {"datasources": {"enabled": True}}})
    cm = one(direct, "ConfigMap", f"{RELEASE}-tenantpulse-datasources")
    (prometheus,) = [
        d
        for d in yaml.safe_load(cm["data"]["tenantpulse-datasources.yaml"])["datasources"]
        if d["type"] == "prometheus"
    ]
    assert prometheus["url"] == "http://prometheus-operated.monitoring:9090" and "basicAuth" not in prometheus


def test_gateway_policy_admits_the_monitoring_namespace_and_the_peers_given(chart: helm_python.Chart) -> None:
    docs = render(chart, SCENARIOS["production"])
    policy = one(docs, "NetworkPolicy", GATEWAY)
    gateway = one(docs, "Deployment", GATEWAY)
    assert policy["metadata"]["namespace"] == NAMESPACE
    assert selects(policy["spec"]["podSelector"], pod_labels(gateway))
    peers = policy["spec"]["ingress"][0]["from"]
    assert [p["namespaceSelector"] for p in peers] == [
        {"matchLabels": namespace_labels("monitoring")},
        {"matchLabels": {"team": "grafana"}},
    ]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_prometheus_policy_lets_only_the_gateway_and_prometheus_readers_query(
    chart: helm_python.Chart,
) -> None:
    docs = render(chart, SCENARIOS["production"])
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-tenantpulse-prometheus")
    assert policy["metadata"]["namespace"] == "monitoring", "a policy selects pods of its own namespace"
    prometheus_pod = {
        "app.kubernetes.io/name": "prometheus",
        "prometheus": "kube-prometheus-stack-prometheus",
    }
    assert selects(policy["spec"]["podSelector"], prometheus_pod)
    assert not selects(policy["spec"]["podSelector"], {"app.kubernetes.io/name": "grafana"})
    ours = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: pod_labels(d)
        for d in of_kind(docs, "Deployment")
    }
    readers = [
        (ours["gateway"], NAMESPACE),
        (ours["sidecar"], NAMESPACE),  # the sidecar reads Prometheus directly
        (ours["exporter"], NAMESPACE),  # erasure through the admin API
        (prometheus_pod, "monitoring"),
        ({"app.kubernetes.io/name": "alertmanager", "alertmanager": "main"}, "monitoring"),
        ({"app": "kube-prometheus-stack-operator", "release": "kube-prometheus-stack"}, "monitoring"),
        ({"app.kubernetes.io/name": "thanos-query"}, "monitoring"),  # gateway.networkPolicy.extraFrom
    ]
    for labels, namespace in readers:
        assert admits(policy, labels, namespace, 9090), (labels, namespace)
    grafana = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"}
    outsiders = [
        (grafana, "monitoring"),
        (grafana, NAMESPACE),
        (ours["gateway"], "other-namespace"),  # the same labels elsewhere are not this release's gateway
        ({"app.kubernetes.io/name": "alertmanager"}, NAMESPACE),
    ]
    for labels, namespace in outsiders:
        assert not admits(policy, labels, namespace, 9090), (labels, namespace)
    # Every other port stays as open as before (Thanos sidecar gRPC, config-reloader metrics, ...).
    assert all(admits(policy, grafana, "monitoring", port) for port in (1, 8080, 9089, 9091, 10901, 65535))

    moved = one(
        render(chart, SCENARIOS["gateway-mimir"]), "NetworkPolicy", f"{RELEASE}-tenantpulse-prometheus"
    )
    assert moved["metadata"]["namespace"] == "metrics"
    assert selects(moved["spec"]["podSelector"], {"app.kubernetes.io/component": "query-frontend"})
    assert not admits(moved, grafana, "monitoring", 8080) and admits(moved, grafana, "monitoring", 9090)
    assert not [p for p in moved["spec"]["ingress"][0]["from"] if "sidecar" in json.dumps(p)], (
        "no sidecar in this release"
    )
    assert not of_kind(render(chart, {}), "NetworkPolicy") or not any(
        p["metadata"]["name"].endswith("-prometheus") for p in of_kind(render(chart, {}), "NetworkPolicy")
    ), "off by default: it changes another namespace"


def test_alerts_and_slos_can_be_disabled_by_name(chart: helm_python.Chart) -> None:
    """A disabled SLO loses its recording rules and alerts; a disabled alert goes; the others stay."""

    def rules(values: dict[str, object]) -> list[dict[str, object]]:
        doc = one(render(chart, {"prometheusRule": values}), "PrometheusRule", f"{RELEASE}-tenantpulse")
        return [r for g in doc["spec"]["groups"] for r in g["rules"]]

    every = rules({})
    names = {r.get("alert") for r in every}
    assert {"PlaysAnomaly", "FastEventsErrorBudgetBurn", "EventSuccessErrorBudgetBurn"} <= names
    fewer = rules({"disabledAlerts": ["PlaysAnomaly"], "disabledSlos": ["fast_events"]})
    left = {r.get("alert") for r in fewer}
    assert "PlaysAnomaly" not in left and not {"FastEventsErrorBudgetBurn", "FastEventsSLINoData"} & left
    assert "fast_events" not in str(fewer)  # its recording rules went too
    assert left == names - {"PlaysAnomaly", "FastEventsErrorBudgetBurn", "FastEventsSLINoData"}
