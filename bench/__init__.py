"""Benchmarks for issue #5: `make bench` (python -m bench.run) writes bench/results/latest.{json,md}.

Timings live here, never in the tests.
"""
