"""The security fixtures (real node and hub apps with one user per role) for the fuzzers."""

from tests.security.conftest import hub_app, node_app

__all__ = ["hub_app", "node_app"]
