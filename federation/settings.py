"""The base of every server's settings: a TOML file plus `PEERNET_*` environment variables.

Precedence (highest first): keyword arguments, environment variables, the TOML file. A
subclass names its secret fields (never written back to TOML; they come from the
environment) and how a bad configuration is reported (its package's exception with a stable
`config` code), so the CLI prints one plain line instead of a pydantic traceback.

Config files are written owner-only (0600), atomically and without following a symlink
(`write_config`): they may name a database user and, for older setups, hold its password.
The database password can instead come from the environment (`db_password`, e.g.
`PEERNET_DB_PASSWORD`) or a file (`db_password_file`, e.g. a container secret):
`apply_db_password` puts it into the in-memory `db_url` only, and `to_toml` writes the URL as
configured, never the merged one. Fields named in `written_when_set` (e.g. `secure_cookies`,
derived from `public_url`) are written only when given explicitly, so a derived value is not
frozen into the file and re-derived when the URL changes later.
"""

from __future__ import annotations

import json
import os
import secrets
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import PrivateAttr, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

from federation.db_url import read_password_file, with_password

__all__ = ["TomlSettings", "apply_db_password", "toml_value", "write_config"]

# The TOML file of the `load` call in progress; a context variable because pydantic-settings
# builds sources from the class, not from the call.
_TOML_PATH: ContextVar[Path | None] = ContextVar("peernet_settings_toml", default=None)


class TomlSettings(BaseSettings):
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    written_when_set: ClassVar[frozenset[str]] = frozenset()
    toml_header: ClassVar[str] = "# peernet configuration"
    # Values `to_toml` writes instead of the live ones (the db_url before a password merge).
    _as_configured: dict[str, Any] = PrivateAttr(default_factory=dict)

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
            value = self._as_configured.get(name, getattr(self, name))
            if name in self.secret_fields or value is None:
                continue
            if name in self.written_when_set and name not in self.model_fields_set:
                continue
            lines.append(f"{name} = {toml_value(value)}")
        return "\n".join(lines) + "\n"


def apply_db_password(settings: TomlSettings, url: str, password: SecretStr | None,
                      password_file: Path | None) -> None:
    """Merge a database password from the environment or a file into `settings.db_url`
    (in memory; `to_toml` keeps writing `url`)."""
    if password is None and password_file is None:
        return
    if password is not None:
        secret = password.get_secret_value()
    else:
        assert password_file is not None
        secret = read_password_file(password_file)  # FederationError(db_login) if unreadable
    merged = with_password(url, secret)
    settings._as_configured["db_url"] = url
    object.__setattr__(settings, "db_url", merged)


def write_config(path: Path, text: str) -> None:
    """Write a config file readable by its owner only (0600), replacing atomically: the text
    goes to a new temporary file beside it (O_EXCL|O_NOFOLLOW: never an existing file or a
    link planted there) that is renamed over `path` (a symlink at `path` is replaced, not
    followed)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings
