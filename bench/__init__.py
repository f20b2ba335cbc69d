"""Benchmarks: `make bench` runs every bench/bench_*.py and prints one table.

Each module defines `rows()` returning dicts with keys: benchmark, value (str or number), target (str, may
be empty) and note (str, may be empty). Ratios are measured inside one run, so they compare like with like.
"""
