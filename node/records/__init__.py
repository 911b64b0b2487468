"""Support records: encounters, follow-ups, restricted disclosures, retention and the
agency report (counts only), as services over a `NodeContext`; amendments (audited
corrections), list filters and the routes of both (`feature`)."""

__all__ = [
    "amendment_db",
    "amendment_history",
    "amendment_models",
    "amendment_pages",
    "amendments",
    "disclosure_pages",
    "disclosures",
    "encounter_paging",
    "encounters",
    "feature",
    "followup_paging",
    "followups",
    "list_filters",
    "list_pages",
    "report",
    "retention",
]
