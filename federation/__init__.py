"""Federation: what nodes and the hub share above the wire format.

Governance roster, keys at rest, inbox (verify, dedupe), outbox (retry), HTTP transport,
plus the clock and database plumbing both servers use.
"""

__all__: list[str] = []
