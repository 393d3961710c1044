"""NAB quality: our online detector vs the published detectors on the same files, same scoring rules.

Runs the backtest over every file in ``$TENANTPULSE_NAB_DIR`` (default ``../shared/nab`` next to the repo),
scores it with ``benchmarks.nab_scoring`` for the three profiles, and runs two simple baselines in the same
process (NAB's windowed Gaussian and a random detector) whose published figures check the scorer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from benchmarks.nab_scoring import Labelled, Result, score_all
from tenantpulse.anomaly_sidecar.backtest import parse_time, read_series, score_many

# Published standard-profile scores on exactly these 31 files (../shared/nab/README.md).
PUBLISHED: dict[str, float] = {
    "ARTime": 78.2,
    "contextOSE": 74.1,
    "numenta": 71.3,
    "knncad": 64.3,
    "relativeEntropy": 56.3,
    "earthgeckoSkyline": 56.2,
    "randomCutForest": 52.1,
    "twitterADVec": 46.4,
    "skyline": 37.2,
    "windowedGaussian": 36.8,
    "bayesChangePt": 22.8,
    "random": 20.9,
    "expose": 19.3,
}


# What NAB's harness hands these detectors before the first row (nab/detectors/base.py computes inputMin /
# inputMax over the whole file; ARTime_detector.py, context_ose_detector.py, numenta_detector.py and
# knncad_detector.py use them or the file's length). Our scores use rows 0..i only.
LOOKAHEAD: dict[str, str] = {
    "ARTime": "reads the whole file's min, max and length",
    "contextOSE": "reads the whole file's min and max (8 levels) and length",
    "numenta": "reads the whole file's min and max (encoder resolution)",
    "knncad": "reads the file's length (training set, quiet period)",
}


@dataclass(frozen=True)
class NabFile:
    name: str
    t: np.ndarray
    x: np.ndarray
    windows: list[tuple[int, int]]


def nab_dir() -> Path | None:
    """The NAB data folder, or None when it is not on this machine."""
    env = os.environ.get("TENANTPULSE_NAB_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "nab"
    return path if (path / "labels" / "windows.json").is_file() else None


def load(root: Path) -> list[NabFile]:
    """Every labelled file, with its windows as row indices."""
    labels = json.loads((root / "labels" / "windows.json").read_text())
    files = []
    for name in sorted(labels):
        s = read_series(root / "data" / name)
        index = {round(v): i for i, v in enumerate(s.t)}
        windows = [(index[round(parse_time(a))], index[round(parse_time(b))]) for a, b in labels[name]]
        files.append(NabFile(name, s.t, s.x, windows))
    return files


def windowed_gaussian(x: np.ndarray, window: int = 6400, step: int = 100) -> np.ndarray:
    """NAB's windowedGaussian: tail probability under a Gaussian fitted to a sliding window."""
    out = np.zeros(len(x))
    mean, std = 0.0, 1.0
    for i, v in enumerate(x):
        if i > 0:
            out[i] = 1.0 - 2.0 * ndtr(-abs(v - mean) / std)
        # The window grows to ``window`` rows, then slides forward ``step`` rows at a time.
        if i < window or (i - window + 1) % step == 0:
            data = x[max(0, i + 1 - window) : i + 1]
            mean, std = float(data.mean()), float(data.std()) or 1e-6
    return out


def random_scores(x: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(x))


def evaluate(files: list[NabFile], scores: list[np.ndarray]) -> dict[str, Result]:
    return score_all([Labelled(s, f.windows) for f, s in zip(files, scores, strict=True)])


def ours(files: list[NabFile], **kwargs: object) -> list[np.ndarray]:
    return score_many([(f.t, f.x) for f in files], **kwargs)


def main() -> None:
    root = nab_dir()
    if root is None:
        print("skipped: NAB data not found (set TENANTPULSE_NAB_DIR or put it at ../shared/nab)")
        return
    files = load(root)
    rows = sum(len(f.x) for f in files)
    runs: dict[str, Callable[[], list[np.ndarray]]] = {
        "tenantpulse": lambda: ours(files),
        "windowedGaussian (ours, re-implemented)": lambda: [windowed_gaussian(f.x) for f in files],
        "random (ours, seeded)": lambda: [random_scores(f.x, i) for i, f in enumerate(files)],
    }
    print(f"{len(files)} files, {rows} rows, {sum(len(f.windows) for f in files)} windows from {root}")
    print(f"{'detector':42} {'standard':>9} {'low_FP':>9} {'low_FN':>9} {'threshold':>10} {'seconds':>8}")
    ours_standard = 0.0
    ours_scores: list[np.ndarray] = []
    for name, fn in runs.items():
        start = time.perf_counter()
        scores = fn()
        ours_scores = ours_scores or scores
        results = evaluate(files, scores)
        ours_standard = ours_standard or results["standard"].normalised
        took = time.perf_counter() - start
        std, lfp, lfn = (results[p] for p in ("standard", "reward_low_FP", "reward_low_FN"))
        print(
            f"{name:42} {std.normalised:9.1f} {lfp.normalised:9.1f} {lfn.normalised:9.1f} "
            f"{std.threshold:10.4f} {took:8.1f}"
        )
    from benchmarks.nab_cv import FOLDS, REPEATS, cross_validated  # (nab_cv imports this module)

    cv = cross_validated(files, [ours_scores], FOLDS, REPEATS)
    print(
        f"tenantpulse cross-validated ({FOLDS} folds by file, stratified by category, threshold chosen "
        f"on the other folds, {REPEATS} repeats): "
        + " / ".join(f"{cv.cv[p]:.1f}" for p in ("standard", "reward_low_FP", "reward_low_FN"))
        + f"; in-sample minus cross-validated (standard): {cv.in_sample['standard'] - cv.cv['standard']:.1f}"
    )
    print("published (standard profile, same 31 files):")
    for name, value in PUBLISHED.items():
        print(f"  {name:40} {value:9.1f}  {LOOKAHEAD.get(name, '')}".rstrip())
    above = [name for name, value in PUBLISHED.items() if value > ours_standard]
    print(f"tenantpulse standard {ours_standard:.1f}: below {len(above)} published detector(s) {above}")


if __name__ == "__main__":
    main()
