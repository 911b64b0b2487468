"""`HubSettings`: one pydantic-settings model for a hub, from a TOML file plus environment.

Precedence (highest first): keyword arguments, `PEERNET_HUB_*` environment variables, the TOML
file. Secrets (`passphrase` for the key file, `operator_token`, `db_password`) come from the
environment only; the database password may also come from `db_password_file` (merged into
`db_url` in memory only, never written back). Empty paths derive from `data_dir`:
`db_url` -> `sqlite:///<data_dir>/hub.db`, `key_file` -> `<data_dir>/hub.key`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from federation.client_address import parse_trusted
from federation.db_url import check_db_url
from federation.observe.settings import ObserveSettings
from federation.settings import apply_db_password
from federation.webkit.oidc_config import OidcSettings
from hub.errors import Code, HubError
from protocol.ids import NETWORK_ID_PATTERN, NODE_ID_PATTERN

__all__ = ["HubSettings"]


class HubSettings(ObserveSettings):
    secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"passphrase", "oidc_client_secret", "operator_token", "db_password", "metrics_token"})
    toml_header: ClassVar[str] = (
        "# peernet hub configuration. Secrets come from PEERNET_HUB_PASSPHRASE."
    )

    model_config = SettingsConfigDict(
        env_prefix="PEERNET_HUB_", extra="forbid", validate_default=True, frozen=True
    )

    hub_id: str = Field(pattern=NODE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    region: str = Field(default="state", max_length=63)
    data_dir: Path = Path("./peernet-hub")
    db_url: str = ""
    db_password_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    public_url: str = ""
    key_file: Path | None = None
    board_keys: list[str] = Field(default_factory=list)
    board_threshold: int | None = Field(default=None, ge=1)
    # Interstate (WIRE 16): this hub's network id in the compact; its board is the pinned
    # roster board above (the board that signs the roster signs the compact).
    network_id: str | None = Field(default=None, pattern=f"^{NETWORK_ID_PATTERN}$")
    # OpenID Connect sign-in (hub.oidc); the secret from PEERNET_HUB_OIDC_CLIENT_SECRET only.
    oidc: OidcSettings | None = None
    oidc_client_secret: SecretStr | None = None
    # Secrets and tuning (environment, not the TOML file).
    passphrase: SecretStr | None = None
    operator_token: SecretStr | None = None
    db_password: SecretStr | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    relay_poll_ms: int = Field(default=1_000, ge=10)
    trusted_proxies: list[str] = Field(default_factory=list)  # federation.client_address

    @classmethod
    def config_error(cls, message: str, field: str | None = None) -> Exception:
        return HubError(Code.CONFIG, message, field)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, v: list[str]) -> list[str]:
        parse_trusted(v)  # ValueError names the bad entry
        return v

    @field_validator("oidc")
    @classmethod
    def _oidc_roles(cls, v: OidcSettings | None) -> OidcSettings | None:
        if v is not None:
            v.check_roles(frozenset({"operator", "board_analyst"}))
        return v

    @model_validator(mode="after")
    def _derive_paths(self) -> HubSettings:
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.data_dir / 'hub.db'}")
        apply_db_password(self, check_db_url(self.db_url), self.db_password,
                          self.db_password_file)
        if self.key_file is None:
            object.__setattr__(self, "key_file", self.data_dir / "hub.key")
        return self


    @property
    def key_path(self) -> Path:
        assert self.key_file is not None  # set by _derive_paths
        return self.key_file
