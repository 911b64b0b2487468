"""Seeing a server's health without seeing its records: Prometheus metrics (`metrics`), the
federation figures every server shares (`fed_samplers`), structured logs (`logs`) and the
settings that switch them on (`settings`). Node, hub and helper wire these in; nothing here
reads a record, a pseudonym, a token or a key."""
