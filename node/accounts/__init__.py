"""People who use the node: users, logins, browser sessions, API tokens and their
listing and revocation, own password changes and admin resets (forced change), the paged
users list, and the account pages and JSON routes (`feature` wires them in)."""

__all__ = [
    "api",
    "feature",
    "pages",
    "passwords",
    "sessions",
    "tokens",
    "user_list",
    "users",
]
