"""Sign-in through the agency's OpenID provider on the node: the identity links, the
create-or-update of a user from a verified ID token, and the routes (the flow itself is
`federation.webkit.oidc`)."""

__all__ = [
    "db",
    "feature",
    "users",
]
