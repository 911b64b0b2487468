"""Observe tests use the node tests' fixture factories."""

from tests.node.conftest import make_node

__all__ = ["make_node"]
