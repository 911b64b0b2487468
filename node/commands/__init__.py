"""`peernet node` commands beyond each domain's own: init, audit verify, governance
alarms (the click root is `node.cli`)."""

__all__ = [
    "alarms",
    "audit",
    "init",
]
