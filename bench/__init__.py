"""Benchmarks: `python -m bench.<name> [--quick] [--json PATH]`; each prints a table."""
