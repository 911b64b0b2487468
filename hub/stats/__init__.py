"""Statistics over verified releases: the aggregate store, per-month sums, estimates
(pure math), the query models and the statistics API."""

__all__ = [
    "aggregates",
    "aggregates_db",
    "api",
    "estimates",
    "models",
    "query",
]
