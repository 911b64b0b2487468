"""The outbox worker's pass: build what lingered, route each destination, file the results.

`OutboxDelivery` is the half of `FederationService` that one worker pass runs
(`run_once`); the service (`federation.service`) owns the identity, the roster, the
queueing API and the server wiring, and inherits this pass, so both read the same state.

Transactions per pass (each is a turn of the database writer, which on SQLite every inbound
batch waits for): one claims the due rows and stores the envelopes of newly built intents
(acks, and reports batched after their linger), before they are sent, so a resend reuses
the bytes; and one records the outcome of the whole pass (done, failed, awaiting the ack,
retry later) for every destination at once.

Routing: direct to the destination's roster endpoint (never to a helper aggregator, which
only the hub reaches); when that fails (unreachable, 5xx), through the hub (the hub named
by `hub_id`, else the first hub of the roster), and direct attempts to that destination are
skipped for a while (`DIRECT_RETRY_MS`). The hub itself
always delivers direct. Either way the recipient's inbox dedupes, so a message sent both
ways is applied once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update

from federation.clock import Clock
from federation.errors import FederationError
from federation.inbox import WriteTx
from federation.interstate_runtime import Interstate
from federation.outbox import (
    AWAIT_ACK_MS,
    PERMANENT_CODES,
    Claimed,
    backoff_ms,
    claim_due,
    follow_carriers,
    reset_backoff,
)
from federation.prepared import Prepared
from federation.roster import NodeRole
from federation.roster_sync import RosterStore
from federation.store import OutboxState, outbox
from federation.transport import HopClient, PeerError
from protocol.envelope import MAX_BATCH, SKEW_MS, Sender, build_envelope
from protocol.errors import ProtocolError
from protocol.messages import BATCH_FORMS, AckStatus, BatchResult, MessageType

__all__ = ["BATCH_BODY_BUDGET", "DIRECT_RETRY_MS", "OutboxDelivery"]

log = logging.getLogger("peernet.federation")

DIRECT_RETRY_MS = 60_000
# Body bytes per batch message, well under the 64 KiB envelope limit.
BATCH_BODY_BUDGET = 32 * 1024

# Outcome statements of a worker pass, built once; run with one parameter set per row.
_STORE_ENVELOPE = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"))
    .values(envelope=bindparam("b_env"), msg_type=bindparam("b_type"))
)
# A row whose body travels inside another row's batch message: its fate is that row's.
_MERGED = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.state == OutboxState.PENDING)
    .values(state=OutboxState.MERGED, carrier=bindparam("b_carrier"))
)
_AWAIT_ACK = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.state == OutboxState.PENDING)
    .values(sent_ts=bindparam("b_now"), next_attempt_ts=bindparam("b_next"), last_error=None)
)
_FINISH = Prepared(
    update(outbox)
    .where(
        outbox.c.id.in_(bindparam("b_ids", expanding=True)),
        outbox.c.state == OutboxState.PENDING,
    )
    .values(
        state=bindparam("b_state"),
        failed_code=bindparam("b_code"),
        sent_ts=func.coalesce(outbox.c.sent_ts, bindparam("b_now", type_=outbox.c.sent_ts.type)),
        acked_ts=bindparam("b_acked"),
    )
)
_NEXT_DUE = Prepared(
    select(func.min(outbox.c.next_attempt_ts).label("due"))
    .where(outbox.c.state == OutboxState.PENDING)
)
_RETRY = Prepared(
    update(outbox)
    .where(outbox.c.id == bindparam("b_id"), outbox.c.state == OutboxState.PENDING)
    .values(next_attempt_ts=bindparam("b_next"), last_error=bindparam("b_err"))
)




@dataclass
class _Outcome:
    """What one worker pass learned, written in one transaction at its end."""

    finish: dict[tuple[str, str | None], list[int]] = field(default_factory=dict)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)

    def finished(self, rows: Sequence[Claimed], state: str, code: str | None) -> None:
        self.finish.setdefault((state, code), []).extend(r.id for r in rows)

    def retried(
        self, rows: Sequence[Claimed], error: str, now: int, rand: Callable[[], float]
    ) -> None:
        self.retry.extend(
            {"b_id": r.id, "b_next": now + backoff_ms(r.attempts, rand), "b_err": error[:200]}
            for r in rows
        )


def _relayed_only(state: Any, dest: str) -> bool:
    """A helper aggregator is reached through the hub only (DESIGN 7.1 item 2): agencies need
    not reach it, and the hub sees that a share left without being able to open it."""
    return NodeRole.HELPER in state.node(dest).roles


class OutboxDelivery:
    """The worker pass of `FederationService` (see the module notes); the service sets
    these attributes and provides `sender` and `kick`."""

    me: str
    write: WriteTx
    clock: Clock
    roster: RosterStore
    interstate: Interstate | None
    client: HopClient | None
    rand: Callable[[], float]
    is_hub: bool
    hub_id: str | None
    hub_url: str | None
    _direct_down_until: dict[str, int]
    _hops_down: set[str]
    # The earliest `next_attempt_ts` of a pending row as the last pass left it (None: none
    # pending, or no pass yet); the service sleeps until then (`_next_wait_ms`).
    next_due: int | None = None

    def sender(self) -> Sender:
        raise NotImplementedError

    def kick(self) -> None:
        raise NotImplementedError

    async def run_once(self) -> int:
        """One pass: claim due rows, build pending ack envelopes, deliver per destination.
        Returns the number of rows handled."""
        if self.client is None:
            return 0
        now = self.clock.now_ms()
        async with self.write() as conn:
            claimed = await claim_due(conn, now=now)
            # When the next row falls due (leases included), read in the claim's own
            # transaction: the worker sleeps until then without a query of its own.
            self.next_due = (await _NEXT_DUE.run(conn, {})).scalar()
            # Queued acks get their envelope built now and stored in the claim's own
            # transaction, before the first send (a resend reuses the bytes).
            unbuilt = [
                r for r in claimed if r.envelope is None and now <= r.expires_ts + SKEW_MS
            ]
            built, merged = self._materialize(unbuilt)
            if built:
                await _STORE_ENVELOPE.run(
                    conn,
                    [{"b_id": r.id, "b_env": r.envelope, "b_type": r.msg_type} for r in built],
                )
            if merged:
                await _MERGED.run(
                    conn, [{"b_id": r.id, "b_carrier": carrier} for r, carrier in merged]
                )
        if not claimed:
            return 0
        if merged:
            gone = {r.id for r, _ in merged}
            claimed = [r for r in claimed if r.id not in gone]
        outcome = _Outcome()
        by_dest: dict[str, list[Claimed]] = defaultdict(list)
        expired: list[Claimed] = []
        undeliverable: list[Claimed] = []
        for row in claimed:
            if now > row.expires_ts + SKEW_MS:
                expired.append(row)
            elif row.envelope is None:
                undeliverable.append(row)
            else:
                by_dest[row.destination].append(row)
        if expired:
            outcome.finished(expired, OutboxState.FAILED, "expired")
        if undeliverable:
            outcome.finished(undeliverable, OutboxState.FAILED, "undeliverable")
        delivered = await asyncio.gather(
            *(self._deliver(dest, rows, outcome) for dest, rows in by_dest.items()),
            return_exceptions=True,
        )
        await self._record(outcome, self.clock.now_ms())
        for exc in delivered:
            if isinstance(exc, BaseException):
                raise exc
        return len(claimed)

    def _materialize(
        self, rows: list[Claimed]
    ) -> tuple[list[Claimed], list[tuple[Claimed, str]]]:
        """Build the envelopes of queued intents (acks, and the types with a batch form);
        the rows built, and the rows merged into another's batch message (with that row's
        msg_id). Intents of a type with a batch form, to one destination, travel as one
        message of the batch type (up to its count and `BATCH_BODY_BUDGET`), under the
        msg_id of the oldest; a single one travels as itself. A row that cannot be built
        (its destination left the roster) keeps no envelope."""
        built: list[Claimed] = []
        merged: list[tuple[Claimed, str]] = []
        groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
        for row in rows:
            intent = row.intent or {}
            form = BATCH_FORMS.get(intent.get("type"))  # type: ignore[arg-type]
            if form is not None and form.joins(intent.get("body") or {}, self.me):
                groups[(row.destination, intent["type"])].append(row)
            else:
                self._build(row, intent, built)
        for (_dest, kind), members in groups.items():
            form = BATCH_FORMS[MessageType(kind)]
            for chunk in _chunks(members, form.most, BATCH_BODY_BUDGET):
                head = chunk[0]
                if len(chunk) == 1:
                    self._build(head, head.intent or {}, built)
                    continue
                batch = {"type": form.batch_type.value,
                         "body": {form.field: [(r.intent or {})["body"] for r in chunk]},
                         "thread_id": None, "in_reply_to": None}
                if self._build(head, batch, built):
                    head.msg_type = form.batch_type.value
                    merged.extend((r, head.msg_id) for r in chunk[1:])
                else:  # each alone, then
                    for r in chunk:
                        self._build(r, r.intent or {}, built)
        return built, merged

    def _build(self, row: Claimed, intent: Mapping[str, Any], built: list[Claimed]) -> bool:
        state = self.roster.state
        try:
            if "/" in row.destination:  # an ack (or reply) across the line: `v: 2`
                row.envelope = self._build_interstate(row, intent)
                built.append(row)
                return True
            row.envelope = build_envelope(
                sender=self.sender(),
                to=row.destination,
                recipient_enc_key=state.enc_key(row.destination),
                msg_type=MessageType(intent["type"]),
                body=intent["body"],
                msg_id=row.msg_id,
                created_ts=row.created_ts,
                expires_ts=row.expires_ts,
                roster=state.ref(),
                thread_id=intent.get("thread_id"),
                in_reply_to=intent.get("in_reply_to"),
            )
        except (FederationError, ProtocolError, KeyError, ValueError) as exc:
            log.warning("cannot build queued %s %s: %s", row.msg_type, row.msg_id, exc)
            return False
        built.append(row)
        return True

    def _build_interstate(self, row: Claimed, intent: Mapping[str, Any]) -> bytes:
        if self.interstate is None:
            raise FederationError("unknown_network", "not configured for other networks")
        return self.interstate.build(
            sender=self.sender(), dest=row.destination, msg_type=MessageType(intent["type"]),
            body=intent["body"], msg_id=row.msg_id, created_ts=row.created_ts,
            expires_ts=row.expires_ts, roster=self.roster.state.ref(),
            thread_id=intent.get("thread_id"), in_reply_to=intent.get("in_reply_to"))

    def _hub(self) -> tuple[str, str] | None:
        state = self.roster.state
        if self.is_hub or state.current is None:
            return None
        hubs = state.hubs()
        if self.hub_id is not None:
            hubs = [h for h in hubs if h.node_id == self.hub_id]
        elif self.hub_url is not None:
            hubs = [h for h in hubs if h.endpoint.rstrip("/") == self.hub_url.rstrip("/")] or hubs
        if not hubs:
            return None
        return hubs[0].node_id, hubs[0].endpoint

    def _hub_endpoint(self) -> str | None:
        hub = self._hub()
        return hub[1] if hub else None

    async def _deliver(self, dest: str, rows: list[Claimed], outcome: _Outcome) -> None:
        assert self.client is not None
        state = self.roster.state
        for i in range(0, len(rows), MAX_BATCH):
            chunk = rows[i : i + MAX_BATCH]
            envelopes = [r.envelope for r in chunk if r.envelope is not None]
            chunk = [r for r in chunk if r.envelope is not None]
            results: list[BatchResult] | None = None
            error = ""
            now = self.clock.now_ms()
            routes: list[tuple[str, str]] = []
            hub = self._hub()
            # The hub itself has no other route: a failure never parks it (below).
            to_hub = hub is not None and hub[0] == dest
            if (state.has_node(dest)
                    and (to_hub or self._direct_down_until.get(dest, 0) <= now)
                    and not (hub is not None and _relayed_only(state, dest))):
                routes.append((dest, state.endpoint(dest)))
            if hub is not None and hub[0] != dest:
                routes.append(hub)
            elif self.is_hub and "/" in dest and self.interstate is not None:
                try:  # the hub itself across the line: to the member network's hub
                    url, hop = self.interstate.member_route(dest.split("/", 1)[0])
                    routes.append((hop, url))
                except FederationError as exc:
                    error = exc.message
            for hop, url in routes:
                try:
                    results = await self.client.send_batch(url, hop, envelopes)
                    if hop in self._hops_down:
                        await self._hop_back(hop)
                    break
                except PeerError as exc:
                    error = f"{hop}: {exc.peer_status} {exc.peer_code}"
                except FederationError as exc:
                    error = exc.message
                if hop not in self._hops_down:  # one line when a hop goes down, not per pass
                    log.warning("peer %s unreachable: %s", hop, error)
                self._hops_down.add(hop)
                if hop == dest and not to_hub:
                    # Go through the hub for a while instead of waiting on a peer that is down.
                    self._direct_down_until[dest] = now + DIRECT_RETRY_MS
            now = self.clock.now_ms()
            if results is None:
                log.warning("delivery of %d message(s) to %s failed, will retry: %s",
                            len(chunk), dest, error or "no route")
                outcome.retried(chunk, error or "no route", now, self.rand)
                continue
            self._sort(chunk, results, now, outcome)

    async def _hop_back(self, hop: str) -> None:
        """A hop that failed before answered again: it is up, so the rows to it that are
        waiting out a backoff are due now (as when a valid request arrives from it). Without
        this, a message queued while the hub was down waits out its backoff (up to 15
        minutes) even though fresher messages to the hub already go through."""
        self._hops_down.discard(hop)
        log.info("peer %s reachable again", hop)
        async with self.write() as conn:
            await reset_backoff(conn, destinations=[hop], now=self.clock.now_ms())
        self.kick()

    def _sort(
        self, rows: list[Claimed], results: list[BatchResult], now: int, outcome: _Outcome
    ) -> None:
        """File one batch's results into the pass's outcome."""
        failed: dict[str, list[Claimed]] = defaultdict(list)
        retry: list[Claimed] = []
        for row, res in zip(rows, results, strict=True):
            if res.status in (AckStatus.ACCEPTED, AckStatus.DUPLICATE):
                if row.msg_type == MessageType.ACK.value:
                    outcome.finished([row], OutboxState.DONE, None)
                else:
                    wait = max(AWAIT_ACK_MS, backoff_ms(row.attempts, self.rand))
                    outcome.waiting.append({"b_id": row.id, "b_now": now, "b_next": now + wait})
            elif res.code is not None and res.code.value in PERMANENT_CODES:
                failed[res.code.value].append(row)
            else:
                retry.append(row)
        for code, fl in failed.items():
            log.warning("%d message(s) refused permanently: %s (%s)", len(fl), code,
                        " ".join(f"{r.msg_type}:{r.msg_id}" for r in fl[:10]))
            outcome.finished(fl, OutboxState.FAILED, code)
        if retry:
            log.info("%d message(s) refused for now, will retry", len(retry))
            outcome.retried(retry, "transient refusal", now, self.rand)

    async def _record(self, outcome: _Outcome, now: int) -> None:
        """The pass's outcome in one transaction: a statement per final state, one
        parameter set per row for the rows that wait (for the ack, or to retry)."""
        if not (outcome.finish or outcome.waiting or outcome.retry):
            return
        later = [p["b_next"] for p in (*outcome.waiting, *outcome.retry)]
        if later:  # rows this pass set to wait less than their lease
            self.next_due = min(later) if self.next_due is None else min(self.next_due,
                                                                          *later)
        async with self.write() as conn:
            for (state, code), ids in outcome.finish.items():
                await _FINISH.run(
                    conn,
                    {
                        "b_ids": ids,
                        "b_state": state,
                        "b_code": code,
                        "b_now": now,
                        "b_acked": now if state == OutboxState.DONE else None,
                    },
                )
            if any(state == OutboxState.FAILED for state, _ in outcome.finish):
                await follow_carriers(conn)  # a failed batch fails the reports it carried
            if outcome.waiting:
                await _AWAIT_ACK.run(conn, outcome.waiting)
            if outcome.retry:
                await _RETRY.run(conn, outcome.retry)

    # --- housekeeping and inspection ----------------------------------------------------


def _chunks(rows: list[Claimed], most: int, budget: int) -> list[list[Claimed]]:
    """`rows` in order, cut into runs of at most `most` whose bodies fit `budget` bytes."""
    out: list[list[Claimed]] = []
    size = 0
    for row in rows:
        n = len(json.dumps((row.intent or {}).get("body")))
        if not out or len(out[-1]) >= most or size + n > budget:
            out.append([])
            size = 0
        out[-1].append(row)
        size += n
    return out
