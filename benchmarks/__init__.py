"""Benchmarks, each runnable as ``python -m benchmarks.<name>``; the last line is JSON."""
