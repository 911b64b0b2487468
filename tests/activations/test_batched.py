"""The batched activation writes (`node.activation.batched`) against the step-by-step path
they replace, on SQLite and PostgreSQL: the same rows, history, messages and answers; the
same refusals with nothing stored; a leg moved meanwhile refused with `conflict`; and on
PostgreSQL the statements a request and its cancel cost through the real HTTP API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, select, text, update

from federation.outbox import enqueue_many, enqueue_row
from federation.store import outbox
from node.activation import batched, ending
from node.activation import requester as requesting
from node.activation.context import ActivationContext
from node.activation.errors import ActivationError
from node.activation.inbound import apply_inbound
from node.activation.models import ActivationOut
from node.activation.rows import L
from node.core.audit_entry import entry_row
from node.core.audit_verify import verify
from node.core.db import Database, User, table_of
from node.core.vocabulary import Role
from protocol.ids import new_ulid
from protocol.messages import MessageType
from protocol.vocabulary import ActivationState, CancelReason, DeclineReason
from tests.activations.helpers import HOUR, Recorder, Sent, add_user, make_ctx, node_db, request_in
from tests.activations.netutil import actx
from tests.activations.netutil import add_user as add_net_user
from tests.activations.stepwise_cancel import cancel_stepwise
from tests.activations.test_service import OFFER, inbound
from tests.federation.network import make_network

S = ActivationState
MT = MessageType
TARGETS = ["agency-d", "agency-b", "agency-c"]  # not in responder order on purpose


def _ids(rec: Recorder, inbound_ids: tuple[str, ...] = ()) -> dict[str, str]:
    """Each msg_id sent (and received) by its place."""
    return {**{s.msg_id: f"msg{i}" for i, s in enumerate(rec.sent)},
            **{m: f"in{i}" for i, m in enumerate(inbound_ids)}}


async def _rows(db: Database, aid: str, rec: Recorder,
                inbound_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything stored for `aid`, with its own ids (key, leg ids, msg_ids, event ids)
    replaced by their place, so two activations written the same way compare equal."""
    mids = _ids(rec, inbound_ids)
    async with db.read() as conn:
        act = (await conn.execute(text("SELECT * FROM activations WHERE activation_id = :a"),
                                  {"a": aid})).mappings().one()
        key = act["key"]
        legs = (await conn.execute(text(
            "SELECT * FROM activation_legs WHERE activation_key = :k ORDER BY responder"),
            {"k": key})).mappings().all()
        events = (await conn.execute(text(
            "SELECT * FROM activation_events WHERE activation_key = :k ORDER BY id"),
            {"k": key})).mappings().all()

    def clean(row: Any, drop: tuple[str, ...]) -> dict[str, Any]:
        out = {k: mids.get(v, v) if isinstance(v, str) else v
               for k, v in row.items() if k not in drop}
        if "request" in out:
            out["request"] = json.loads(out["request"])
        return out

    return {
        "activation": clean(act, ("key", "activation_id")),
        "legs": [clean(r, ("id", "activation_key")) for r in legs],
        "events": [clean(r, ("id", "activation_key")) for r in events],
    }


def _sent(rec: Recorder, aid: str) -> list[Any]:
    mids = {s.msg_id: f"msg{i}" for i, s in enumerate(rec.sent)}
    return [(s.to, s.msg_type, json.dumps(s.body, sort_keys=True).replace(aid, "AID"),
             s.thread_id == aid, mids.get(s.in_reply_to or "", s.in_reply_to))
            for s in rec.sent]


def _answer(out: ActivationOut, rec: Recorder, inbound_ids: tuple[str, ...] = ()
            ) -> dict[str, Any]:
    mids = _ids(rec, inbound_ids)
    d = out.model_dump(mode="json", exclude={"activation_id"})
    for leg in d["legs"]:
        leg["request_msg_id"] = mids.get(leg["request_msg_id"], leg["request_msg_id"])
        if leg["offer"]:
            leg["offer"]["msg_id"] = mids.get(leg["offer"]["msg_id"])
    return d


def _many(ctx: ActivationContext, rec: Recorder) -> None:
    """Give `ctx` what the node's wiring gives it: a one-insert fan-out sender and a row
    stager (`FederationService.send_many` / `stage_many`), recording like `rec` and queueing
    real outbox rows (the body as the envelope)."""
    def stage_many(_session: Any, messages: Any) -> list[dict[str, Any]]:
        rows = []
        for m in messages:
            before = len(rec.sent)
            rec.n += 1
            mid = new_ulid(rec.clock.now_ms(), rec.n.to_bytes(10, "big"))
            rec.sent.append(Sent(m[0], m[1], m[2], m[3], m[4] if len(m) > 4 else None, mid))
            assert len(rec.sent) == before + 1
            rows.append(enqueue_row(destination=m[0], msg_id=mid, msg_type=m[1].value,
                                    created_ts=rec.clock.now_ms(),
                                    expires_ts=rec.clock.now_ms() + HOUR,
                                    envelope=json.dumps(m[2], sort_keys=True).encode()))
        return rows

    async def send_many(session: Any, messages: Any) -> list[str]:
        rows = stage_many(session, messages)
        await enqueue_many(session, rows)
        return [r["msg_id"] for r in rows]

    async def send(session: Any, to: str, msg_type: MessageType, body: dict[str, Any],
                   thread_id: str | None = None, in_reply_to: str | None = None) -> str:
        return (await send_many(session, [(to, msg_type, body, thread_id, in_reply_to)]))[0]

    ctx.send = send
    ctx.send_many = send_many
    ctx.stage_many = stage_many


async def _outbox(db: Database, rec: Recorder, aid: str) -> list[Any]:
    """The queued rows, ids by place (the body's activation id too)."""
    mids = _ids(rec)
    async with db.read() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).mappings().all()
    return [{k: (mids.get(v, v) if isinstance(v, str) else
                 bytes(v).replace(aid.encode(), b"AID") if isinstance(v, bytes | memoryview)
                 else v) for k, v in r.items() if k != "id"}
            for r in rows if r["msg_id"] in mids]


async def _create(db: Database, ctx: ActivationContext, *, stepwise: bool,
                  targets: list[str] | None = None) -> ActivationOut:
    """A request sent at once: the batched path, or the step-by-step one it replaced
    (`create_request` kept a draft, then `submit`, in one transaction)."""
    async with db.write() as conn:
        uid = (await conn.execute(select(table_of(User).c.id))).scalar_one()
        if not stepwise:
            return await requesting.create_request(conn, ctx, request_in(targets or TARGETS),
                                                   user_id=uid)
        draft = await requesting.create_request(
            conn, ctx, request_in(targets or TARGETS, draft=True), user_id=uid)
        return await requesting.submit(conn, ctx, draft.activation_id)


@pytest.mark.parametrize("many", [False, True])
async def test_create_and_cancel_match_the_stepwise_path(db_url: str, many: bool) -> None:
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await add_user(conn, "coord")
        results: list[Any] = []
        for stepwise in (True, False):
            ctx, rec = make_ctx("agency-a")
            rec.n = 0 if stepwise else 500  # msg_ids of their own in the one outbox
            if many:
                _many(ctx, rec)
            created = await _create(db, ctx, stepwise=stepwise)
            aid = created.activation_id
            # agency-b offers, agency-c declines; then the requester calls it all off
            received = (inbound(MT.ACTIVATION_OFFER, "agency-b", OFFER, thread=aid),
                        inbound(MT.ACTIVATION_DECLINE, "agency-c",
                                {"reason": DeclineReason.NO_CAPACITY}, thread=aid))
            async with db.write() as conn:
                for msg in received:
                    await apply_inbound(conn, ctx, msg)
            ins = tuple(m.msg_id for m in received)
            after_create = await _rows(db, aid, rec, ins)
            ctx.clock.advance(60_000)  # type: ignore[attr-defined]
            async with db.write() as conn:
                if stepwise:
                    cancelled = await cancel_stepwise(conn, ctx, aid,
                                                             CancelReason.RESOLVED_LOCALLY)
                else:
                    cancelled = await ending.cancel(conn, ctx, aid, CancelReason.RESOLVED_LOCALLY)
            results.append((_answer(created, rec), after_create, _answer(cancelled, rec, ins),
                            await _rows(db, aid, rec, ins), _sent(rec, aid),
                            await _outbox(db, rec, aid)))
        old, new = results
        assert new[0] == old[0]  # the answer to the request
        assert new[1] == old[1]  # rows after the request (and the offer and decline)
        assert new[2] == old[2]  # the answer to the cancel
        assert new[3] == old[3]  # rows after the cancel
        assert new[4] == old[4]  # every message, in order
        assert new[5] == old[5]  # the outbox rows, in order
        assert len(new[5]) == (11 if many else 0)
        assert new[2]["state"] == S.CANCELLED.value
        assert [leg["state"] for leg in new[2]["legs"]] == ["cancelled", "declined", "cancelled"]
        kinds = [(m[0], m[1]) for m in new[4]]
        assert kinds[:4] == [("hub-one", MT.ACTIVATION_STATUS),
                             *((t, MT.ACTIVATION_REQUEST) for t in sorted(TARGETS))]


async def test_cancel_of_one_leg_and_of_a_draft_match(db_url: str) -> None:
    async with node_db(db_url) as db:
        async with db.write() as conn:
            uid = await add_user(conn, "coord")
        results: list[Any] = []
        for stepwise in (True, False):
            ctx, rec = make_ctx("agency-a")
            aid = (await _create(db, ctx, stepwise=stepwise)).activation_id
            async with db.write() as conn:
                draft = (await requesting.create_request(
                    conn, ctx, request_in(["agency-b", "agency-c"], draft=True), user_id=uid)
                ).activation_id
            cancel = cancel_stepwise if stepwise else ending.cancel
            async with db.write() as conn:
                one = await cancel(conn, ctx, aid, CancelReason.OTHER, responder="agency-c")
            async with db.write() as conn:
                whole = await cancel(conn, ctx, draft, CancelReason.OTHER)
            results.append((_answer(one, rec), _answer(whole, rec), await _rows(db, aid, rec),
                            await _rows(db, draft, rec), _sent(rec, aid)))
        assert results[1] == results[0]
        assert results[1][1]["state"] == S.CANCELLED.value
        assert results[1][0]["state"] == S.REQUESTED.value


async def test_refused_cancels_store_nothing(db_url: str) -> None:
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await add_user(conn, "coord")
        ctx, rec = make_ctx("agency-a")
        aid = (await _create(db, ctx, stepwise=False)).activation_id
        async with db.write() as conn:
            await ending.cancel(conn, ctx, aid, CancelReason.OTHER)
        before, sent = await _rows(db, aid, rec), len(rec.sent)
        for kw, code in (({}, "terminal_state"), ({"responder": "agency-x"}, "not_found"),
                         ({"responder": "agency-b"}, "terminal_state")):
            with pytest.raises(ActivationError) as err:
                async with db.write() as conn:
                    await ending.cancel(conn, ctx, aid, CancelReason.OTHER, **kw)
            assert err.value.code.value == code
        with pytest.raises(ActivationError) as err:
            async with db.write() as conn:
                await ending.cancel(conn, ctx, "01" + "Z" * 24, CancelReason.OTHER)
        assert err.value.code.value == "not_found"
        assert await _rows(db, aid, rec) == before and len(rec.sent) == sent


async def test_a_leg_moved_meanwhile_refuses_the_cancel(db_url: str) -> None:
    """The legs' update names the state each leg was read in: if another transaction moved
    one in between, nothing matches it, the cancel is refused (`conflict`) and its
    transaction stores nothing."""
    async with node_db(db_url) as db:
        async with db.write() as conn:
            await add_user(conn, "coord")
        ctx, rec = make_ctx("agency-a")
        aid = (await _create(db, ctx, stepwise=False)).activation_id
        async with db.read() as conn:
            snap = await batched.load(conn, aid)
        async with db.write() as conn:  # another writer moves agency-c's leg
            await conn.execute(update(L).where(L.c.responder == "agency-c",
                                               L.c.activation_key == snap[0].key)
                               .values(state=S.OFFERED.value, offer_peers=2))
        before = await _rows(db, aid, rec)
        with pytest.raises(ActivationError) as err:
            async with db.write() as conn:
                await batched.cancel_out(conn, ctx, *snap, CancelReason.OTHER, responder=None)
        assert err.value.code.value == "conflict"
        assert await _rows(db, aid, rec) == before


async def test_statements_per_request_and_cancel_on_postgres(tmp_path: Path,
                                                             pg_admin_url: str) -> None:
    """Through the real API on PostgreSQL: a request to two agencies is one statement (its
    rows, its outbox rows and its audit entry, with no BEGIN and COMMIT around it) and its
    cancel two (a read, then the same); nineteen and eighteen statements in a transaction
    before. The audit entries are those of the transaction path and the chain verifies;
    the federation delivers every message."""
    net = await make_network(3, tmp_path=tmp_path, db="postgres", pg_admin_url=pg_admin_url)
    try:
        a = net.node("agency-1")
        _, token = await add_net_user(a, "coord", Role.COORDINATOR)
        seen: list[str] = []
        sync = a.db.engine.sync_engine

        def count(_conn: Any, _c: Any, stmt: str, *_a: Any) -> None:
            if not stmt.lstrip().startswith("SELECT users.id"):  # the token lookup
                seen.append(stmt)

        def logged(query: Any) -> None:  # what goes to asyncpg directly (`batched_pg.run`)
            seen.append(query.query)

        def checkout(dbapi_conn: Any, *_a: Any) -> None:
            dbapi_conn.driver_connection.add_query_logger(logged)

        def checkin(dbapi_conn: Any, *_a: Any) -> None:
            dbapi_conn.driver_connection.remove_query_logger(logged)

        event.listen(sync, "before_cursor_execute", count)
        event.listen(sync.pool, "checkout", checkout)
        event.listen(sync.pool, "checkin", checkin)
        fed = a.fed
        kicks: list[int] = []
        kick = fed.kick

        def counted_kick() -> None:  # the outbox worker woken when each write commits
            kicks.append(1)
            kick()

        fed.kick = counted_kick  # type: ignore[method-assign]
        now = net.clock.now_ms()
        body = request_in(["agency-2", "agency-3"], event_ts=now - 2 * HOUR,
                          window_start_ts=now, window_end_ts=now + 6 * HOUR,
                          expires_ts=now + 4 * HOUR).model_dump(mode="json")
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(a.url + "/api/v1/activations", json=body,
                                 headers=headers) as r:
                assert r.status == 201, await r.text()
                created = await r.json()
            writes_create = list(seen)
            assert kicks, "the worker was not woken at the request's commit"
            seen.clear()
            kicks.clear()
            async with http.post(a.url + f"/api/v1/activations/{created['activation_id']}"
                                 "/cancel", json={"reason": "resolved_locally"},
                                 headers=headers) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["state"] == "cancelled"
            writes_cancel = list(seen)
            assert kicks, "the worker was not woken at the cancel's commit"
        event.remove(sync, "before_cursor_execute", count)
        event.remove(sync.pool, "checkout", checkout)
        event.remove(sync.pool, "checkin", checkin)
        assert len(writes_create) == 1, writes_create
        assert len(writes_cancel) == 2, writes_cancel
        assert [w.startswith("WITH ") for w in writes_create + writes_cancel] == [
            True, False, True]  # the writes; the cancel's read first
        assert created["state"] == "requested" and len(created["legs"]) == 2
        await net.settle()
        aid = created["activation_id"]
        async with a.db.read() as conn:
            pending = (await conn.execute(text(
                "SELECT count(*) FROM fed_outbox WHERE state = 'pending'"))).scalar_one()
            events = (await conn.execute(select(text("count(*)")).select_from(
                text("activation_events")))).scalar_one()
            entries = (await conn.execute(text(
                "SELECT action, role, target_type, target_id, outcome, detail FROM audit_log "
                "WHERE action LIKE 'activation.%' ORDER BY seq"))).all()
            staged = (await conn.execute(text("SELECT count(*) FROM audit_staged"))).scalar_one()
            report = await verify(conn, a.keys, "agency-1", now_ms=net.clock.now_ms(),
                                  sign_interval_ms=10**12)
        assert pending == 0 and events == 2 + 2 + 3
        assert [tuple(e) for e in entries] == [
            ("activation.request", "coordinator", "activation", aid, "ok",
             '{"state":"requested","targets":2}'),
            ("activation.cancel", "coordinator", "activation", aid, "ok",
             '{"state":"cancelled"}'),
        ]
        assert staged == 0 and report.ok, report
        for n in ("agency-2", "agency-3"):
            async with net.node(n).db.read() as conn:
                states = (await conn.execute(text(
                    "SELECT state FROM activation_legs"))).scalars().all()
            assert states == ["cancelled"]
    finally:
        await net.close()


async def test_one_statement_cancel_refuses_a_moved_leg(tmp_path: Path,
                                                        pg_admin_url: str) -> None:
    """On an autocommit connection the cancel's statement is its whole transaction: a leg
    another transaction moved after the read makes it fail as a whole (`conflict`), with
    no outbox row, history row, move or audit entry stored."""
    net = await make_network(3, tmp_path=tmp_path, db="postgres", pg_admin_url=pg_admin_url)
    try:
        a = net.node("agency-1")
        ctx = actx(a)
        uid, _ = await add_net_user(a, "coord", Role.COORDINATOR)
        now = net.clock.now_ms()
        async with a.db.write() as conn:
            created = await requesting.create_request(conn, ctx, request_in(
                ["agency-2", "agency-3"], event_ts=now - 2 * HOUR, window_start_ts=now,
                window_end_ts=now + 6 * HOUR, expires_ts=now + 4 * HOUR), user_id=uid)

        async def counts() -> list[Any]:
            async with a.db.read() as conn:
                return [(await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
                        for t in ("fed_outbox", "activation_events", "audit_log")]

        async with batched.autocommit(a.db) as conn:
            snap = await batched.load(conn, created.activation_id)
            async with a.db.write() as other:  # another writer moves agency-3's leg
                await other.execute(update(L).where(L.c.responder == "agency-3")
                                    .values(state=S.OFFERED.value, offer_peers=1))
            before = await counts()
            with pytest.raises(ActivationError) as err:
                await batched.cancel_out(conn, ctx, *snap, CancelReason.OTHER, responder=None,
                                         audit=lambda o: entry_row(now, "activation.cancel"))
        assert err.value.code.value == "conflict"
        assert await counts() == before
        async with a.db.read() as conn:
            legs = dict((await conn.execute(select(L.c.responder, L.c.state))).all())
        assert legs == {"agency-2": "requested", "agency-3": "offered"}
    finally:
        await net.close()
