"""The web kit the node's and the hub's pages share: login flow, base/login/error templates,
favicon and base CSS, CSRF token extraction, Jinja set-up and page-versus-JSON errors, and
OpenID Connect sign-in (`oidc`, `oidc_provider`, `oidc_config`)."""

__all__ = ["csrf", "login", "oidc", "oidc_config", "oidc_provider", "pages"]
