"""``tenantpulse demo``: the command. The stack (``tenantpulse.demo.stack``) is imported only when the
demo runs, so ``tenantpulse --help`` neither pays for it nor needs the ``demo`` extra."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from tenantpulse.exporters.misbehaviours import MISBEHAVIOURS
from tenantpulse.kernel.errors import UsageError

EXTRA_MODULES = ("aiosmtpd",)  # what `pip install 'tenantpulse[demo]'` brings


def run(args: argparse.Namespace) -> int:
    missing = [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the demo needs {', '.join(missing)}: pip install 'tenantpulse[demo]' (make demo does)"
        )
    from tenantpulse.demo.stack import run as run_stack

    return run_stack(args)


def register(root: Any, generate: Any) -> None:
    p = root.add_parser(
        "demo",
        help="run the local stack: exporter, traffic for 3 tenants, Prometheus, Alertmanager, anomaly sidecar",
        description="Start the exporter, a traffic generator for three tenants, a real Prometheus scraping it "
        "with the generated alert rules, a real Alertmanager delivering to local Slack/SMTP sinks, and the "
        "anomaly sidecar, which injects an error spike into one tenant once its models are warm; print where "
        "to look; stop everything on Ctrl-C or after --duration. A rerun resumes the sidecar's models "
        "(the spike then comes at once); --fresh starts over.",
    )
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    p.add_argument("--workdir", default=".demo", help="keys, configs, Prometheus data and logs go here")
    p.add_argument("--exporter-port", type=int, default=9464, help="exporter port (0: any free port)")
    p.add_argument("--prometheus-port", type=int, default=9090, help="Prometheus port (0: any free port)")
    p.add_argument(
        "--scrape-interval", default="1s", help="Prometheus scrape/evaluation and sidecar cycle interval"
    )
    p.add_argument("--day-seconds", type=float, default=600.0, help="length of one synthetic traffic 'day'")
    p.add_argument(
        "--misbehave",
        metavar="TENANT:MODE",
        help=f"make a tenant misbehave from the start ({', '.join(MISBEHAVIOURS)}); no spike is injected then",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="first remove what earlier runs saved in --workdir (the sidecar's models, Prometheus's and "
        "Alertmanager's data), so the models warm up again",
    )
    p.set_defaults(func=run)
