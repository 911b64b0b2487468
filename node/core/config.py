"""`NodeSettings`: one pydantic-settings model for a node, from a TOML file plus environment.

Precedence (highest first): keyword arguments, `PEERNET_*` environment variables, the TOML
file. Secrets never go in the TOML file: the key-file passphrase comes from
`PEERNET_PASSPHRASE` (or a prompt in the CLI), the database password from
`PEERNET_DB_PASSWORD` or `db_password_file` (merged into `db_url` in memory only). Paths
left empty derive from `data_dir`: `db_url` -> `sqlite:///<data_dir>/node.db`,
`key_file` -> `<data_dir>/node.key`, `pseudonym_key_file` -> `<data_dir>/pseudonym.key`.
`secure_cookies` is written to the file only when given: left out, it follows `public_url`.

Unknown keys in the TOML file are refused (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from federation.client_address import parse_trusted
from federation.db_url import check_db_url
from federation.observe.settings import ObserveSettings
from federation.settings import apply_db_password
from federation.webkit.oidc_config import OidcSettings
from node.core.errors import Code, NodeError
from node.core.identifier import DEFAULT_FORMAT, IdentifierFormat
from node.core.vocabulary import RecipientDiscipline, Role
from protocol.ids import NETWORK_ID_PATTERN, NODE_ID_PATTERN

__all__ = ["NodeSettings"]


class NodeSettings(ObserveSettings):
    secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"passphrase", "oidc_client_secret", "db_password", "metrics_token", "smtp_password"})
    written_when_set: ClassVar[frozenset[str]] = frozenset({"secure_cookies"})
    toml_header: ClassVar[str] = (
        "# peernet node configuration. Secrets come from PEERNET_PASSPHRASE."
    )

    model_config = SettingsConfigDict(
        env_prefix="PEERNET_", extra="forbid", validate_default=True, frozen=True
    )

    node_id: str = Field(pattern=NODE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    disciplines: list[RecipientDiscipline] = Field(default_factory=list)
    region: str = Field(default="", max_length=80)
    data_dir: Path = Path("./peernet-node")
    db_url: str = ""
    db_password_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    key_file: Path | None = None
    pseudonym_key_file: Path | None = None
    timezone: str = "UTC"
    retention_days: int = Field(default=730, ge=1, le=36500)
    hub_url: str | None = None
    board_keys: list[str] = Field(default_factory=list)
    board_threshold: int | None = Field(default=None, ge=1)
    # Interstate (WIRE 16): this node's network id in the compact (its board is the pinned
    # board above); with it, the node learns the compact and other networks' rosters from
    # its hub (verifying them itself) and can send to `<network>/<node>`.
    network_id: str | None = Field(default=None, pattern=f"^{NETWORK_ID_PATTERN}$")
    # OpenID Connect sign-in (node.oidc); the secret from PEERNET_OIDC_CLIENT_SECRET only.
    oidc: OidcSettings | None = None
    oidc_client_secret: SecretStr | None = None
    # Secrets and tuning (environment, not the TOML file).
    passphrase: SecretStr | None = None
    db_password: SecretStr | None = None
    session_hours: int = Field(default=12, ge=1, le=168)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    audit_sign_interval_s: int = Field(default=5, ge=1)
    secure_cookies: bool | None = None  # default: on when public_url is https
    db_pool_size: int = Field(default=20, ge=1, le=500)
    trusted_proxies: list[str] = Field(default_factory=list)  # federation.client_address
    # How a typed recipient identifier is normalised (node.core.identifier).
    identifier_format: IdentifierFormat = DEFAULT_FORMAT
    # Notifications (node.notify): SMTP relay; the password from PEERNET_SMTP_PASSWORD only.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ca_file: Path | None = None  # a private CA the relay's certificate is signed by
    notify_from: str = Field(default="peernet@localhost", max_length=254)
    notify_digest_hour: int = Field(default=7, ge=0, le=23)
    notify_poll_s: float = Field(default=5.0, gt=0, le=3600)
    notify_allow_http_loopback: bool = False  # test/dev only: http:// webhooks to loopback

    @classmethod
    def config_error(cls, message: str, field: str | None = None) -> Exception:
        return NodeError(Code.CONFIG, message, field)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, v: list[str]) -> list[str]:
        parse_trusted(v)  # ValueError names the bad entry
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("oidc")
    @classmethod
    def _oidc_roles(cls, v: OidcSettings | None) -> OidcSettings | None:
        if v is not None:
            v.check_roles(frozenset(r.value for r in Role))
        return v

    @model_validator(mode="after")
    def _derive_paths(self) -> NodeSettings:
        d = self.data_dir
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{d / 'node.db'}")
        apply_db_password(self, check_db_url(self.db_url), self.db_password,
                          self.db_password_file)
        if self.key_file is None:
            object.__setattr__(self, "key_file", d / "node.key")
        if self.pseudonym_key_file is None:
            object.__setattr__(self, "pseudonym_key_file", d / "pseudonym.key")
        if self.secure_cookies is None:
            object.__setattr__(self, "secure_cookies", self.public_url.startswith("https://"))
        return self


    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def key_path(self) -> Path:
        assert self.key_file is not None  # set by _derive_paths
        return self.key_file

    @property
    def pseudonym_key_path(self) -> Path:
        assert self.pseudonym_key_file is not None  # set by _derive_paths
        return self.pseudonym_key_file
