"""``tenantpulse backtest``: the command line of anomaly_sidecar/backtest.py, which loads numpy and the
detector only when the command runs (not for ``--help``)."""

from __future__ import annotations

import argparse

from tenantpulse.anomaly_sidecar.defaults import DEFAULT_WARMUP
from tenantpulse.conventions.sensitivity import SENSITIVITY


def _run(args: argparse.Namespace) -> int:
    from tenantpulse.anomaly_sidecar.backtest import run

    return run(args)


def _warmup(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of samples: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def register(root: argparse._SubParsersAction, generate: argparse._SubParsersAction) -> None:
    p = root.add_parser(
        "backtest",
        help="score a timestamp,value CSV offline with the sidecar's online detector",
        description="Reads timestamp,value rows; writes timestamp,value,anomaly_score, each score "
        "computed from that row and the rows before it only.",
    )
    p.add_argument("--input", required=True, help="CSV with header timestamp,value")
    p.add_argument("--output", required=True, help="CSV to write (timestamp,value,anomaly_score)")
    p.add_argument(
        "--sensitivity",
        choices=list(SENSITIVITY),
        default="medium",
        help="alarm threshold preset on the score",
    )
    p.add_argument("--warmup", type=_warmup, default=DEFAULT_WARMUP, help="samples before alarms")
    p.set_defaults(func=_run)
