"""Shared aggregation at the hub (DESIGN 7.1 item 2): shares, rounds, combining, publishing.

The hub is one of the two aggregators. It holds the node's share `r` (`aggregate_share`
addressed to the hub) and relays the other share, sealed to the helper, without opening it.

- Shares: checked as the helper checks them (`federation.aggregate_checks`), one per
  (node, month): the same body again is stored as it was, a different one is refused
  `conflicting_share` and nothing changes; a share for a node-month the hub holds a local
  release of is `share_mismatch` (never both). The row keeps the sender's roster region.
- Rounds (`start_rounds`, run by the hub's pass after the release day, or by an operator):
  per month, the contributor set per region group is fixed from the shares the hub holds,
  leaving out regions already published and nodes the helper reported missing; the signed
  `aggregate_round` goes to the helper (the envelope signature is the hub's signature over
  the set). One round per month is open at a time.
- Results (`aggregate_result` from the policy's helper, for an open round with the same
  `set_sha256`): for each group with a sum, the hub sums its shares of exactly the same
  nodes mod 2^64, adds its own noise (one OpenDP draw per group-month,
  `federation.aggregate_noise`), adds the helper's noisy sum mod 2^64 and reads int64: the
  region's published workload (`shared_figures`), each key with variance 2 sigma_g^2
  (`key_variances`: the hub's noise plus the helper's at the scales it declared). A group
  reported `missing` is not published; its missing nodes are excluded for the month and a
  new round is issued at once without them. So a node is in
  both sums or in neither: the hub never sums a node the helper did not, and the reverse.
- A late share (its region already published) is stored and never used: a region-month is
  published once, from one set. The state is the sum of the regions (`hub.stats.estimates`).
  Once published, the hub erases the shares it summed (their digests stay, for the
  one-share rule), as the helper does once it answered: a later breach of both databases
  finds no share to recombine.

P2's estimator reads `shared_figures` (`published_figures`). No row here holds a record or a
node's vector: only one share (uniformly random alone) and noisy sums of many.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    LargeBinary,
    String,
    Text,
    column,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from federation.aggregate_checks import body_sha256, check_share
from federation.aggregate_noise import AggregateNoise, key_variances
from federation.roster_state import RosterState
from hub.db import Base
from protocol import shares
from protocol.aggregate_bodies import AggregateResultBody, GroupSum
from protocol.canonical import canonical_bytes
from protocol.encoding import sha256_b64u
from protocol.errors import Code, ProtocolError
from protocol.ids import new_ulid
from protocol.workload import SCHEMA, WORKLOAD_KEYS

__all__ = [
    "HubShare",
    "Published",
    "RoundRow",
    "STALE_MS",
    "SharedFigure",
    "accept_share",
    "accept_result",
    "published_figures",
    "start_rounds",
]

K = len(WORKLOAD_KEYS)
STALE_MS = 6 * 3_600_000  # an open round unanswered this long is issued again
# `hub.stats.aggregates.AggregateRelease`, named lightly: that module imports this one
# (`hub.stats.shared_guard`: a release for a month shared is refused the same way).
_RELEASES = table("aggregate_releases", column("release_id"), column("node_id"),
                  column("month"))


class HubShare(Base):
    __tablename__ = "hub_shares"

    node_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True, index=True)
    region: Mapped[str] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(43))
    share: Mapped[bytes] = mapped_column(LargeBinary)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)  # missing at the helper
    received_at: Mapped[int] = mapped_column(BigInteger)


class RoundRow(Base):
    __tablename__ = "hub_rounds"

    round_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    groups: Mapped[str] = mapped_column(Text)  # canonical JSON of the round's groups
    set_sha256: Mapped[str] = mapped_column(String(43))
    state: Mapped[str] = mapped_column(String(8))  # open | done | stale
    created_at: Mapped[int] = mapped_column(BigInteger)


class SharedFigure(Base):
    """One region-month's published noisy workload (WORKLOAD_KEYS order)."""

    __tablename__ = "shared_figures"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    values_json: Mapped[str] = mapped_column(Text)  # K signed integers
    variances_json: Mapped[str] = mapped_column(Text)  # K floats: 2 sigma_g^2
    nodes: Mapped[str] = mapped_column(Text)  # JSON list of the contributors
    round_id: Mapped[str] = mapped_column(String(26))
    published_at: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class Published:
    month: str
    region: str
    values: dict[str, int]
    variances: dict[str, float]
    nodes: tuple[str, ...]


async def accept_share(
    conn: AsyncConnection, body: dict[str, Any], *, sender: str, state: RosterState,
    now_ms: int,
) -> bool:
    """Store the hub's share of a node-month; False when the same body was held already."""
    share = check_share(body, sender=sender, state=state, now_ms=now_ms)
    local = (await conn.execute(select(_RELEASES.c.release_id).where(
        _RELEASES.c.node_id == sender, _RELEASES.c.month == share.month))).first()
    if local is not None:  # a node-month goes into a round or a local release, never both
        raise ProtocolError(Code.SHARE_MISMATCH, "this node-month came as a local release")
    digest = body_sha256(body)
    held = (await conn.execute(select(HubShare.body_sha256).where(
        HubShare.node_id == sender, HubShare.month == share.month))).scalar_one_or_none()
    if held is not None:
        if held != digest:
            raise ProtocolError(Code.CONFLICTING_SHARE, "another share for this node-month")
        return False
    await conn.execute(insert(HubShare).values(
        node_id=sender, month=share.month, region=state.node(sender).region,
        body_sha256=digest, share=share.share.encode("ascii"), excluded=False,
        received_at=now_ms))
    return True


async def start_rounds(
    conn: AsyncConnection, month: str, *, now_ms: int,
) -> dict[str, Any] | None:
    """The next `aggregate_round` body for `month` (stored as open), or None when a round is
    open already or no unpublished region has shares. The caller sends it to the helper."""
    open_round = (await conn.execute(select(RoundRow.round_id, RoundRow.created_at).where(
        RoundRow.month == month, RoundRow.state == "open"))).first()
    if open_round is not None:
        if now_ms - open_round.created_at < STALE_MS:
            return None
        # never answered (refused or lost at the helper): close it and fix the set again;
        # groups the helper answered keep their stored answer (same set) at both ends
        await conn.execute(update(RoundRow).where(RoundRow.round_id == open_round.round_id)
                           .values(state="stale"))
    done = {r[0] for r in await conn.execute(
        select(SharedFigure.region).where(SharedFigure.month == month))}
    groups: dict[str, list[str]] = defaultdict(list)
    for node_id, region in await conn.execute(
        select(HubShare.node_id, HubShare.region).where(
            HubShare.month == month, HubShare.excluded.is_(False))
        .order_by(HubShare.node_id)
    ):
        if region not in done:
            groups[region].append(node_id)
    if not groups:
        return None
    body = {"round_id": new_ulid(now_ms, secrets.token_bytes(10)), "month": month,
            "schema": SCHEMA, "groups": {g: sorted(ids) for g, ids in sorted(groups.items())}}
    await conn.execute(insert(RoundRow).values(
        round_id=body["round_id"], month=month, groups=canonical_bytes(body["groups"]).decode(),
        set_sha256=sha256_b64u(canonical_bytes(body["groups"])), state="open",
        created_at=now_ms))
    return body


async def accept_result(
    conn: AsyncConnection, body: dict[str, Any], *, sender: str, state: RosterState,
    noise: AggregateNoise, now_ms: int,
) -> dict[str, Any] | None:
    """Combine the helper's answer with the hub's own noisy sums and publish; returns the
    re-issued round's body when some group had nodes missing at the helper (else None)."""
    if state.policy.privacy.helper != sender:
        raise ProtocolError(Code.UNKNOWN_SENDER, "results come from the policy's helper")
    try:
        res = AggregateResultBody.model_validate(body)
    except ValidationError:
        raise ProtocolError(Code.BAD_BODY, "not an aggregate_result body") from None
    rnd = (await conn.execute(select(RoundRow.__table__).where(
        RoundRow.round_id == res.round_id))).one_or_none()
    if rnd is None or rnd.set_sha256 != res.set_sha256:
        raise ProtocolError(Code.ROUND_CONFLICT, "no such round with this contributor set")
    if rnd.state != "open":
        return None  # answered already (a resent result): nothing changes
    groups: dict[str, list[str]] = json.loads(rnd.groups)
    if set(res.results) != set(groups):
        raise ProtocolError(Code.ROUND_CONFLICT, "the result does not answer the round's groups")
    variances = key_variances(noise, res.scales)  # ours + the helper's declared noise
    for group_id, nodes in groups.items():
        answer = res.results[group_id]
        if isinstance(answer, GroupSum):
            await _publish(conn, rnd, group_id, nodes, answer.sum, noise, variances, now_ms)
        else:
            gone = [n for n in answer.missing if n in nodes]
            if not gone:
                raise ProtocolError(Code.ROUND_CONFLICT, "missing names no listed node")
            await conn.execute(update(HubShare).where(
                HubShare.month == rnd.month, HubShare.node_id.in_(gone)).values(excluded=True))
    await conn.execute(update(RoundRow).where(RoundRow.round_id == rnd.round_id)
                       .values(state="done"))
    return await start_rounds(conn, rnd.month, now_ms=now_ms)


async def _publish(
    conn: AsyncConnection, rnd: Any, region: str, nodes: list[str], helper_sum: str,
    noise: AggregateNoise, variances: list[float], now_ms: int,
) -> None:
    rows = (await conn.execute(select(HubShare.node_id, HubShare.share).where(
        HubShare.month == rnd.month, HubShare.node_id.in_(nodes)))).all()
    held = {r.node_id: r.share for r in rows}
    if set(held) != set(nodes):
        raise ProtocolError(Code.ROUND_CONFLICT, "the hub lacks a share it listed")
    total = shares.zeros(K)
    for n in nodes:
        total = shares.add(total, shares.decode(held[n].decode("ascii"), K))
    own = shares.add(total, shares.to_uint64(noise.draw()))
    values = shares.combine(own, shares.decode(helper_sum, K))
    await conn.execute(insert(SharedFigure).values(
        month=rnd.month, region=region, values_json=json.dumps(values),
        variances_json=json.dumps(variances), nodes=json.dumps(sorted(nodes)),
        round_id=rnd.round_id, published_at=now_ms))
    # The published shares are erased (digests kept): nothing left to recombine later.
    await conn.execute(update(HubShare).where(
        HubShare.month == rnd.month, HubShare.node_id.in_(nodes)).values(share=b""))


async def published_figures(
    conn: AsyncConnection, month_from: str, month_to: str,
) -> list[Published]:
    """The published region-months in [month_from, month_to], for the estimator."""
    rows = await conn.execute(select(SharedFigure.__table__).where(
        SharedFigure.month >= month_from, SharedFigure.month <= month_to)
        .order_by(SharedFigure.month, SharedFigure.region))
    out = []
    for r in rows:
        out.append(Published(
            r.month, r.region, dict(zip(WORKLOAD_KEYS, json.loads(r.values_json), strict=True)),
            dict(zip(WORKLOAD_KEYS, json.loads(r.variances_json), strict=True)),
            tuple(json.loads(r.nodes))))
    return out
