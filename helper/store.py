"""What the helper keeps and how it answers: shares per (node, month), answers per round.

Shares (`aggregate_share`, sealed to the helper, relayed by the hub): checked by
`federation.aggregate_checks.check_share`, then one row per (node, month). The same body
again (a resend under a new msg id) is stored as it was; a different body is refused
`conflicting_share` and nothing changes (a node that re-splits could otherwise be counted
with a share of another vector).

Rounds (`aggregate_round`, from a hub only: `unknown_sender` otherwise; each group is a
roster region listing only that region's agencies, `round_conflict` otherwise): per group, the
listed nodes whose shares the helper lacks are reported `missing` (no sum for that group);
otherwise the helper sums exactly the listed shares mod 2^64, adds one fresh draw of its
noise (`federation.aggregate_noise`), stores the noisy sum per (month, group) and erases the
shares it summed (their digests stay, for the one-share rule). A group
answered once is fixed: the same node set again gets the stored sum, a different set is
refused `round_conflict` (a second noisy answer over a changed set would let the hub
difference a node out). A round id answered before gets the stored result again if its set
is the same (`round_conflict` otherwise). The answer, an `aggregate_result`, is queued in the
same transaction (`FederationService.send`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import BigInteger, LargeBinary, String, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from federation.aggregate_checks import body_sha256, check_share
from federation.aggregate_noise import AggregateNoise
from federation.roster import NodeRole
from federation.roster_state import RosterState
from helper.db import Base
from protocol import shares
from protocol.aggregate_bodies import AggregateRoundBody
from protocol.canonical import canonical_bytes, parse_json
from protocol.encoding import sha256_b64u
from protocol.errors import Code, ProtocolError
from protocol.workload import WORKLOAD_KEYS

__all__ = ["HelperAnswer", "HelperRound", "HelperShare", "accept_share", "answer_round"]

K = len(WORKLOAD_KEYS)


class HelperShare(Base):
    __tablename__ = "helper_shares"

    node_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True, index=True)
    body_sha256: Mapped[str] = mapped_column(String(43))
    share: Mapped[bytes] = mapped_column(LargeBinary)  # 8K bytes, little-endian uint64
    msg_id: Mapped[str] = mapped_column(String(26))
    received_at: Mapped[int] = mapped_column(BigInteger)


class HelperAnswer(Base):
    """The helper's one noisy sum per (month, group), and the node set it covers."""

    __tablename__ = "helper_answers"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    nodes: Mapped[str] = mapped_column(Text)  # JSON list, sorted
    noisy_sum: Mapped[str] = mapped_column(Text)  # b64u share text
    round_id: Mapped[str] = mapped_column(String(26))
    answered_at: Mapped[int] = mapped_column(BigInteger)


class HelperRound(Base):
    __tablename__ = "helper_rounds"

    round_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    hub_id: Mapped[str] = mapped_column(String(63))
    month: Mapped[str] = mapped_column(String(7))
    set_sha256: Mapped[str] = mapped_column(String(43))
    result: Mapped[bytes] = mapped_column(LargeBinary)  # canonical aggregate_result body
    answered_at: Mapped[int] = mapped_column(BigInteger)


async def accept_share(
    conn: AsyncConnection, body: dict[str, Any], *, sender: str, msg_id: str,
    state: RosterState, me: str, now_ms: int,
) -> bool:
    """Store the share; True when new, False when the same body was already held."""
    share = check_share(body, sender=sender, state=state, now_ms=now_ms, helper_id=me)
    digest = body_sha256(body)
    held = (await conn.execute(
        select(HelperShare.body_sha256).where(
            HelperShare.node_id == sender, HelperShare.month == share.month)
    )).scalar_one_or_none()
    if held is not None:
        if held != digest:
            raise ProtocolError(Code.CONFLICTING_SHARE, "another share for this node-month")
        return False
    raw = shares.encode(shares.decode(share.share, K))  # canonical text, checked length
    await conn.execute(insert(HelperShare).values(
        node_id=sender, month=share.month, body_sha256=digest,
        share=raw.encode("ascii"), msg_id=msg_id, received_at=now_ms))
    return True


async def answer_round(
    conn: AsyncConnection, body: dict[str, Any], *, sender: str, state: RosterState,
    noise: AggregateNoise, now_ms: int,
) -> dict[str, Any]:
    """The `aggregate_result` body for a round (stored before it is returned)."""
    if not state.has_node(sender) or NodeRole.HUB not in state.node(sender).roles:
        raise ProtocolError(Code.UNKNOWN_SENDER, "only a hub fixes rounds")
    try:
        rnd = AggregateRoundBody.model_validate(body)
    except ValidationError:
        raise ProtocolError(Code.BAD_BODY, "not an aggregate_round body") from None
    for group_id, nodes in rnd.groups.items():
        # A group is a region and holds only its own agencies: with one answer per
        # (month, group), no node is ever in two noisy answers of one month (a hub that
        # invented groups could otherwise difference a node out at twice its budget).
        if any(not state.has_node(n) or state.node(n).region != group_id for n in nodes):
            raise ProtocolError(Code.ROUND_CONFLICT, "a group lists a node of another region")
    set_sha = sha256_b64u(canonical_bytes(body["groups"]))
    seen = (await conn.execute(
        select(HelperRound.set_sha256, HelperRound.result).where(
            HelperRound.round_id == rnd.round_id)
    )).one_or_none()
    if seen is not None:
        if seen.set_sha256 != set_sha:
            raise ProtocolError(Code.ROUND_CONFLICT, "this round id named another set")
        stored: dict[str, Any] = parse_json(seen.result)
        return stored
    results: dict[str, Any] = {}
    for group_id, nodes in sorted(rnd.groups.items()):
        results[group_id] = await _group(conn, rnd.month, group_id, nodes, rnd.round_id,
                                         noise, now_ms)
    result = {"round_id": rnd.round_id, "set_sha256": set_sha, "results": results,
              "scales": noise.scales()}
    await conn.execute(insert(HelperRound).values(
        round_id=rnd.round_id, hub_id=sender, month=rnd.month, set_sha256=set_sha,
        result=canonical_bytes(result), answered_at=now_ms))
    return result


async def _group(
    conn: AsyncConnection, month: str, group_id: str, nodes: list[str], round_id: str,
    noise: AggregateNoise, now_ms: int,
) -> dict[str, Any]:
    listed = json.dumps(nodes, separators=(",", ":"))
    answered = (await conn.execute(
        select(HelperAnswer.nodes, HelperAnswer.noisy_sum).where(
            HelperAnswer.month == month, HelperAnswer.group_id == group_id)
    )).one_or_none()
    if answered is not None:
        if answered.nodes != listed:
            raise ProtocolError(Code.ROUND_CONFLICT, "this group-month was answered for "
                                "another node set")
        return {"sum": answered.noisy_sum}
    rows = (await conn.execute(
        select(HelperShare.node_id, HelperShare.share).where(
            HelperShare.month == month, HelperShare.node_id.in_(nodes))
    )).all()
    held = {r.node_id: r.share for r in rows}
    missing = [n for n in nodes if n not in held]
    if missing:
        return {"missing": missing}
    total = shares.zeros(K)
    for n in nodes:
        total = shares.add(total, shares.decode(held[n].decode("ascii"), K))
    noisy = shares.encode(shares.add(total, shares.to_uint64(noise.draw())))
    await conn.execute(insert(HelperAnswer).values(
        month=month, group_id=group_id, nodes=listed, noisy_sum=noisy, round_id=round_id,
        answered_at=now_ms))
    # Summed shares are erased (their digests stay for the one-share rule): a later breach
    # of both aggregators' databases finds no share to recombine.
    await conn.execute(update(HelperShare).where(
        HelperShare.month == month, HelperShare.node_id.in_(nodes)).values(share=b""))
    return {"sum": noisy}
