"""The hub: relay, directory, central activation log, aggregate store, state-board API and
dashboard. It never holds or reaches a raw record."""

__all__: list[str] = []
