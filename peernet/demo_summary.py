"""The demo's last act: monthly releases, the state board's view, and the summary.

Releases: each node records one release per seeded month through its privacy ledger
(`node.privacy.ledger.record_release`, under the roster policy it holds) and, in the same
transaction, queues it to the hub as an `aggregate_release` (the path of
`node.privacy.runtime`): the ledger row and the outbox row commit together, and the outbox
resends the stored bytes until the hub's signed ack comes back.

The board's view is what a board analyst reads over HTTP: `GET /api/v1/stats` (estimates
with 95% intervals by month and discipline, answered only from releases already received)
and `GET /api/v1/activation-log` (metadata only). The summary (`--json`) is built from the
same documents plus each node's ledger and the network's delivery counters; it holds no
record, no pseudonym and no employee number.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp

from node.core.appkeys import DB
from node.privacy.ledger import LedgerEntry, ledger_entries, record_release
from node.privacy.schema import ReleasePolicy
from peernet.demo_network import HUB_ID, OPERATOR_TOKEN, DemoNetwork
from protocol.canonical import parse_json
from protocol.messages import MessageType

__all__ = [
    "DISCIPLINE_LABELS",
    "board_view",
    "format_activation_log",
    "format_board_view",
    "ledger_summary",
    "make_releases",
]

DISCIPLINE_LABELS = {"fire": "fire", "ems": "EMS", "dispatch_911": "911",
                     "law_enforcement": "law enf.", "corrections": "corrections",
                     "other": "other"}


async def make_releases(
    net: DemoNetwork, months: list[str], progress: Callable[[str], None]
) -> int:
    """Every node releases every month (ledger first, then the hub); returns the count."""
    n = 0
    for s in net.nodes:
        assert s.app is not None
        fed = s.fed
        policy = ReleasePolicy.from_roster_policy(fed.state.policy)

        async def send(conn: Any, entry: LedgerEntry, fed: Any = fed) -> None:
            await fed.send(conn, HUB_ID, MessageType.AGGREGATE_RELEASE, parse_json(entry.body))

        for month in months:
            await record_release(
                s.app[DB], node_id=s.node_id, month=month, policy=policy,
                signing_key=s.keys.signing_key, key_version=s.keys.key_version,
                now_ms=net.clock.now_ms(), on_recorded=send,
            )
            n += 1
    left = await net.settle()
    if left:
        raise RuntimeError(f"{left} release message(s) not acknowledged by the hub")
    progress(f"{n} monthly releases recorded in the nodes' ledgers and acked by the hub "
             f"({months[0]} to {months[-1]}, {policy.measure.value}, "
             f"{policy.budget_per_node_year} per node-year)")
    return n


async def ledger_summary(net: DemoNetwork) -> dict[str, Any]:
    """Per node: its ledger rows and the budget they spent against the allowance."""
    out: dict[str, Any] = {}
    for s in net.nodes:
        assert s.app is not None
        policy = ReleasePolicy.from_roster_policy(s.fed.state.policy)
        entries = await ledger_entries(s.app[DB], s.node_id)
        by_year: dict[str, Decimal] = {}
        for e in entries:
            by_year[e.month[:4]] = by_year.get(e.month[:4], Decimal(0)) + Decimal(e.budget_spent)
        allowance = policy.monthly_allowance
        tolerance = Decimal("1e-9")
        within = all(Decimal(e.budget_spent) <= allowance * (1 + tolerance) for e in entries)
        within = within and all(
            v <= policy.budget_per_node_year * (1 + tolerance) for v in by_year.values()
        )
        out[s.node_id] = {
            "measure": policy.measure.value,
            "budget_per_year": str(policy.budget_per_node_year),
            "allowance_per_month": str(allowance),
            "spent_by_year": {y: str(v) for y, v in sorted(by_year.items())},
            "within_budget": within,
            "releases": [
                {"month": e.month, "release_id": e.release_id, "budget_spent": e.budget_spent,
                 "mechanism": e.mechanism, "scale": e.scale}
                for e in entries
            ],
        }
    return out


async def board_view(net: DemoNetwork, months: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """The hub's statistics for the released months and its central activation log."""
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    base = net.hub.url
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{base}/api/v1/stats",
                            params={"month_from": months[0], "month_to": months[-1]}) as r:
            r.raise_for_status()
            stats = await r.json()
        async with http.get(f"{base}/api/v1/activation-log", params={"limit": "1000"}) as r:
            r.raise_for_status()
            log = (await r.json())["entries"]
    return stats, list(reversed(log))


def _fig(fig: dict[str, Any] | None) -> str:
    if fig is None:
        return "-"
    d = fig["display"]
    return f"{d['estimate']} [{d['interval'][0]}-{d['interval'][1]}]"


def _rate(fig: dict[str, Any] | None) -> str:
    if fig is None:
        return "-"
    d = fig["display"]
    return (f"{d['estimate'] * 100:.0f}% [{d['interval'][0] * 100:.0f}-"
            f"{d['interval'][1] * 100:.0f}%]")


def format_board_view(stats: dict[str, Any]) -> list[str]:
    discs = [d for d in stats["disciplines"] if d != "other"]
    cols = ["month", "nodes", "all encounters", *(DISCIPLINE_LABELS.get(d, d) for d in discs)]
    rows = []
    for m in stats["months"]:
        rows.append([m["month"], str(m["nodes_reporting"]), _fig(m["encounters"]),
                     *(_fig(m["by_discipline"].get(d)) for d in discs)])
    t = stats["total"]
    rows.append(["total", str(t["node_months"]), _fig(t["encounters"]),
                 *(_fig(t["by_discipline"].get(d)) for d in discs)])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"referral rate {_rate(t['referral_rate'])}; follow-ups done on time "
                 f"{_rate(t['follow_up_on_time_rate'])} (all months, all agencies)")
    return lines


def _hhmm(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%m-%d %H:%M")


def format_activation_log(entries: list[dict[str, Any]]) -> list[str]:
    ids: dict[str, str] = {}
    lines = []
    for e in entries:
        label = ids.setdefault(e["activation_id"], chr(ord("A") + len(ids)))
        who = e["requester"] + (f" -> {e['responder']}" if e["responder"] else "")
        c = e["counts"]
        lines.append(f"{_hhmm(e['ts'])} UTC  {label}  {who:<32} {e['state']:<12} "
                     f"{e['incident_type']:<17} affected {c['affected']}, "
                     f"needed {c['peers_needed']}, offered {c['peers_offered']}")
    return lines
