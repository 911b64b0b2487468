"""`HelperSettings`: the helper aggregator's settings, from a TOML file plus environment.

Like the hub's (`hub.config`): precedence keyword arguments, `PEERNET_HELPER_*` environment
variables, the TOML file. Secrets (`passphrase` for the key file, `operator_token`,
`db_password`) come from the environment only. Empty paths derive from `data_dir`:
`db_url` -> `sqlite:///<data_dir>/helper.db`, `key_file` -> `<data_dir>/helper.key`.
`hub_url` is where the helper fetches the roster (the hub relays every share to it).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from federation.db_url import check_db_url
from federation.observe.settings import ObserveSettings
from federation.settings import apply_db_password
from helper.errors import Code, HelperError
from protocol.ids import NODE_ID_PATTERN

__all__ = ["HelperSettings"]


class HelperSettings(ObserveSettings):
    secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"passphrase", "operator_token", "db_password", "metrics_token"})
    toml_header: ClassVar[str] = (
        "# peernet helper aggregator configuration. Secrets come from PEERNET_HELPER_PASSPHRASE."
    )

    model_config = SettingsConfigDict(
        env_prefix="PEERNET_HELPER_", extra="forbid", validate_default=True, frozen=True
    )

    helper_id: str = Field(pattern=NODE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    region: str = Field(default="state", max_length=63)
    data_dir: Path = Path("./peernet-helper")
    db_url: str = ""
    db_password_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8091, ge=0, le=65535)
    public_url: str = ""
    hub_url: str = ""
    key_file: Path | None = None
    board_keys: list[str] = Field(default_factory=list)
    board_threshold: int | None = Field(default=None, ge=1)
    passphrase: SecretStr | None = None
    operator_token: SecretStr | None = None
    db_password: SecretStr | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    poll_ms: int = Field(default=1_000, ge=10)

    @classmethod
    def config_error(cls, message: str, field: str | None = None) -> Exception:
        return HelperError(Code.CONFIG, message, field)

    @model_validator(mode="after")
    def _derive_paths(self) -> HelperSettings:
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.data_dir / 'helper.db'}")
        apply_db_password(self, check_db_url(self.db_url), self.db_password,
                          self.db_password_file)
        if self.key_file is None:
            object.__setattr__(self, "key_file", self.data_dir / "helper.key")
        return self

    @property
    def key_path(self) -> Path:
        assert self.key_file is not None  # set by _derive_paths
        return self.key_file
