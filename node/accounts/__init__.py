"""People who use the node: users, logins, browser sessions, API tokens and their
listing and revocation."""

__all__ = [
    "tokens",
    "users",
]
