"""OpenID Connect settings, the same model in the node's and the hub's configuration.

Why a table of rules rather than a dictionary: a person is usually in several directory
groups, so which group decides must be stated, not left to the provider's order. The first
rule (in file order) whose `group` the ID token lists decides the role and, on the node,
the team; no matching rule means the person is refused (`oidc_no_role`).

The client secret is not here: it is a secret, so it comes from the environment
(`PEERNET_OIDC_CLIENT_SECRET`, `PEERNET_HUB_OIDC_CLIENT_SECRET`) like the other secrets.

    [oidc]
    issuer = "https://login.microsoftonline.com/<tenant>/v2.0"
    client_id = "..."
    groups_claim = "groups"
    only = false                 # true: local password login is refused (oidc_required)
    rules = [
      {group = "peernet-admins", role = "admin"},
      {group = "fire-peers", role = "peer_supporter", team = "fire"},
    ]
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["OidcRule", "OidcSettings", "local_username"]


class OidcRule(BaseModel):
    """One group -> role (and team) rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(min_length=1, max_length=256)
    role: str = Field(min_length=1, max_length=40)
    team: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")


class OidcSettings(BaseModel):
    """The `[oidc]` table of a server's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(pattern=r"^https?://[^\s]+$", max_length=500)
    client_id: str = Field(min_length=1, max_length=200)
    groups_claim: str = Field(default="groups", min_length=1, max_length=100)
    username_claim: str = Field(default="preferred_username", min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    rules: list[OidcRule] = Field(min_length=1)
    only: bool = False  # local password login refused
    button: str = Field(default="Sign in with your agency account", min_length=1,
                        max_length=80)
    leeway_s: int = Field(default=60, ge=0, le=600)  # clock skew allowed on exp / iat

    @field_validator("scopes")
    @classmethod
    def _openid_first(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("scopes must include openid")
        return v

    def check_roles(self, allowed: frozenset[str]) -> None:
        """ValueError naming a rule whose role the server does not have."""
        for i, rule in enumerate(self.rules):
            if rule.role not in allowed:
                raise ValueError(f"oidc.rules[{i}].role must be one of "
                                 + ", ".join(sorted(allowed)))

    def role_for(self, groups: list[str]) -> OidcRule | None:
        """The first rule whose group is among `groups`."""
        have = set(groups)
        return next((r for r in self.rules if r.group in have), None)


def local_username(claim: str | None, max_len: int) -> str | None:
    """A peernet username from the provider's username claim: lower case, the part before
    an `@` (Entra ID and Okta send e-mail-like names), other characters outside
    `a-z 0-9 . _ -` as `-`; None when nothing usable is left."""
    if not claim:
        return None
    name = claim.strip().casefold().split("@", 1)[0]
    name = re.sub(r"[^a-z0-9._-]", "-", name)[:max_len].strip("._-")
    return name if len(name) >= 2 and name[0].isalnum() else None
