"""Statistics over verified releases: the aggregate store and its batched ingest (running
sums kept on ingest, exact variance sums), per-month sums (from the running sums, or a
rescan of the releases: the same figures), estimates (pure math: one estimate and its
display, the v2 consistent combination, the figures of either schema, the document), the
query models and the statistics API."""

__all__ = [
    "aggregates",
    "aggregates_db",
    "aggregates_models",
    "api",
    "consistent",
    "estimates",
    "figures",
    "ingest",
    "models",
    "query",
    "rescan",
    "summary",
    "variance_totals",
]
