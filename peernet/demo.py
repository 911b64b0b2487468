"""`peernet demo`: the whole network in one command, on loopback, with SQLite.

    peernet demo [--dir D] [--nodes N] [--serve] [--json FILE] [--months M] [--per-month K]
                 [--aggregation local|shared]

Steps (one progress line each):

1. a state board (3 keys sealed at rest, threshold 2), a state hub and N >= 5 agency nodes
   (fire, EMS, 911, law enforcement, corrections; regions north and south), each a real
   aiohttp server on its own loopback port with its own SQLite database, key files and
   config, joined by a roster the board signs (`peernet.demo_network`);
2. users for every role on every node, and M months of synthetic encounters and follow-ups
   through the node services (`peernet.demo_seed`);
3. a large incident: request, offers, a decline, acceptance, mobilization, on scene,
   demobilization, follow-up hand-offs, close; plus an expired and a cancelled request
   (`peernet.demo_incident`);
4. each node's monthly releases through its privacy ledger to the hub, and the state
   board's view: estimates with 95% intervals by month and discipline, and the central
   activation log (`peernet.demo_summary`).

With `--aggregation shared` a helper aggregator joins the roster and step 4 sends each
node-month as two additive shares instead (`peernet.demo_shared`, which also says what
each mode protects).

It exits 0 only when every message was acknowledged end to end (no undelivered outbox or
relay row). `--serve` then keeps the network up and prints every page's address with demo
logins; `--json FILE` writes a machine-readable summary (no record content in it).

`run_demo(...)` is the same thing as a coroutine, for the test suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from federation.cli_errors import CliError
from peernet.demo_deploy import register as _register_public_info
from peernet.demo_incident import play_incident, states_reached
from peernet.demo_network import (
    BOARD_KEYS,
    BOARD_THRESHOLD,
    DEMO_PASSPHRASE,
    HUB_ID,
    OPERATOR_TOKEN,
    DemoClock,
    DemoNetwork,
    agency_specs,
    build_network,
)
from peernet.demo_seed import DEMO_PASSWORD, UserSet, create_users, month_starts, seed_node
from peernet.demo_shared import make_shared
from peernet.demo_summary import (
    board_view,
    format_activation_log,
    format_board_view,
    ledger_summary,
    make_releases,
)

__all__ = ["DemoOptions", "demo_command", "run_demo"]

_register_public_info()  # `peernet node public-info` (see peernet.demo_deploy)

ALL_STATES = ["draft", "requested", "offered", "accepted", "declined", "expired", "mobilized",
              "on_scene", "demobilized", "closed", "cancelled"]
HUB_ROLES = ("operator", "board_analyst")
# The board's privacy policy for the demo. Five agencies with a few dozen contacts a month
# each are a very small population: under the default policy (rho 1.0 per node-year, 4
# contacts per person-month) the noise is larger than the counts. The demo board spends
# more and bounds contributions tighter so the intervals are readable; it says so.
DEMO_BUDGET = "24"
DEMO_PER_PERSON_MONTH = 2


@dataclass(frozen=True)
class DemoOptions:
    directory: Path
    nodes: int = 5
    months: int = 6
    per_month: int = 50
    seed: int = 7
    serve: bool = False
    budget: str = DEMO_BUDGET
    per_person_month: int = DEMO_PER_PERSON_MONTH
    aggregation: str = "local"  # "shared": with a helper aggregator (peernet.demo_shared)


class Progress:
    """One line per step, with the time since the start."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.t0 = time.monotonic()
        self.echo = echo

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.t0:5.1f}s] {message}")


async def run_demo(
    opts: DemoOptions,
    echo: Callable[[str], None] = print,
    *,
    keep_running: Callable[[DemoNetwork, dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Build, seed, play, release, report; returns the summary. With `keep_running`, it is
    awaited (with the network still up) before the network closes."""
    progress = Progress(echo)
    clock = DemoClock()
    specs = agency_specs(opts.nodes)
    policy = {"privacy.budget_per_node_year": opts.budget,
              "privacy.per_person_month": opts.per_person_month}
    net = await build_network(opts.directory, specs, clock, progress, policy,
                              helper=opts.aggregation == "shared")
    try:
        t = time.monotonic()
        users: dict[str, UserSet] = {}
        for n in net.nodes:
            users[n.node_id] = await create_users(n, clock)
        starts = month_starts(clock.now_ms(), opts.months)
        months = [d.strftime("%Y-%m") for d in starts]
        results = await asyncio.gather(*(
            seed_node(n, users[n.node_id], net, starts, opts.per_month, opts.seed * 1000 + i)
            for i, n in enumerate(net.nodes)
        ))
        seeded = {n.node_id: r for n, r in zip(net.nodes, results, strict=True)}
        total = sum(r.encounters for r in results)
        progress(f"seeded {total} encounters and {sum(r.follow_ups for r in results)} "
                 f"follow-ups over {months[0]}..{months[-1]} through the node services "
                 f"(7 users per node; recipients pseudonymized, never printed)")
        net.timings["seed_s"] = time.monotonic() - t

        t = time.monotonic()
        incident = await play_incident(net, users, progress)
        net.timings["incident_s"] = time.monotonic() - t

        t = time.monotonic()
        releases = await (make_shared if net.helper else make_releases)(net, months, progress)
        stats, log = await board_view(net, months)
        ledgers = await ledger_summary(net)
        net.timings["release_s"] = time.monotonic() - t

        echo("")
        echo(f"State board view: encounters per month, estimate [95% interval], from the "
             f"hub's differentially private aggregates ({len(net.nodes)} agencies)")
        for line in format_board_view(stats):
            echo("  " + line)
        actual = {m: sum(r.by_month.get(m, 0) for r in results) for m in months}
        echo("  actual encounters logged (known only to the nodes, never sent): "
             + ", ".join(f"{m}: {v}" for m, v in actual.items())
             + f"; total {sum(actual.values())}")
        echo("")
        echo("Central activation log at the hub (metadata only: who asked whom, when, "
             "state, counts)")
        for line in format_activation_log(log):
            echo("  " + line)
        echo("")

        reached = await states_reached(net)
        union = sorted({s for v in reached.values() for s in v}
                       | {e["state"] for e in log})
        undelivered = await net.undelivered()
        summary: dict[str, Any] = {
            "board": {"keys": BOARD_KEYS, "threshold": BOARD_THRESHOLD,
                      "roster_version": net.roster.version, "roster_sha256": net.roster.sha256},
            "hub": {"node_id": HUB_ID, "url": net.hub.url},
            "aggregation": opts.aggregation,
            "nodes": [
                {"node_id": n.node_id, "name": n.name, "discipline": n.discipline,
                 "region": n.region, "url": n.url,
                 "encounters_seeded": seeded[n.node_id].encounters,
                 "follow_ups_seeded": seeded[n.node_id].follow_ups,
                 "follow_ups_done": seeded[n.node_id].follow_ups_done}
                for n in net.nodes
            ],
            "months": months,
            "policy": policy,
            "activations": {
                "ids": incident.activations,
                "states_reached": union,
                "all_states_reached": set(ALL_STATES) <= set(union),
                "states_by_node": reached,
                "hub_log_entries": len(log),
                "handoffs": incident.handoffs,
                "field_encounters": incident.field_encounters,
            },
            "releases": releases,
            "ledger": ledgers,
            "board_statistics": {
                "disciplines": stats["disciplines"],
                "months": [
                    {"month": m["month"], "nodes_reporting": m["nodes_reporting"],
                     "encounters": _figure(m["encounters"]),
                     "by_discipline": {d: _figure(f) for d, f in m["by_discipline"].items()},
                     "referral_rate": _figure(m["referral_rate"]),
                     "follow_up_on_time_rate": _figure(m["follow_up_on_time_rate"])}
                    for m in stats["months"]
                ],
                "total": {"node_months": stats["total"]["node_months"],
                          "encounters": _figure(stats["total"]["encounters"]),
                          "by_discipline": {d: _figure(f) for d, f in
                                            stats["total"]["by_discipline"].items()}},
            },
            "undelivered": undelivered,
            "timings_s": {k: round(v, 2) for k, v in net.timings.items()},
        }
        summary["elapsed_s"] = round(time.monotonic() - progress.t0, 2)
        progress(f"done: {undelivered} undelivered messages, every ledger within budget: "
                 f"{all(v['within_budget'] for v in ledgers.values())}, all activation "
                 f"states reached: {summary['activations']['all_states_reached']}")
        if keep_running is not None:
            await keep_running(net, summary)
        return summary
    finally:
        await net.close()


def _figure(fig: dict[str, Any] | None) -> dict[str, Any] | None:
    if fig is None:
        return None
    return {"estimate": fig["estimate"], "interval": fig["interval"], "se": fig["se"]}


async def _hub_users(net: DemoNetwork) -> dict[str, str]:
    """Hub logins for both roles, when the hub has user accounts (`hub.users.accounts`)."""
    try:
        from hub.appkeys import DB as HUB_DB
        from hub.users import accounts as hub_users
    except ImportError:
        return {}
    create: Any = getattr(hub_users, "create_user", None)
    key: Any = getattr(hub_users, "HASHER", None)
    assert net.hub.app is not None
    if create is None or key is None or key not in net.hub.app:
        return {}
    hasher = net.hub.app[key]
    made = {}
    for role, name in (("operator", "operator"), ("board_analyst", "analyst")):
        with contextlib.suppress(Exception):
            await create(net.hub.app[HUB_DB], hasher, username=name, password=DEMO_PASSWORD,
                         role=role, now_ms=net.clock.now_ms())
            made[role] = name
    return made


async def _serve_forever(net: DemoNetwork, summary: dict[str, Any]) -> None:
    hub_logins = await _hub_users(net)
    click.echo("")
    click.echo("The network keeps running. Web pages (log in with the password "
               f"{DEMO_PASSWORD!r}):")
    for n in net.nodes:
        click.echo(f"  {n.name} ({n.node_id}, {n.discipline}, {n.region}): {n.url}/login")
        click.echo("      users: peer1..peer4 (peer_supporter), coordinator, admin, auditor")
    click.echo(f"  State hub ({HUB_ID}): {net.hub.url}/login  "
               f"(board dashboard: {net.hub.url}/dashboard)")
    if hub_logins:
        click.echo("      users: " + ", ".join(f"{u} ({r})" for r, u in hub_logins.items()))
    click.echo(f"      API: curl -H 'Authorization: Bearer {OPERATOR_TOKEN}' "
               f"{net.hub.url}/api/v1/stats")
    click.echo(f"  Files (configs, databases, sealed keys; passphrase {DEMO_PASSPHRASE!r}): "
               f"{net.root}")
    click.echo("Press Ctrl-C to stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    click.echo("stopping")


def _run(coro: Any) -> Any:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:
        return asyncio.run(coro)


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Keep the network's files here (default: a temporary "
              "directory, removed afterwards). Must be empty or absent.")
@click.option("--nodes", type=click.IntRange(5, 40), default=5, show_default=True,
              help="Agency nodes (at least one per discipline).")
@click.option("--serve", is_flag=True, help="Keep the network running and print the pages "
              "with demo logins.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write a machine-readable summary here.")
@click.option("--months", type=click.IntRange(1, 12), default=6, show_default=True,
              help="Months of synthetic history (each is released).")
@click.option("--per-month", type=click.IntRange(1, 500), default=50, show_default=True,
              help="Average encounters per node per month.")
@click.option("--seed", type=int, default=7, show_default=True,
              help="Random seed of the synthetic history.")
@click.option("--budget", default=DEMO_BUDGET, show_default=True,
              help="Privacy budget per node-year the demo board sets (zCDP rho).")
@click.option("--aggregation", type=click.Choice(["local", "shared"]), default="local",
              show_default=True, help="local: one noisy release per agency-month; shared: "
              "a helper aggregator and additive shares (the demo says what each protects).")
@click.option("--interstate", is_flag=True, help="Two state networks under a compact and an "
              "interstate incident instead (peernet.demo_interstate; uses --dir, --json, "
              "--months, --per-month, --seed).")
def demo_command(directory: Path | None, nodes: int, serve: bool, json_path: Path | None,
                 months: int, per_month: int, seed: int, budget: str,
                 aggregation: str, interstate: bool = False) -> None:
    """Run a whole peernet network on loopback: board, hub, agencies, an incident,
    private statistics."""
    temp: str | None = None
    if directory is None:
        temp = tempfile.mkdtemp(prefix="peernet-demo-")
        directory = Path(temp)
    elif directory.exists() and any(directory.iterdir()):
        raise CliError(f"{directory} is not empty; give a new or empty directory",
                       "dir_not_empty")
    opts = DemoOptions(directory.resolve(), nodes, months, per_month, seed, serve, budget,
                       aggregation=aggregation)
    try:
        if interstate:  # imported here: it imports this module's neighbours, not this one
            from peernet.demo_interstate import interstate_options, run_interstate_demo

            summary = _run(run_interstate_demo(
                interstate_options(opts.directory, click.get_current_context()),
                click.echo))
        else:
            summary = _run(run_demo(opts, click.echo,
                                    keep_running=_serve_forever if serve else None))
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")
        click.echo(f"summary written to {json_path}")
    if summary["undelivered"]:
        raise CliError(f"{summary['undelivered']} messages were not delivered", "undelivered")
