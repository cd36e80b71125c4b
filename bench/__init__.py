"""Benchmarks: scripts that print figures (and ratios against baselines measured in the same run).

Tests never time things; these do. Run one as a module, e.g. `.venv/bin/python -m bench.intake_throughput`.
"""
