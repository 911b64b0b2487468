"""Database URLs as operators write them: checked early, shown without secrets, and given
their password from outside the URL.

A URL in a config file or on a command line leaks its password to backups, shell history and
`ps`, so the password may instead come from an environment variable or a file (a container
secret); `with_password` puts it into the URL only in memory. Every message that names a
database uses `redact`, which drops the password entirely (not `***`: an operator should not
wonder whether the stars are the password).

Only PostgreSQL (`postgresql://`, asyncpg) and SQLite (`sqlite:///`, aiosqlite) are
supported; anything else is refused with one line before a driver is imported.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from federation.errors import FedCode, FederationError

__all__ = ["SUPPORTED", "check_db_url", "parse_db_url", "read_password_file", "redact",
           "with_password"]

SUPPORTED = ("postgresql", "sqlite")


def parse_db_url(url: str) -> URL:
    """The parsed URL of a supported backend; `FederationError(db_url)` otherwise."""
    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        raise FederationError(
            FedCode.DB_URL, "the database URL cannot be read: use postgresql://user@host/name "
            "or sqlite:///path/to/file.db", "db_url") from None
    backend = u.get_backend_name()
    if backend not in SUPPORTED:
        raise FederationError(
            FedCode.DB_URL, f"unsupported database {redact(url)}: peernet runs on PostgreSQL "
            "(postgresql://...) or SQLite (sqlite:///...)", "db_url")
    return u


def check_db_url(url: str) -> str:
    """`url` unchanged when it names a supported backend (for settings validators)."""
    parse_db_url(url)
    return url


def redact(url: str | URL) -> str:
    """The URL without its password, for messages; a plain marker when it cannot be parsed."""
    try:
        u = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return "<unreadable database URL>"
    # URL.set(password=None) keeps the password; the named tuple's _replace drops it.
    return u._replace(password=None).render_as_string(hide_password=False)


def with_password(url: str, password: str) -> str:
    """`url` with `password` in it (escaped as the URL needs), replacing one already there."""
    return parse_db_url(url).set(password=password).render_as_string(hide_password=False)


def read_password_file(path: Path) -> str:
    """The first line of a password file (a trailing newline is not part of the password)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FederationError(
            FedCode.DB_LOGIN, f"cannot read db_password_file {path}: {exc.strerror}",
            "db_password_file") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise FederationError(FedCode.DB_LOGIN, f"db_password_file {path} is empty",
                              "db_password_file")
    return lines[0]
