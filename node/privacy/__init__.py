"""Monthly releases: the fixed schema, truncation and noise, the signed release, the
privacy ledger, the release schedule in the running node and the CLI."""

__all__ = [
    "cli",
    "ledger",
    "noise",
    "release",
    "runtime",
    "schema",
]
