"""`NodeSettings`: one pydantic-settings model for a node, from a TOML file plus environment.

Precedence (highest first): keyword arguments, `PEERNET_*` environment variables, the TOML
file. Secrets never go in the TOML file: the key-file passphrase comes from
`PEERNET_PASSPHRASE` (or a prompt in the CLI). Paths left empty derive from `data_dir`:
`db_url` -> `sqlite:///<data_dir>/node.db`, `key_file` -> `<data_dir>/node.key`,
`pseudonym_key_file` -> `<data_dir>/pseudonym.key`.

Unknown keys in the TOML file are refused (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from node.errors import Code, NodeError
from node.vocabulary import RecipientDiscipline
from protocol.ids import NODE_ID_PATTERN

__all__ = ["NodeSettings"]

_TOML_PATH: ContextVar[Path | None] = ContextVar("peernet_node_toml", default=None)


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PEERNET_", extra="forbid", validate_default=True, frozen=True
    )

    node_id: str = Field(pattern=NODE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    disciplines: list[RecipientDiscipline] = Field(default_factory=list)
    region: str = Field(default="", max_length=80)
    data_dir: Path = Path("./peernet-node")
    db_url: str = ""
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
    # Secrets and tuning (environment, not the TOML file).
    passphrase: SecretStr | None = None
    session_hours: int = Field(default=12, ge=1, le=168)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    audit_sign_interval_s: int = Field(default=60, ge=1)
    secure_cookies: bool | None = None  # default: on when public_url is https
    db_pool_size: int = Field(default=20, ge=1, le=500)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _derive_paths(self) -> NodeSettings:
        d = self.data_dir
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{d / 'node.db'}")
        if self.key_file is None:
            object.__setattr__(self, "key_file", d / "node.key")
        if self.pseudonym_key_file is None:
            object.__setattr__(self, "pseudonym_key_file", d / "pseudonym.key")
        if self.secure_cookies is None:
            object.__setattr__(self, "secure_cookies", self.public_url.startswith("https://"))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _TOML_PATH.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

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

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> NodeSettings:
        """Settings from the TOML file at `path` (if any), the environment and `overrides`.

        Raises `NodeError(config)` with one plain line for a missing file or a bad value.
        """
        if path is not None and not path.is_file():
            raise NodeError(Code.CONFIG, f"config file not found: {path}")
        token = _TOML_PATH.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "config"
            raise NodeError(Code.CONFIG, f"invalid config {where}: {err['msg']}", where) from None
        except (OSError, ValueError) as exc:  # unreadable or unparsable TOML
            raise NodeError(Code.CONFIG, f"cannot read config {path}: {exc}") from None
        finally:
            _TOML_PATH.reset(token)

    def to_toml(self) -> str:
        """The non-secret settings as a TOML document (what `peernet node init` writes)."""
        skip = {"passphrase"}
        lines = ["# peernet node configuration. Secrets come from PEERNET_PASSPHRASE."]
        for name in type(self).model_fields:
            if name in skip:
                continue
            value = getattr(self, name)
            if value is None:
                continue
            lines.append(f"{name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings
