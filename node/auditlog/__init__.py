"""The auditor's audit-log room: a filtered, paged page of the chain, the verify result
(the checks of `peernet node audit verify --offline`) and a CSV or JSON export.

`query` holds the filters and the reads, `export` the download formats, `pages` the
routes and `setup(app)` (listed in `node.web.app.FEATURES`).
"""

__all__ = ["export", "pages", "query"]
