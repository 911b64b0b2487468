"""The `peernet` command: a thin click layer over each server's `create_app` and services.

Subcommand groups live beside what they drive (`node.cli`, `hub.cli`, `federation.board_cli`)
and are attached here, the one place allowed to import both the node and the hub. Expected
failures print one line, `Error: <plain sentence> [code]`, and exit 1 (`_OneErrorStyle`);
tracebacks are for bugs only.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from federation.cli_errors import cli_error

# (command name, module, attribute); a group whose module is not importable yet is skipped so
# that the rest of the CLI keeps working while a package is being built.
_GROUPS = [
    ("node", "node.cli", "node_group"),
    ("hub", "hub.cli", "hub_group"),
    ("helper", "helper.cli", "helper_group"),
    ("board", "federation.board_cli", "board_group"),
    ("roster", "federation.board_cli", "roster_group"),
    ("demo", "peernet.demo", "demo_command"),
]


class _OneErrorStyle(click.Group):
    """Every subcommand's expected failure in one style (`federation.cli_errors`):
    `Error: <plain sentence> [code]`, exit 1; bugs keep their traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            err = cli_error(exc)
            if err is None or err is exc:
                raise
            raise err from None


@click.group(cls=_OneErrorStyle)
@click.version_option(package_name="peernet")
def main() -> None:
    """peernet: federated peer support for fire, EMS, 911, law enforcement and corrections."""


def _attach() -> None:
    for name, module, attr in _GROUPS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
                continue
            raise
        cmd = getattr(mod, attr)
        main.add_command(cmd, name)


_attach()
