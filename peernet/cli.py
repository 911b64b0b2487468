"""The `peernet` command: a thin click layer over each server's `create_app` and services.

Subcommand groups live beside what they drive (`node.cli`, `hub.cli`, `federation.board_cli`)
and are attached here, the one place allowed to import both the node and the hub. Expected
failures print one line and exit non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import importlib

import click

# (command name, module, attribute); a group whose module is not importable yet is skipped so
# that the rest of the CLI keeps working while a package is being built.
_GROUPS = [
    ("node", "node.cli", "node_group"),
    ("hub", "hub.cli", "hub_group"),
    ("board", "federation.board_cli", "board_group"),
    ("roster", "federation.board_cli", "roster_group"),
    ("demo", "peernet.demo", "demo_command"),
]


@click.group()
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
