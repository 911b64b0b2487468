"""Statistics over verified releases: the aggregate store, per-month sums, estimates (pure
math: one estimate and its display, the v2 consistent combination, the figures of either
schema, the document), the query models and the statistics API."""

__all__ = [
    "aggregates",
    "aggregates_db",
    "api",
    "consistent",
    "estimates",
    "figures",
    "models",
    "query",
    "summary",
]
