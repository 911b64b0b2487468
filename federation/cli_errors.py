"""One error style for every `peernet` command: `Error: <plain sentence> [code]` on stderr,
exit status 1, no traceback.

Each package raises its own coded exception (`NodeError`, `HubError`, `FederationError`,
`KeystoreError`); `cli_error` turns any of them, a recognised database failure or an
operating-system error into a `CliError`, whose message click prints as
`Error: <message> [<code>]`. The `peernet` group (peernet/cli.py) applies it to every
subcommand, and each package's CLI uses `guard` for code that runs outside a command
(tests invoke the groups directly). A `click.ClickException` raised by a command with a
bare `"<code>: <message>"` text, or raised from a coded exception, is rewritten into the
same shape, so older commands follow the style without each being changed. Usage errors
(exit status 2) keep click's own form.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from enum import Enum
from typing import IO, Any, TypeVar

import click

from federation.db_errors import db_error

__all__ = ["CliError", "cli_error", "guard"]

T = TypeVar("T")
_CODED = re.compile(r"^([a-z][a-z0-9_]{1,40}): (.+)$", re.S)


class CliError(click.ClickException):
    """An expected failure of a command: one sentence and a stable code."""

    exit_code = 1

    def __init__(self, message: str, code: str = "failed") -> None:
        super().__init__(message)
        self.code = code

    def format_message(self) -> str:
        return f"{self.message} [{self.code}]"

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


def _code_of(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if isinstance(code, Enum):
        code = code.value
    return code if isinstance(code, str) and code else None


def cli_error(exc: BaseException, db_url: str | None = None) -> CliError | None:
    """`exc` in the CLI's one style; None for what is not an expected failure (a bug)."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, click.ClickException):
        if isinstance(exc, click.UsageError):
            return None
        inner = exc.__context__
        if inner is not None and not isinstance(inner, click.ClickException):
            from_inner = cli_error(inner, db_url)
            if from_inner is not None:
                return from_inner
        m = _CODED.match(exc.message)
        return CliError(m.group(2), m.group(1)) if m else CliError(exc.message)
    code = _code_of(exc)
    message = getattr(exc, "message", None)
    if code and isinstance(message, str) and not isinstance(exc, OSError):
        return CliError(message, code)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return CliError(f"address already in use: {_first_line(exc)}", "address_in_use")
    if db_url is not None:
        fed = db_error(exc, db_url)
        if fed is not None:
            return CliError(fed.message, fed.code)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return CliError(f"{exc.strerror or _first_line(exc)}{where}", "os_error")
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def guard(fn: Callable[[], T], db_url: str | None = None) -> T:
    """Run `fn`; expected failures leave as `CliError` (one line), bugs as they are."""
    try:
        return fn()
    except Exception as exc:
        err = cli_error(exc, db_url)
        if err is None or err is exc:
            raise
        raise err from None
