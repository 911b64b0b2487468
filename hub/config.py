"""`HubSettings`: one pydantic-settings model for a hub, from a TOML file plus environment.

Precedence (highest first): keyword arguments, `PEERNET_HUB_*` environment variables, the TOML
file. Secrets (`passphrase` for the key file, `operator_token`) come from the environment
only. Empty paths derive from `data_dir`: `db_url` -> `sqlite:///<data_dir>/hub.db`,
`key_file` -> `<data_dir>/hub.key`.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hub.errors import Code, HubError
from protocol.ids import NODE_ID_PATTERN

__all__ = ["HubSettings"]

_TOML_PATH: ContextVar[Path | None] = ContextVar("peernet_hub_toml", default=None)


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PEERNET_HUB_", extra="forbid", validate_default=True, frozen=True
    )

    hub_id: str = Field(pattern=NODE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    region: str = Field(default="state", max_length=63)
    data_dir: Path = Path("./peernet-hub")
    db_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    public_url: str = ""
    key_file: Path | None = None
    board_keys: list[str] = Field(default_factory=list)
    board_threshold: int | None = Field(default=None, ge=1)
    # Secrets and tuning (environment, not the TOML file).
    passphrase: SecretStr | None = None
    operator_token: SecretStr | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    relay_poll_ms: int = Field(default=1_000, ge=10)

    @model_validator(mode="after")
    def _derive_paths(self) -> HubSettings:
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.data_dir / 'hub.db'}")
        if self.key_file is None:
            object.__setattr__(self, "key_file", self.data_dir / "hub.key")
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
    def key_path(self) -> Path:
        assert self.key_file is not None  # set by _derive_paths
        return self.key_file

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> HubSettings:
        if path is not None and not path.is_file():
            raise HubError(Code.CONFIG, f"config file not found: {path}")
        token = _TOML_PATH.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "config"
            raise HubError(Code.CONFIG, f"invalid config {where}: {err['msg']}", where) from None
        except (OSError, ValueError) as exc:
            raise HubError(Code.CONFIG, f"cannot read config {path}: {exc}") from None
        finally:
            _TOML_PATH.reset(token)

    def to_toml(self) -> str:
        skip = {"passphrase", "operator_token"}
        lines = ["# peernet hub configuration. Secrets come from PEERNET_HUB_PASSPHRASE."]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in skip or value is None:
                continue
            lines.append(f"{name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
