"""Hub users (operators and board analysts): logins, sessions, API tokens, and the
`peernet hub user` commands."""

__all__ = [
    "accounts",
    "cli",
]
