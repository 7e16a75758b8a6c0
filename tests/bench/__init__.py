"""Benchmarks; not collected by `pytest tests` (no test_ files)."""
