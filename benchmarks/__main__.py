"""Run every benchmark (``python -m benchmarks``) or the ones named (``python -m benchmarks exposition``);
``python -m benchmarks nab-cv [options]`` runs the cross-validated NAB score (benchmarks/nab_cv.py)."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def main(names: list[str]) -> None:
    if names[:1] == ["nab-cv"]:  # the cross-validated NAB score; its options follow (--help)
        importlib.import_module("benchmarks.nab_cv").main(names[1:])
        return
    if names[:1] == [
        "forecast-accuracy"
    ]:  # MASE and interval coverage on NAB (benchmarks/forecast_accuracy.py)
        importlib.import_module("benchmarks.forecast_accuracy").main(names[1:])
        return
    found = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    chosen = [m for m in found if not names or m.removeprefix("bench_") in names]
    for name in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
