"""``tenantpulse backtest``: CSV in, online scores out, clear errors for bad files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tenantpulse.anomaly_sidecar.backtest import read_series, score_many
from tenantpulse.cli import main

START = datetime(2024, 3, 1, tzinfo=UTC)


def write_series(path: Path, values: np.ndarray, unix: bool = False) -> Path:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            stamp = START + timedelta(minutes=5 * i)
            out.writerow([int(stamp.timestamp()) if unix else stamp.strftime("%Y-%m-%d %H:%M:%S"), v])
    return path


def read_scores(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array([float(r[2]) for r in rows[1:]])


def series(n: int = 1500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50 + 10 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 1, n)


def test_backtest_writes_scores_and_flags_an_injected_spike(tmp_path: Path, capsys) -> None:
    x = series()
    x[1200] += 30
    src = write_series(tmp_path / "in.csv", x)
    assert main(["backtest", "--input", str(src), "--output", str(tmp_path / "out.csv")]) == 0
    header, scores = read_scores(tmp_path / "out.csv")
    assert header == ["timestamp", "value", "anomaly_score"]
    assert len(scores) == len(x) and np.all((scores >= 0) & (scores <= 1))
    assert scores[1200] >= 0.9 and int(np.argmax(scores[300:])) + 300 == 1200
    assert "1500 rows scored" in capsys.readouterr().out


def test_scores_are_online_changing_later_rows_leaves_earlier_scores(tmp_path: Path) -> None:
    x = series(seed=1)
    y = x.copy()
    y[800:] *= 3
    for name, values in (("a", x), ("b", y)):
        src = write_series(tmp_path / f"{name}.csv", values)
        assert main(["backtest", "--input", str(src), "--output", str(tmp_path / f"{name}.out")]) == 0
    a, b = read_scores(tmp_path / "a.out")[1], read_scores(tmp_path / "b.out")[1]
    np.testing.assert_array_equal(a[:800], b[:800])
    assert a[800] != b[800]


def test_unix_seconds_and_dates_give_the_same_scores(tmp_path: Path) -> None:
    x = series(600, seed=2)
    dates = read_series(write_series(tmp_path / "d.csv", x))
    unix = read_series(write_series(tmp_path / "u.csv", x, unix=True))
    np.testing.assert_array_equal(dates.t, unix.t)
    (a,), (b,) = score_many([(dates.t, dates.x)]), score_many([(unix.t, unix.x)])
    np.testing.assert_array_equal(a, b)


def test_series_scored_together_equal_series_scored_alone() -> None:
    t = np.arange(700) * 300.0
    xs = [series(700, seed=s) for s in range(3)] + [series(400, seed=9)]
    together = score_many([(t[: len(x)], x) for x in xs])
    for x, s in zip(xs, together, strict=True):
        (alone,) = score_many([(t[: len(x)], x)])
        np.testing.assert_allclose(s, alone, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,val\n2024-01-01 00:00:00,1\n", "header 'timestamp,value'"),
        ("timestamp,value\n2024-01-01 00:00:00,abc\n", ":2: bad value 'abc'"),
        ("timestamp,value\nyesterday,1\n", ":2: bad timestamp 'yesterday'"),
        ("timestamp,value\n", "no data rows"),
        ("timestamp,value\n2024-01-01 00:00:00\n", "expected 'timestamp,value'"),
    ],
)
def test_bad_input_file_is_a_message_and_exit_2(tmp_path: Path, capsys, content: str, message: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    out = tmp_path / "out.csv"
    assert main(["backtest", "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_missing_input_and_bad_sensitivity(tmp_path: Path, capsys) -> None:
    assert main(["backtest", "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o")]) == 2
    assert "cannot read" in capsys.readouterr().err
    src = write_series(tmp_path / "in.csv", series(50))
    with pytest.raises(SystemExit) as exc:
        main(["backtest", "--input", str(src), "--output", str(tmp_path / "o"), "--sensitivity", "max"])
    assert exc.value.code == 2
    assert "low" in capsys.readouterr().err


def test_empty_values_are_missing_and_score_zero(tmp_path: Path) -> None:
    x = series(400, seed=3).astype(object)
    x[300] = ""
    src = write_series(tmp_path / "in.csv", x)
    assert main(["backtest", "--input", str(src), "--output", str(tmp_path / "o.csv")]) == 0
    with open(tmp_path / "o.csv", newline="") as fh:
        row = list(csv.reader(fh))[301]
    assert row[1] == "" and float(row[2]) == 0.0


def test_clock_stepping_back_and_repeating_is_scored_in_file_order_with_one_warning(
    tmp_path: Path, capsys
) -> None:
    """A daylight-saving step back (an hour repeated), a repeated scrape and a step back to before the
    first row: every row is scored in file order, online, with one warning line naming the counts."""
    x = series(1500, seed=4)
    x[1200] += 30
    stamps = [START + timedelta(minutes=5 * i) for i in range(len(x))]
    stamps[700:] = [s - timedelta(hours=1) for s in stamps[700:]]  # 12 rows repeat an hour of clock
    stamps[900] = stamps[899]  # a repeated timestamp
    stamps[1000] = START - timedelta(days=3)  # far back, before the first row
    src = tmp_path / "dst.csv"
    with open(src, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value"])
        out.writerows([s.strftime("%Y-%m-%d %H:%M:%S"), v] for s, v in zip(stamps, x, strict=True))
    parsed = read_series(src)
    assert (parsed.back, parsed.repeated) == (2, 1)
    assert main(["backtest", "--input", str(src), "--output", str(tmp_path / "o.csv")]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "steps back 2 time(s)" in warning[0] and "repeats 1 time(s)" in warning[0]
    assert "1500 rows scored" in captured.out
    header, scores = read_scores(tmp_path / "o.csv")
    with open(tmp_path / "o.csv", newline="") as fh:
        assert [r[0] for r in list(csv.reader(fh))[1:]] == [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps]
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    assert scores[1200] >= 0.9  # the detector still works after the clock's jumps
    # online: changing later rows leaves earlier scores as they were, across the steps back
    y = x.copy()
    y[1100:] *= 3
    t = parsed.t
    (a,), (b,) = score_many([(t, x)]), score_many([(t, y)])
    np.testing.assert_array_equal(a[:1100], b[:1100])
