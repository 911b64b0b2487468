"""Support records: encounters, follow-ups, restricted disclosures, retention and the
agency report (counts only), as services over a `NodeContext`; amendments (audited
corrections), list filters and the routes of both (`feature`)."""

__all__ = [
    "amendment_db",
    "amendment_history",
    "amendment_models",
    "amendment_routes",
    "amendments",
    "disclosure_pages",
    "disclosures",
    "encounter_paging",
    "encounters",
    "feature",
    "followups",
    "list_filters",
    "report",
    "retention",
]
