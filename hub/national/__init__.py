"""National figures (issue 19 item 5, DESIGN section 11): each hub publishes its state's noisy
statistics signed by its hub key (`protocol.state_stats`), fetches the other compact
members' documents, verifies them against the hub keys the compact lists, keeps the verified
months, and shows the national sum (estimates add, variances add) with intervals and the
states that did and did not report. Post-processing only: no budget is spent."""

__all__ = [
    "bars",
    "feature",
    "fetch",
    "models",
    "pages",
    "peers",
    "publish",
    "schedule",
    "store",
    "sums",
    "view",
]
