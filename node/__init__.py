"""The agency node: database, services (encounters, follow-ups, activations, releases),
web pages and JSON API. Raw peer-support records live here and never leave."""

__all__: list[str] = []
