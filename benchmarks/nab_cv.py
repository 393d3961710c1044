"""Cross-validated NAB score: what the detector is likely to score on NAB files it was not tuned on.

``python -m benchmarks nab-cv`` (or ``python -m benchmarks.nab_cv``) scores the shipped detector on the
31 files of ``$TENANTPULSE_NAB_DIR`` (default ``../shared/nab``) and reports, per NAB profile:

- **cross-validated** (the headline): the files are split into ``--folds`` folds *by file*, stratified
  by NAB category (the folder: realTweets, realAWSCloudwatch, ...); every setting that is tuned on the
  scores (NAB's best threshold per profile, and with ``--ablations`` the choice among configurations)
  is chosen on the other folds, and each fold is scored with it. The held-out raw totals are summed
  and normalised over all windows; the figure is the mean over ``--repeats`` random fold assignments.
- **in-sample**: NAB's usual figure, the threshold chosen on all files at once;
- the gap between them.

``--exclude`` leaves files out of the figures (they are still scored, so the cache stays whole): a rule
written while looking at one file is judged on the others.

``--ablations`` also scores each configuration of ``ABLATIONS`` (the shipped one with one rule or
constant changed) the same way, and the *selection-aware* figure: in each fold, the configuration with
the best standard score on the other folds is the one scored on it. Beside the NAB figures it reports
the calm false-alarm rate (alarms at ``medium`` per 100,000 samples of calm noise, after a day of
warm-up), which the README's Limits quote.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.bench_nab import NabFile, load, nab_dir, ours
from benchmarks.nab_scoring import PROFILES, Labelled, best_threshold, normalise, score_at
from tenantpulse.anomaly_sidecar import detector
from tenantpulse.anomaly_sidecar.detector import DetectorBank, Params

PROFILE_NAMES = ("standard", "reward_low_FP", "reward_low_FN")
FOLDS, REPEATS = 3, 5  # 3: the smallest categories hold 3 files, one per fold

# The rules written for single windows of the development files, switched off together: the rogue
# agent (shift_gap), AAPL tweets (shift_hold) and disk writes (floor_rel).
SIMPLIFIED: dict[str, float] = {"shift_gap": 0.0, "shift_hold": 0.0, "floor_rel": 0.0}
# One rule or constant of the shipped detector changed at a time (``Params`` overrides).
ABLATIONS: dict[str, dict[str, float]] = {
    "shipped": {},
    "no new-record rule": {"record_score": 0.0},
    "records without 4-spread test": {"record_raw": 0.0},
    "no level-shift score": {"shift_score": 0.0},
    "shifts not routine (rogue)": {"shift_gap": 0.0},
    "shifts need not hold (AAPL)": {"shift_hold": 0.0},
    "no long-run spread floor (disk)": {"floor_rel": 0.0},
    "no after-alarm mute (tweets)": {"al_supp": 0.0},
    "no bounded surprise (tweets)": {"w_htm": 0.0, "htm_scale": 1.0},
    "no slow view": {"w_slow": 0.0},
    "no recurring-spike rule": {"rt_min": float("inf")},
    "no fast/slow agreement": {"w_agree": 0.0, "agree_scale": 1.0},
    "records score 1 (the top)": {"record_score": 1.0},
    "episode alarm at 11 (below medium)": {"al_fire": 11.0},
    "simplified": SIMPLIFIED,
    "simplified, no tweet-burst mute": SIMPLIFIED | {"al_supp": 0.0},
    "simplified, no recurring spikes": SIMPLIFIED | {"rt_min": float("inf")},
    "no shift patches (rogue, AAPL)": {"shift_gap": 0.0, "shift_hold": 0.0},
    "no shift score, no disk floor": {"shift_score": 0.0, "floor_rel": 0.0},
    "no shift patches, no 4-spread": {"shift_gap": 0.0, "shift_hold": 0.0, "record_raw": 0.0},
}


def category(f: NabFile) -> str:
    """NAB's category of a file: its folder (``realTweets/Twitter_volume_AAPL.csv`` -> realTweets)."""
    return f.name.split("/", 1)[0]


def stratified_folds(files: Sequence[NabFile], k: int, seed: int) -> np.ndarray:
    """Fold number of every file: each category's files are dealt round the folds in turn (seed 0:
    in name order, else shuffled), continuing where the previous category stopped, so every fold
    holds about a k-th of every category and of all files."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(files), np.intp)
    nxt = 0
    for cat in sorted({category(f) for f in files}):
        members = [i for i, f in enumerate(files) if category(f) == cat]
        if seed:
            members = list(rng.permutation(members))
        for i in members:
            fold[i] = nxt % k
            nxt += 1
    return fold


def kept(files: Sequence[NabFile], exclude: Sequence[str]) -> list[int]:
    """Indices of the files whose name holds none of ``exclude`` (``--exclude``): a rule written while
    looking at one file is judged on the others."""
    return [i for i, f in enumerate(files) if not any(part in f.name for part in exclude)]


@dataclass(frozen=True)
class Figures:
    """In-sample and cross-validated normalised scores per profile."""

    in_sample: dict[str, float]
    cv: dict[str, float]
    cv_spread: dict[str, float]  # standard deviation of the CV figure over the repeats
    picks: tuple[int, ...] = ()  # the candidate chosen in each (repeat, fold)


def _labelled(files: Sequence[NabFile], scores: Sequence[np.ndarray]) -> list[Labelled]:
    return [Labelled(s, f.windows) for f, s in zip(files, scores, strict=True)]


def cross_validated(
    files: Sequence[NabFile], candidates: Sequence[Sequence[np.ndarray]], k: int, repeats: int
) -> Figures:
    """NAB figures of a tuning procedure that picks, on the training folds, the candidate (a list of
    per-file scores) with the best standard score and, per profile, the best threshold for it.

    With one candidate this is the cross-validated figure of one configuration (only the threshold
    is tuned); with several it is the selection-aware figure of choosing among them."""
    windows = sum(len(f.windows) for f in files)
    labelled = [_labelled(files, c) for c in candidates]
    in_sample = {}
    for name in PROFILE_NAMES:
        best = max(best_threshold(lab, PROFILES[name]).normalised for lab in labelled)
        in_sample[name] = best
    runs: dict[str, list[float]] = {name: [] for name in PROFILE_NAMES}
    picks: list[int] = []
    for seed in range(repeats):
        fold = stratified_folds(files, k, seed)
        totals = dict.fromkeys(PROFILE_NAMES, 0.0)
        for f in range(k):
            train = [[lab[i] for i in range(len(files)) if fold[i] != f] for lab in labelled]
            test = [[lab[i] for i in range(len(files)) if fold[i] == f] for lab in labelled]
            pick = 0
            if len(labelled) > 1:
                std = PROFILES["standard"]
                pick = int(np.argmax([best_threshold(tr, std).normalised for tr in train]))  # ties: first
            picks.append(pick)
            for name in PROFILE_NAMES:
                thr = best_threshold(train[pick], PROFILES[name]).threshold
                totals[name] += score_at(test[pick], PROFILES[name], thr)
        for name in PROFILE_NAMES:
            runs[name].append(normalise(totals[name], windows, PROFILES[name]))
    return Figures(
        in_sample,
        {name: float(np.mean(v)) for name, v in runs.items()},
        {name: float(np.std(v)) for name, v in runs.items()},
        tuple(picks),
    )


_SOURCE = inspect.getsource(detector)  # read once: the module this process runs, not a later edit


def _source_key(params: Params) -> str:
    return hashlib.sha256((_SOURCE + repr(params)).encode()).hexdigest()[:16]


def scores_for(files: Sequence[NabFile], params: Params, cache: Path | None) -> list[np.ndarray]:
    """Online scores of every file with one configuration (cached by detector source + params)."""
    if cache is not None:
        path = cache / f"{_source_key(params)}.npz"
        if path.is_file():
            with np.load(path) as z:
                return [z[f"f{i}"] for i in range(len(files))]
    scores = ours(list(files), params=params)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f"f{i}": s for i, s in enumerate(scores)})
    return scores


def calm_rate(
    series: int = 200, days: int = 8, seed: int = 0, sensitivity: str = "medium", params: Params | None = None
) -> float:
    """Samples reaching the threshold per 100,000 on calm noise after a day of warm-up: Gaussian
    noise (sd 2) at 5-minute steps around a level of 100, half of the series with a daily wave of
    amplitude 30 (the calm series of tests/anomaly_sidecar/test_detector.py)."""
    step, day = 300.0, 288
    rng = np.random.default_rng(seed)
    n = days * day
    t = np.arange(n) * step
    wave = 30 * np.sin(2 * np.pi * t / 86_400)[:, None] * (np.arange(series) % 2 == 0)
    x = 100 + wave + rng.normal(0, 2, (n, series))
    bank = DetectorBank(sensitivity, warmup=day, params=params)
    idx = bank.add(series)
    alarms = 0
    for k in range(n):
        alarms += int(bank.update(idx, t[k], x[k]).alarm.sum())
    return 1e5 * alarms / ((n - day) * series)


def calm_ratio_rate(
    series: int = 200, n: int = 3000, seed: int = 0, sensitivity: str = "medium", params: Params | None = None
) -> float:
    """The same on an error ratio of a few events per rate window: Poisson errors (mean 0.5) over
    Poisson requests (mean 25) per 15 s sample, as rate() over 8 samples gives it; after 200 samples."""
    rng = np.random.default_rng(seed)
    err = rng.poisson(0.5, (n + 7, series)).astype(float)
    req = rng.poisson(25.0, (n + 7, series)).astype(float)
    kernel = np.ones(8)
    e = np.apply_along_axis(lambda v: np.convolve(v, kernel, "valid"), 0, err)
    r = np.apply_along_axis(lambda v: np.convolve(v, kernel, "valid"), 0, req)
    x = e / np.maximum(r, 1.0)
    t = np.arange(n) * 15.0
    bank = DetectorBank(sensitivity, warmup=200, params=params)
    idx = bank.add(series)
    alarms = 0
    for k in range(n):
        alarms += int(bank.update(idx, t[k], x[k]).alarm.sum())
    return 1e5 * alarms / ((n - 200) * series)


def _row(name: str, fig: Figures, calm: str = "") -> str:
    cells = [f"{fig.in_sample[p]:5.1f}" for p in PROFILE_NAMES]
    cv = [f"{fig.cv[p]:5.1f}" for p in PROFILE_NAMES]
    gap = fig.in_sample["standard"] - fig.cv["standard"]
    return (
        f"{name:28} {' / '.join(cv):>19} (+-{fig.cv_spread['standard']:.1f}) "
        f"{' / '.join(cells):>19} {gap:6.1f} {calm}"
    ).rstrip()


def main(argv: Sequence[str] = ()) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks nab-cv", description=(__doc__ or "").split("\n")[0]
    )
    ap.add_argument("--folds", type=int, default=FOLDS, help="folds (by file, stratified by category)")
    ap.add_argument("--repeats", type=int, default=REPEATS, help="random fold assignments averaged")
    ap.add_argument("--ablations", action="store_true", help="also score every configuration of ABLATIONS")
    ap.add_argument("--only", nargs="*", default=None, help="with --ablations: these configurations only")
    ap.add_argument("--no-calm", action="store_true", help="skip the calm false-alarm rates")
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep scores in between runs")
    ap.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        help="leave out of the figures the files whose name holds one of these (the files a rule was written on)",
    )
    args = ap.parse_args(list(argv))
    root = nab_dir()
    if root is None:
        print("skipped: NAB data not found (set TENANTPULSE_NAB_DIR or put it at ../shared/nab)")
        return
    every = load(root)
    keep = kept(every, args.exclude)
    files = [every[i] for i in keep]
    print(
        f"{len(files)} files in {len({category(f) for f in files})} categories, "
        f"{sum(len(f.windows) for f in files)} windows; {args.folds} folds by file, stratified by "
        f"category, {args.repeats} repeats"
    )
    print(f"{'configuration':28} {'cross-validated std / low_FP / low_FN':>27} {'in-sample':>19} {'gap':>6}")
    names = list(ABLATIONS) if args.ablations else ["shipped"]
    if args.only:
        names = [n for n in names if n in args.only]
    all_scores = []
    for name in names:
        start = time.perf_counter()
        params = replace(Params(), **ABLATIONS[name])
        scores = [scores_for(every, params, args.cache)[i] for i in keep]  # the cache holds every file
        all_scores.append(scores)
        fig = cross_validated(files, [scores], args.folds, args.repeats)
        calm = ""
        if not args.no_calm:
            calm = f"calm {calm_rate(params=params):5.1f} ratio {calm_ratio_rate(params=params):5.1f} /100k"
        print(_row(name, fig, calm) + f"  [{time.perf_counter() - start:.0f} s]", flush=True)
    if len(all_scores) > 1:
        fig = cross_validated(files, all_scores, args.folds, args.repeats)
        print(_row("selection among these (nested)", fig))
        print("each change against the shipped detector, chosen inside the folds (ties: the change):")
        shipped = all_scores[names.index("shipped")] if "shipped" in names else None
        for name, scores in zip(names, all_scores, strict=True):
            if shipped is None or scores is shipped:
                continue
            fig = cross_validated(files, [scores, shipped], args.folds, args.repeats)
            n_kept = sum(fig.picks)
            print(_row(f"{name}: shipped kept {n_kept}/{len(fig.picks)}", fig))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
