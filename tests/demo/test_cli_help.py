"""Every `peernet` option says what it is for (issue 13, item 13: 58 options had no help).

Walks the whole click tree: each option needs help text, and each command or group needs a
description unless its arguments say it all (a command with none needs one)."""

from __future__ import annotations

import click

from peernet.cli import main


def undocumented(cmd: click.Command, path: tuple[str, ...] = ("peernet",)) -> list[str]:
    found = [f"{' '.join(path)} {p.opts[0]}" for p in cmd.params
             if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    has_args = any(isinstance(p, click.Argument) for p in cmd.params)
    if not (cmd.help or "").strip() and (isinstance(cmd, click.Group) or not has_args):
        found.append(f"{' '.join(path)} (no description)")
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            found += undocumented(sub, (*path, name))
    return found


def test_every_option_and_command_has_help() -> None:
    missing = undocumented(main)
    assert not missing, f"{len(missing)} without help text:\n" + "\n".join(missing)


def test_the_walk_finds_a_bare_option_and_command() -> None:
    @click.group("g", help="A group.")
    def g() -> None: ...

    @g.command("bare")
    @click.option("--thing")
    def bare(thing: str | None) -> None: ...

    assert undocumented(g, ("g",)) == ["g bare --thing", "g bare (no description)"]
    node = main.commands["node"]  # the real tree nests groups three levels deep
    assert isinstance(node, click.Group) and "activation" in node.commands
