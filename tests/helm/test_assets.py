"""The chart's generated files stay in step with the code; the AlertmanagerConfig conversion; the image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tenantpulse import chart_assets
from tenantpulse.alert_rules import alertmanager, operator, spec
from tenantpulse.cli import main

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "helm" / "tenantpulse" / "files"


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tenantpulse generate chart` runs from the repository root (its defaults are relative to it)."""
    monkeypatch.chdir(REPO)


# --- Drift: the committed copy is what the code generates now ---------------------------------------


def test_chart_files_are_up_to_date(in_repo: None) -> None:
    outdated = chart_assets.stale(chart_assets.build(), FILES)
    assert not outdated, (
        f"stale chart files {outdated}: run `tenantpulse generate chart` (or `make chart-assets`)"
    )


def test_check_flag_reports_stale_files_and_write_refreshes_them(
    in_repo: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "files"
    shutil.copytree(FILES, out)
    (out / chart_assets.RULES_FILE).write_text("groups: []\n")
    (out / "dashboards" / "dropped-from-the-spec.json").write_text("{}")
    assert main(["generate", "chart", "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert (
        chart_assets.RULES_FILE in err
        and "dropped-from-the-spec.json" in err
        and "tenantpulse generate chart" in err
    )
    assert main(["generate", "chart", "--out", str(out)]) == 0
    assert not (out / "dashboards" / "dropped-from-the-spec.json").exists()
    assert main(["generate", "chart", "--out", str(out), "--check"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alerts-spec", "no/such/alerts.yaml"], "no/such/alerts.yaml"),
        (["--out", "no/such/dir"], "--out no/such/dir"),
    ],
)
def test_bad_arguments_are_a_message_and_exit_2(
    in_repo: None, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "chart", *argv]) == 2
    assert message in capsys.readouterr().err


# --- AlertmanagerConfig conversion -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', ("severity", "critical", "=")),
        ('tenantpulse_channels=~"(.*,)?slack(,.*)?"', ("tenantpulse_channels", "(.*,)?slack(,.*)?", "=~")),
        ("tenant != acme", ("tenant", "acme", "!=")),
        (r'summary!~"say \"hi\""', ("summary", 'say "hi"', "!~")),
    ],
)
def test_matchers_become_structured(text: str, expected: tuple[str, str, str]) -> None:
    found = operator.matcher(text)
    assert (found["name"], found["value"], found.get("matchType", "=")) == expected


def test_unsupported_settings_are_refused_by_name() -> None:
    native = {"route": {"receiver": "r"}, "receivers": [{"name": "r", "pagerduty_configs": [{}]}]}
    with pytest.raises(operator.ConversionError, match="pagerduty_configs"):
        operator.spec(native)
    with pytest.raises(operator.ConversionError, match="templates"):
        operator.spec({**native, "receivers": [{"name": "r"}], "templates": ["x.tmpl"]})


def test_templates_are_inlined_with_their_trim_markers() -> None:
    text = '{{ define "a" -}}\n  A{{ range .Alerts }}{{ .Labels.tenant }}{{ end }}\n{{- end }}\n{{ define "b" }}[{{ template "a" . }}]{{ end }}'
    assert operator.template_defines(text) == {
        "a": "A{{ range .Alerts }}{{ .Labels.tenant }}{{ end }}",
        "b": '[{{ template "a" . }}]',
    }
    native = {
        "templates": ["t.tmpl"],
        "receivers": [{"name": "r", "slack_configs": [{"text": '{{ template "b" . }}'}]}],
    }
    inlined = operator.inline_templates(native, text)
    assert inlined == {
        "receivers": [
            {"name": "r", "slack_configs": [{"text": "[A{{ range .Alerts }}{{ .Labels.tenant }}{{ end }}]"}]}
        ]
    }
    with pytest.raises(operator.ConversionError, match="'missing'"):
        operator.inline_templates({"x": '{{ template "missing" . }}'}, text)


def test_generated_config_carries_every_template_body_and_no_secret() -> None:
    parsed = spec.load_spec(REPO / "examples" / "alerts.yaml")
    text = alertmanager.template_source().read_text()
    amc = operator.alertmanager_config(parsed, name="tp")
    assert (amc["apiVersion"], amc["kind"], amc["metadata"]) == (
        operator.API_VERSION,
        operator.KIND,
        {"name": "tp"},
    )
    converted = json.dumps(amc["spec"], ensure_ascii=False)
    assert "{{ template" not in converted
    for name, body in operator.template_defines(text).items():
        assert json.dumps(body, ensure_ascii=False)[1:-1] in converted, f"template {name} not inlined"
    assert parsed.slack is not None and parsed.slack.api_url_file not in converted
    assert parsed.email is not None and parsed.email.auth_password_file not in converted


# --- The image the chart runs -----------------------------------------------------------------------


def test_dockerfile_matches_the_package_and_the_chart() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    values = yaml.safe_load((REPO / "helm" / "tenantpulse" / "values.yaml").read_text())
    # The package folder, and the component folders linked into it (tenantpulse/exporters -> ../exporters).
    links = [p for p in (REPO / "tenantpulse").iterdir() if p.is_symlink()]
    packages = {"tenantpulse"} | {p.resolve().relative_to(REPO).as_posix() for p in links}
    assert links, "no component folders linked into tenantpulse/"
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    assert copied == packages, "the image must contain exactly the packages pyproject.toml installs"
    reincluded = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert packages | {"pyproject.toml", "README.md"} <= reincluded
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert user, "USER must be numeric, or the kubelet cannot check runAsNonRoot"
    pod = values["podSecurityContext"]
    assert (int(user.group(1)), int(user.group(2))) == (pod["runAsUser"], pod["runAsGroup"])
    assert re.search(r'^ENTRYPOINT \["tenantpulse"\]$', dockerfile, re.M)


@pytest.mark.parametrize(("extras", "installed"), [("", "."), ("jaeger", ".[jaeger]")])
def test_dockerfile_extras_build_arg_selects_what_pip_installs(extras: str, installed: str) -> None:
    """``--build-arg EXTRAS=jaeger`` is how an image gets the Jaeger Thrift exporter (docs/tracing.md)."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r'^ARG EXTRAS=""$', dockerfile, re.M)
    (install,) = re.findall(r"^RUN (pip install .*?) &&", dockerfile, re.M)
    echoed = (
        subprocess.run(  # the RUN line through a POSIX sh, as the build runs it, with pip swapped for echo
            ["sh", "-c", install.replace("pip install", "echo", 1)],
            env={"EXTRAS": extras, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
    )
    assert echoed.stdout.strip() == installed
    extras_declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(filter(None, extras.split(","))) <= set(extras_declared)
