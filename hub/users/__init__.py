"""Hub users (operators and board analysts): logins, sessions, API tokens, resets with a
forced change, own password changes, the operator's user list, and the `peernet hub user`
commands."""

__all__ = [
    "accounts",
    "cli",
    "pages",
    "passwords",
]
