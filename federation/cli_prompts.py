"""Secrets a command asks for: key passphrases and new passwords.

A passphrase comes from its environment variable when set; otherwise it is asked for, and
the prompt names the variable (`Key passphrase (or set PEERNET_PASSPHRASE)`). At a terminal
the answer is not echoed (click's hidden prompt). Without a terminal (a pipe, a service
manager) Python's getpass would warn that it cannot hide the input and fall back to echoing
it; these helpers read the line from stdin directly instead, and with nothing to read they
fail with one line naming the variable. `--password-stdin` at a terminal likewise prompts
without echo instead of reading a visible line.
"""

from __future__ import annotations

import os
import sys

import click

from federation.cli_errors import CliError

__all__ = ["ask_passphrase", "read_password"]


def _interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):  # closed or replaced stdin
        return False


def _read_line(prompt: str) -> str | None:
    click.echo(f"{prompt}: ", err=True, nl=False)
    line = sys.stdin.readline()
    click.echo("", err=True)
    return line.rstrip("\r\n") if line else None


def _ask(prompt: str, confirm: bool, missing: str) -> str:
    if _interactive():
        value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm,
                                  err=True)
        return value
    first = _read_line(prompt)
    if not first:
        raise CliError(missing, "secret_missing")
    if confirm:
        again = _read_line("Repeat for confirmation")
        if again != first:
            raise CliError("the two entries do not match", "secret_mismatch")
    return first


def ask_passphrase(env: str, *, what: str = "Key passphrase", confirm: bool = False) -> str:
    """The passphrase from `$env`, else asked for with a hint naming `env`."""
    value = os.environ.get(env)
    if value:
        return value
    return _ask(f"{what} (or set {env})", confirm,
                f"no passphrase given: set {env} or run the command at a terminal")


def read_password(from_stdin: bool, prompt: str = "Password") -> str:
    """A new password: a line of stdin with `--password-stdin` (hidden prompt at a
    terminal), else a hidden prompt with confirmation."""
    if from_stdin:
        if _interactive():
            value: str = click.prompt(prompt, hide_input=True, err=True)
            return value
        line = sys.stdin.readline()
        if not line.strip("\r\n"):
            raise CliError("--password-stdin: no password on standard input",
                           "secret_missing")
        return line.rstrip("\r\n")
    return _ask(prompt, True, "no password given: use --password-stdin or a terminal")
