"""The hub across state lines (WIRE section 16): relaying `v: 2` envelopes to and from the
hubs of other member networks (`relay`), and the compact's and foreign rosters' routes and
operator install (`feature`)."""

__all__ = ["feature", "relay"]
