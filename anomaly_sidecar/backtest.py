"""``tenantpulse backtest``: score an exported series offline, exactly as the sidecar would online.

Rows are fed to a ``DetectorBank`` one at a time in file order, so row i's score uses rows 0..i only.
Several series can be scored together (``score_many``): they share one bank and one vectorised pass.
Real exports are not always in clock order (a daylight-saving step back, a repeated scrape): rows are
scored in file order all the same, and the command warns with the count.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tenantpulse.anomaly_sidecar.detector import DEFAULT_WARMUP, DetectorBank, Params
from tenantpulse.conventions.sensitivity import SENSITIVITY
from tenantpulse.kernel.errors import UsageError


@dataclass(frozen=True)
class Series:
    """A ``timestamp,value`` file: the timestamps as written, in seconds, and the values (NaN = empty)."""

    stamps: list[str]
    t: np.ndarray
    x: np.ndarray
    back: int = 0  # rows whose timestamp is earlier than the row before (the clock stepped back)
    repeated: int = 0  # rows whose timestamp equals the row before


def parse_time(text: str) -> float:
    """Unix seconds from ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) or a number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def read_series(path: str | Path) -> Series:
    """Read a NAB-style CSV; raises UsageError naming the file, row and problem."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: not a CSV text file ({exc})") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["timestamp", "value"]:
        raise UsageError(f"{path}: first row must be the header 'timestamp,value'")
    stamps: list[str] = []
    back = repeated = 0
    t: list[float] = []
    x: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2:
            raise UsageError(f"{path}:{line}: expected 'timestamp,value', got {','.join(row)!r}")
        try:
            seconds = parse_time(row[0])
        except ValueError:
            raise UsageError(
                f"{path}:{line}: bad timestamp {row[0]!r} (use 'YYYY-MM-DD HH:MM:SS' or unix seconds)"
            ) from None
        try:
            value = float(row[1]) if row[1].strip() else math.nan
        except ValueError:
            raise UsageError(f"{path}:{line}: bad value {row[1]!r} (not a number)") from None
        if t and seconds < t[-1]:
            back += 1
        elif t and seconds == t[-1]:
            repeated += 1
        stamps.append(row[0])
        t.append(seconds)
        x.append(value)
    if not t:
        raise UsageError(f"{path}: no data rows")
    return Series(stamps, np.array(t), np.array(x), back, repeated)


def score_many(
    series: Sequence[tuple[np.ndarray, np.ndarray]],
    sensitivity: str = "medium",
    warmup: int = DEFAULT_WARMUP,
    params: Params | None = None,
) -> list[np.ndarray]:
    """Online scores of several (t, x) series, computed together: step k feeds row k of each."""
    bank = DetectorBank(sensitivity, warmup, params)
    idx = bank.add(len(series))
    length = max((len(x) for _, x in series), default=0)
    t = np.zeros((length, len(series)))
    x = np.full((length, len(series)), np.nan)
    for j, (tj, xj) in enumerate(series):
        t[: len(tj), j], x[: len(xj), j] = tj, xj
    out = np.zeros((length, len(series)))
    for k in range(length):
        out[k] = bank.update(idx, t[k], x[k]).score
    return [out[: len(xj), j] for j, (_, xj) in enumerate(series)]


def run(args: argparse.Namespace) -> int:
    series = read_series(args.input)
    if series.back or series.repeated:
        print(
            f"warning: {args.input}: the clock steps back {series.back} time(s) and repeats "
            f"{series.repeated} time(s); rows are scored in file order",
            file=sys.stderr,
        )
    (scores,) = score_many([(series.t, series.x)], args.sensitivity, args.warmup)
    threshold = SENSITIVITY[args.sensitivity]
    alarms = int((scores[args.warmup :] >= threshold).sum())
    try:
        with open(args.output, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["timestamp", "value", "anomaly_score"])
            for stamp, value, score in zip(series.stamps, series.x, scores, strict=True):
                out.writerow([stamp, "" if math.isnan(value) else repr(float(value)), f"{score:.6f}"])
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(
        f"{len(scores)} rows scored; {alarms} at or above the {args.sensitivity} threshold "
        f"{threshold} after a warm-up of {args.warmup} rows -> {args.output}"
    )
    return 0
