"""Settings every server shares for its metrics and logs (a base between `TomlSettings` and
each server's settings class).

`/metrics` is never open by default: it answers on the main address only to a bearer
`metrics_token` (from `PEERNET_METRICS_TOKEN`), or on its own `metrics_host:metrics_port`
listener (loopback by default) that only the monitoring system can reach. `log_format`
chooses plain text or one JSON object per line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from federation.settings import TomlSettings

__all__ = ["ObserveSettings"]


class ObserveSettings(TomlSettings):
    metrics_token: SecretStr | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
