"""``tenantpulse --help`` and every subcommand's ``--help`` load only the command line: none of the
libraries the commands run on (scipy, numpy, FastAPI, uvicorn, OpenTelemetry, ...). Checked in a fresh
interpreter, on the set of modules imported, not on time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tenantpulse.cli import build_parser
from tests.test_cli_help import parsers

ROOT = Path(__file__).resolve().parents[1]
# What a --help must not load: each costs tens to hundreds of ms (scipy.stats alone 0.4-0.7 s).
HEAVY = {
    "scipy", "numpy", "fastapi", "starlette", "uvicorn", "pydantic", "opentelemetry", "structlog",
    "requests", "redis", "grafanalib", "cryptography", "prometheus_client",
}  # fmt: skip

PROBE = """
import contextlib, io, json, sys
from tenantpulse.cli import main
codes = {}
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main([*argv, "--help"])
        except SystemExit as exc:
            codes[" ".join(argv)] = [exc.code, "usage:" in out.getvalue()]
print(json.dumps({"codes": codes, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_help_of_every_command_loads_no_heavy_library() -> None:
    commands = [path.split()[1:] for path, _ in parsers(build_parser())]
    assert len(commands) > 20 and [] in commands and ["sidecar"] in commands and ["backtest"] in commands
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)],
        capture_output=True, text=True, check=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    found = json.loads(run.stdout)
    assert found["codes"] == {" ".join(argv): [0, True] for argv in commands}  # each printed its help
    assert "tenantpulse" in found["modules"]
    assert HEAVY & set(found["modules"]) == set()
