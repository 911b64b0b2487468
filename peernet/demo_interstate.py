"""`peernet demo --interstate`: two state networks under one compact, in under a minute.

    peernet demo --interstate [--dir D] [--json FILE] [--months M] [--per-month K]

Steps (one progress line each):

1. two states, Hawaii (`hi`) and California (`ca`), each with its own board (3 keys sealed at
   rest, threshold 2), its own hub (`hi-hub`, `ca-hub`) and three agency nodes, each a real
   server on loopback with its own SQLite database, joined by a roster its own board signs
   (`peernet.demo_interstate_network`); users on every node and a short synthetic history
   (`peernet.demo_seed`);
2. the compact: drawn up, signed by 2 of 3 keys of *each* board, combined (every member
   board's threshold checked), verified by each state against its own pinned board, and
   installed at both hubs; each hub fetches the other network's roster from the hub the
   compact names and verifies it against that network's board keys in the compact;
3. the interstate incident (`peernet.demo_interstate_incident`): a Maui coordinator browses
   California's directory, asks California agencies for teams, they offer, Maui accepts,
   a California team hands a follow-up across the line, and both hubs log the thread;
4. both states release their months to their own hub (each node through its own privacy
   ledger), the hubs exchange their signed state statistics, and each hub shows the
   national view (`GET /api/v1/national`) with both states reporting.

The summary (`--json`) holds no record content. It says which interstate pieces ran; a
piece the running code does not provide yet is listed under `missing` with the reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click
from click.core import ParameterSource

from federation.cli_errors import CliError
from hub.relay.directory import directory_listing
from node.core.appkeys import DB
from node.privacy.ledger import LedgerEntry, record_release
from node.privacy.schema import ReleasePolicy
from peernet.demo_interstate_incident import play_interstate_incident
from peernet.demo_interstate_network import (
    COMPACT_ID,
    STATES,
    StateNet,
    build_compact,
    fetch_rosters,
    prepare_state,
    start_hub,
    start_nodes,
)
from peernet.demo_network import BOARD_KEYS, BOARD_THRESHOLD, OPERATOR_TOKEN, DemoClock
from peernet.demo_seed import UserSet, create_users, month_starts, seed_node
from protocol.canonical import parse_json
from protocol.messages import MessageType

__all__ = ["InterstateOptions", "interstate_options", "run_interstate_demo"]

# As in the one-state demo (peernet.demo): a small population needs a readable budget.
DEMO_POLICY = {"privacy.budget_per_node_year": "24", "privacy.per_person_month": 2}


@dataclass(frozen=True)
class InterstateOptions:
    directory: Path
    months: int = 2
    per_month: int = 12
    seed: int = 19


def interstate_options(directory: Path, ctx: click.Context) -> InterstateOptions:
    """Options from `peernet demo`'s: --months, --per-month and --seed when given (the
    one-state defaults are larger than two states need to show the national view)."""
    if ctx.params.get("serve"):
        raise CliError("--serve runs the one-state demo; drop it with --interstate",
                       "bad_option")
    given = {k: ctx.params[k] for k in ("months", "per_month", "seed")
             if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    return InterstateOptions(directory, **given)


class _Progress:
    def __init__(self, echo: Callable[[str], None]) -> None:
        self.t0 = time.monotonic()
        self.echo = echo

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.t0:5.1f}s] {message}")


async def _release(st: StateNet, months: list[str]) -> int:
    """Every node of the state releases every month to its own hub (ledger first)."""
    before = await st.net.failed()
    n = 0
    for s in st.net.nodes:
        assert s.app is not None
        fed = s.fed
        policy = ReleasePolicy.from_roster_policy(fed.state.policy)

        async def send(conn: Any, entry: LedgerEntry, fed: Any = fed) -> None:
            await fed.send(conn, st.hub_id, MessageType.AGGREGATE_RELEASE,
                           parse_json(entry.body))

        for month in months:
            await record_release(
                s.app[DB], node_id=s.node_id, month=month, policy=policy,
                signing_key=s.keys.signing_key, key_version=s.keys.key_version,
                now_ms=st.net.clock.now_ms(), on_recorded=send)
            n += 1
    left = await st.net.settle() - before  # a stopped incident may have left some behind
    if left > 0:
        raise RuntimeError(f"{left} release message(s) not acknowledged by {st.hub_id}")
    return n


async def _browse(a: StateNet, b: StateNet) -> dict[str, Any]:
    """Network b's public directory as a's hub serves it (`GET /api/v1/directory?network=`:
    b's roster, verified through the compact); from a's held roster of b in-process when
    the running hub has no such route."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{a.net.hub.url}/api/v1/directory",
                            params={"network": b.network_id}) as r:
            if r.status == 200:
                doc: dict[str, Any] = await r.json()
                if doc.get("network_id") == b.network_id:
                    return doc
    assert a.foreign is not None
    return directory_listing(a.foreign.roster_of(b.network_id))


async def _interstate_status(st: StateNet) -> dict[str, Any] | None:
    """The hub operator's interstate page (`GET /api/v1/interstate`) when the hub has it."""
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{st.net.hub.url}/api/v1/interstate") as r:
            if r.status != 200:
                return None
            doc: dict[str, Any] = await r.json()
            return doc


async def _national(st: StateNet, months: list[str]) -> dict[str, Any]:
    """Refresh the peers' signed statistics at this hub, then read its national view."""
    q = {"month_from": months[0], "month_to": months[-1]}
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{st.net.hub.url}/api/v1/national/refresh", params=q) as r:
            r.raise_for_status()
            fetched = (await r.json())["peers"]
        async with http.get(f"{st.net.hub.url}/api/v1/national", params=q) as r:
            r.raise_for_status()
            view = await r.json()
    return {"fetched": fetched, "view": view}


def _fig(fig: Any) -> str:
    if not isinstance(fig, dict):
        return "-"
    d = fig.get("display") or fig
    lo, hi = d["interval"]
    return f"{d['estimate']} [{lo}-{hi}]"


def format_national(network_id: str, doc: dict[str, Any]) -> list[str]:
    view = doc["view"]
    lines = [f"{network_id}-hub national view (own state {view['own_network']}; networks "
             f"{', '.join(view['networks'])}): encounters, estimate [95% interval]"]
    for m in view["months"]:
        lines.append(f"  {m['month']}  states reporting {','.join(m['states_reporting']) or '-'}"
                     f"  missing {','.join(m['states_missing']) or '-'}  "
                     f"agencies {m['nodes_reporting']}  encounters {_fig(m['encounters'])}")
    return lines


async def run_interstate_demo(
    opts: InterstateOptions,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    progress = _Progress(echo)
    clock = DemoClock()
    states: list[StateNet] = []
    try:
        for spec in STATES:
            states.append(await prepare_state(opts.directory / spec.network_id, spec, clock,
                                              DEMO_POLICY))
            progress(f"{spec.network_id} ({spec.name}): board {BOARD_THRESHOLD} of "
                     f"{BOARD_KEYS} keys sealed at rest, roster v1 signed and verified, "
                     f"hub {spec.hub_id}, agencies "
                     + ", ".join(f"{spec.network_id}/{a.node_id}" for a in spec.agencies))
        a, b = states

        t = time.monotonic()
        signed = build_compact(opts.directory / "compact", states, clock.now_ms())
        progress(f"compact {COMPACT_ID} v{signed.version} signed by {BOARD_THRESHOLD} of "
                 f"{BOARD_KEYS} keys of each board ({', '.join(s.network_id for s in states)}),"
                 f" combined and verified by each state against its own pinned board")
        for st in states:
            await start_hub(st, signed)
        foreign = {st.network_id: await fetch_rosters(st, [o for o in states if o is not st])
                   for st in states}
        progress(", ".join(f"{st.hub_id} on {st.net.hub.url}" for st in states)
                 + ": each installed the compact and fetched the other network's roster "
                 "from the hub the compact names, verified against that board's keys in it")
        for st in states:
            await start_nodes(st)
        progress("six agencies serving, each holding its own roster, the compact and the "
                 "other network's roster (from its hub, verified again)")
        timings = {"networks_s": sum(st.net.timings["network_s"] for st in states),
                   "compact_s": time.monotonic() - t}

        t = time.monotonic()
        users: dict[str, dict[str, UserSet]] = {}
        starts = month_starts(clock.now_ms(), opts.months)
        months = [d.strftime("%Y-%m") for d in starts]
        jobs = []
        for k, st in enumerate(states):
            users[st.network_id] = {}
            for i, n in enumerate(st.net.nodes):
                users[st.network_id][n.node_id] = await create_users(n, clock)
                jobs.append(seed_node(n, users[st.network_id][n.node_id], st.net, starts,
                                      opts.per_month, opts.seed * 1000 + 100 * k + i))
        seeded = await asyncio.gather(*jobs)
        progress(f"users on all six agencies; {sum(r.encounters for r in seeded)} encounters "
                 f"seeded over {months[0]}..{months[-1]} (recipients pseudonymized)")
        timings["seed_s"] = time.monotonic() - t

        directory = await _browse(a, b)  # the public listing at a's hub (summary)

        t = time.monotonic()
        incident = await play_interstate_incident(a, b, users, progress)
        timings["incident_s"] = time.monotonic() - t

        t = time.monotonic()
        releases = {st.network_id: await _release(st, months) for st in states}
        progress("releases: " + ", ".join(f"{k} {v} agency-months to {k}-hub"
                                         for k, v in releases.items())
                 + " (each through the agency's own privacy ledger)")
        national = {st.network_id: await _national(st, months) for st in states}
        timings["national_s"] = time.monotonic() - t
        for nid, doc in national.items():
            fetched = ", ".join(f"{p['network_id']} {p['status']}" for p in doc["fetched"])
            progress(f"{nid}-hub fetched the other states' signed statistics: {fetched}")
        echo("")
        for nid, doc in national.items():
            for line in format_national(nid, doc):
                echo("  " + line)
        echo("")

        undelivered = 0
        for st in states:
            undelivered += await st.net.undelivered()
        both = sorted(st.network_id for st in states)
        reporting = {nid: all(m["states_reporting"] == both for m in doc["view"]["months"])
                     for nid, doc in national.items()}
        summary: dict[str, Any] = {
            "compact": {"compact_id": COMPACT_ID, "version": signed.version,
                        "sha256": signed.sha256,
                        "networks": [m.network_id for m in signed.compact.members()],
                        "installed_at": [st.hub_id for st in states if st.compact is not None]},
            "networks": [
                {"network_id": st.network_id, "name": st.spec.name, "hub_id": st.hub_id,
                 "hub_url": st.net.hub.url, "board": {"keys": BOARD_KEYS,
                                                      "threshold": BOARD_THRESHOLD},
                 "roster_version": st.net.roster.version,
                 "agencies": [f"{st.network_id}/{n.node_id}" for n in st.net.nodes],
                 "foreign_rosters": foreign[st.network_id]}
                for st in states
            ],
            "hub_interstate_status": {st.hub_id: await _interstate_status(st)
                                      for st in states},
            "directory_seen_by": {a.network_id: {
                "network_id": b.network_id, "roster_version": directory["roster_version"],
                "agencies": [{"node_id": n["node_id"], "name": n["name"],
                              "disciplines": n["disciplines"], "region": n["region"]}
                             for n in directory["nodes"] if "agency" in n.get("roles", [])]}},
            "months": months,
            "incident": incident.to_json(),
            "releases": releases,
            "national": {nid: {"own_network": doc["view"]["own_network"],
                               "networks": doc["view"]["networks"],
                               "fetched": doc["fetched"],
                               "states_reporting": [m["states_reporting"]
                                                    for m in doc["view"]["months"]],
                               "all_months_both_states": reporting[nid]}
                         for nid, doc in national.items()},
            "undelivered": undelivered,
            "missing": incident.missing,
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
        }
        summary["elapsed_s"] = round(time.monotonic() - progress.t0, 2)
        progress(f"done: {undelivered} undelivered messages; national view with both states "
                 f"at {', '.join(k + '-hub' for k, v in reporting.items() if v)}"
                 + (f"; not run: {'; '.join(incident.missing)}" if incident.missing else ""))
        return summary
    finally:
        for st in reversed(states):
            await st.net.close()
