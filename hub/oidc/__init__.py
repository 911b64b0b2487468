"""Sign-in of board analysts and operators through the state's OpenID provider: the identity
links, the create-or-update of a hub user from a verified ID token, and the routes (the flow
itself is `federation.webkit.oidc`)."""

__all__ = [
    "feature",
    "users",
]
