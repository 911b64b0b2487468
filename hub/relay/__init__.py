"""The hub as a federation peer: store-and-forward relay, the directory, the central
activation log and the nodes' audit anchors."""

__all__ = [
    "activation_log",
    "audit_anchors",
    "directory",
    "forwarding",
]
