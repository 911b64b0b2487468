"""The node's web layer: app assembly, plumbing (auth, CSRF, errors), pages, JSON API,
charts, templates and static files, and the federation/audit-anchor wiring."""

__all__ = [
    "api",
    "app",
    "audit_anchor",
    "charts",
    "federation",
    "pages",
    "plumbing",
]
