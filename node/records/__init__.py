"""Support records: encounters, follow-ups, restricted disclosures, retention and the
agency report (counts only), as services over a `NodeContext`."""

__all__ = [
    "disclosures",
    "encounter_paging",
    "encounters",
    "followups",
    "report",
    "retention",
]
