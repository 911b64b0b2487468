"""The state board's dashboard: server-rendered pages, SVG charts and the alarm rows
of the operator page (templates and static files stay in hub/)."""

__all__ = [
    "alarm_pages",
    "charts",
    "pages",
]
