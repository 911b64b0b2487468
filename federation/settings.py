"""The base of every server's settings: a TOML file plus `PEERNET_*` environment variables.

Precedence (highest first): keyword arguments, environment variables, the TOML file. A
subclass names its secret fields (never written back to TOML; they come from the
environment) and how a bad configuration is reported (its package's exception with a stable
`config` code), so the CLI prints one plain line instead of a pydantic traceback.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

__all__ = ["TomlSettings", "toml_value"]

# The TOML file of the `load` call in progress; a context variable because pydantic-settings
# builds sources from the class, not from the call.
_TOML_PATH: ContextVar[Path | None] = ContextVar("peernet_settings_toml", default=None)


class TomlSettings(BaseSettings):
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    toml_header: ClassVar[str] = "# peernet configuration"

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

    @classmethod
    def config_error(cls, message: str, field: str | None = None) -> Exception:
        """The package's exception for a bad configuration (subclasses override)."""
        return ValueError(message)

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> Self:
        """Settings from the TOML file at `path` (if any), the environment and `overrides`;
        a missing file or a bad value raises `config_error` with one plain line."""
        if path is not None and not path.is_file():
            raise cls.config_error(f"config file not found: {path}")
        token = _TOML_PATH.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "config"
            raise cls.config_error(f"invalid config {where}: {err['msg']}", where) from None
        except (OSError, ValueError) as exc:  # unreadable or unparsable TOML
            raise cls.config_error(f"cannot read config {path}: {exc}") from None
        finally:
            _TOML_PATH.reset(token)

    def to_toml(self) -> str:
        """The non-secret settings as a TOML document (what `init` writes)."""
        lines = [self.toml_header]
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in self.secret_fields or value is None:
                continue
            lines.append(f"{name} = {toml_value(value)}")
        return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings
