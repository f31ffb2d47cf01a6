"""Benchmarks of the real platform, one module per area; run them with ``python -m tests.bench``."""
