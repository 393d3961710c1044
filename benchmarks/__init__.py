"""Benchmarks: each ``bench_*.py`` module has ``main() -> None`` printing its figures and ratios."""
