"""What must hold after a chaos run, read straight from every server's database.

- `delivery`: every outbox row of every server is finished (none pending); each one, ack or
  not, has exactly one inbox row at its destination (`fed_inbox` is `UNIQUE(from, msg_id)`,
  so "exactly one" also means the counts per (sender, destination) pair match); a `failed`
  row is only allowed when the recipient applied the message and refused it on business
  grounds (its inbox row says `refused`), never for a transport or protocol reason; the
  hub's relay queue is empty.
- `ledgers`: every node's privacy ledger (release id, body hash) equals what the hub stored
  for that node, release for release.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from protocol.encoding import b64u
from tests.chaos.cluster import Cluster, Server


async def rows(cluster: Cluster, server: Server, sql: str) -> list[Any]:
    async with cluster.engine(server).connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def pending_counts(cluster: Cluster) -> dict[str, int]:
    out = {}
    for s in cluster.servers():
        out[s.name] = len(await rows(cluster, s, "SELECT id FROM fed_outbox WHERE state IN "
                                     "('pending', 'merged')"))
    out["hub-relay"] = len(await rows(cluster, cluster.hub, "SELECT id FROM hub_relay"))
    return out


@dataclass
class Delivery:
    sent: int = 0  # outbox rows, all servers
    by_type: Counter[str] = field(default_factory=Counter)
    delivered: int = 0  # with exactly one inbox row at the destination
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)  # count mismatches per pair
    pending: list[str] = field(default_factory=list)
    failed_bad: list[str] = field(default_factory=list)
    business_refusals: Counter[str] = field(default_factory=Counter)
    attempts: int = 0  # sends tried, all rows (retries included)
    relay_left: int = 0
    inbox_rows: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.pending or self.failed_bad
                    or self.relay_left)

    def figures(self) -> dict[str, Any]:
        return {
            "messages_sent": self.sent, "delivered_once": self.delivered,
            "lost": len(self.lost), "duplicated": len(self.duplicated),
            "pending_left": len(self.pending), "business_refusals": sum(
                self.business_refusals.values()),
            "send_attempts": self.attempts, "relay_left": self.relay_left,
        }


async def delivery(cluster: Cluster) -> Delivery:
    d = Delivery()
    inboxes: dict[str, dict[tuple[str, str], str]] = {}
    for s in cluster.servers():
        got = await rows(cluster, s, "SELECT from_node, msg_id, status FROM fed_inbox")
        inboxes[s.name] = {(r[0], r[1]): r[2] for r in got}
        d.inbox_rows += len(got)
    per_pair_out: Counter[tuple[str, str]] = Counter()
    for s in cluster.servers():
        out = await rows(cluster, s, "SELECT destination, msg_id, msg_type, state, failed_code, "
                         "attempts, carrier FROM fed_outbox")
        for dest, msg_id, msg_type, state, code, attempts, carrier in out:
            d.sent += 1
            d.attempts += int(attempts)
            d.by_type[msg_type] += 1
            where = f"{s.name}->{dest} {msg_type} {msg_id}"
            if carrier is None:
                per_pair_out[(s.name, dest)] += 1
            # A report merged into another row's batch message arrives as that message.
            status = inboxes.get(dest, {}).get((s.name, carrier or msg_id))
            if state in ("pending", "merged"):
                d.pending.append(where)
            if status is None:
                d.lost.append(where)
                continue
            d.delivered += 1
            if state == "failed":
                if status == "refused":
                    d.business_refusals[code or "?"] += 1
                else:
                    d.failed_bad.append(f"{where}: {code}")
    per_pair_in: Counter[tuple[str, str]] = Counter()
    for dest, inbox in inboxes.items():
        for (src, _msg), _status in inbox.items():
            per_pair_in[(src, dest)] += 1
    for pair in set(per_pair_out) | set(per_pair_in):
        if per_pair_in[pair] != per_pair_out[pair]:
            d.duplicated.append(f"{pair}: sent {per_pair_out[pair]}, received "
                                f"{per_pair_in[pair]}")
    d.relay_left = len(await rows(cluster, cluster.hub, "SELECT id FROM hub_relay"))
    return d


@dataclass
class Ledgers:
    node_entries: int = 0
    hub_entries: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


async def ledgers(cluster: Cluster) -> Ledgers:
    out = Ledgers()
    hub_rows = await rows(cluster, cluster.hub,
                          "SELECT node_id, release_id, month, body_sha256 FROM aggregate_releases")
    at_hub: dict[str, set[tuple[str, str, str]]] = {}
    for node_id, rid, month, sha in hub_rows:
        at_hub.setdefault(node_id, set()).add((rid, month, sha))
    out.hub_entries = len(hub_rows)
    for n in cluster.nodes:
        ledger = await rows(cluster, n, "SELECT release_id, month, body FROM release_ledger")
        mine = {(r[0], r[1], b64u(hashlib.sha256(bytes(r[2])).digest())) for r in ledger}
        out.node_entries += len(mine)
        theirs = at_hub.get(n.name, set())
        if mine != theirs:
            out.mismatches.append(f"{n.name}: ledger {sorted(mine)} vs hub {sorted(theirs)}")
    return out
