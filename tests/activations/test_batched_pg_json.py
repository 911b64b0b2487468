"""The one-parameter JSON statements of `node.activation.batched_pg` against the array
statements they replace (tests/activations/array_statements.py), on PostgreSQL (the only
engine these statements run on; test_batched.py compares the whole path with the
step-by-step one on both engines).

Each case runs the old statement on one fresh database and the new one on another, with
the same values, and compares every row of every table they touch (serial ids included),
the linked audit chain too; values chosen to break an encoding: quotes, backslashes, a
string that looks like bytea's hex input, non-ASCII text, NULLs, the largest bigint, bytes
of every value. Bad input is refused by both the same way with nothing stored; a moved
row is `conflict` for both."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from node.activation import batched, batched_pg
from node.activation.errors import ActivationError
from node.activation.requester import checked_request
from node.activation.rows import json_text
from node.core.audit_entry import entry_row
from node.core.db import Database
from peernet.throwaway_pg import create_database, drop_database
from protocol.wire_types import wire_json
from tests.activations import array_statements
from tests.activations.helpers import T0, add_user, make_ctx, node_db, request_in
from tests.activations.test_service import OFFER

TABLES = ("activations", "activation_legs", "activation_events", "fed_outbox", "audit_log",
          "audit_staged")
ODD = 'q"uo\'te \\back\\slash \\x41 é ✓ 🚒 {"json": [1]} \t\n'
BIG = 2**63 - 1


@pytest.fixture
async def pg_pair(pg_admin_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two fresh node databases on PostgreSQL: one for the array statements, one for the
    JSON ones."""
    names = ["t_" + uuid.uuid4().hex[:16] for _ in range(2)]
    urls = [await create_database(pg_admin_url, n) for n in names]
    try:
        async with node_db(urls[0]) as old, node_db(urls[1]) as new:
            yield old, new
    finally:
        for n in names:
            await drop_database(pg_admin_url, n)


async def _dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    out = {}
    async with db.read() as conn:
        for t in TABLES:
            rows = (await conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))).mappings().all()  # noqa: S608
            out[t] = [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()}
                      for r in rows]
    return out


def _outbox_row(i: int, *, envelope: bytes | None, intent: str | None,
                dest: str = "agency-b") -> dict[str, Any]:
    return {"destination": dest, "msg_id": f"01J{i:023d}", "msg_type": "activation_request",
            "envelope": envelope, "intent": intent, "state": "pending", "attempts": 0,
            "next_attempt_ts": T0 + i, "created_ts": T0, "expires_ts": BIG,
            "ignored_key": object()}  # keys beyond the table's columns are not sent


def _create_args(key: uuid.UUID, uid: uuid.UUID | None, n_legs: int, *,
                 audited: bool) -> tuple[Any, ...]:
    act = {"key": key, "activation_id": "01J" + key.hex[-23:].upper(), "requester": "agency-a",
           "side": "out", "own_state": "requested", "request": '{"note":' + repr(ODD) + "}",
           "incident_ref": ODD[:40], "incident_type": "line_of_duty_death", "event_ts": -1,
           "expires_ts": BIG, "peers_needed": 2**31 - 1, "affected_total": 0,
           "coordinator_id": uid, "created_at": T0, "updated_at": T0}
    responders = ["agency-b", "agency-c", "agency-ü"][:n_legs]
    outbox = [_outbox_row(0, envelope=None, intent='{"body":"' + ODD.replace('"', "'") + '"}',
                          dest="hub-one")]
    outbox += [_outbox_row(i + 1, envelope=bytes(range(256)) * (i + 1) + b"\\x00'\"", intent=None,
                           dest=r) for i, r in enumerate(responders)]
    legs = [{"id": uuid.UUID(int=(key.int + i + 1) % 2**128), "activation_key": key,
             "responder": r, "state": "requested", "request_msg_id": outbox[i + 1]["msg_id"],
             "offer_peers": 0, "updated_at": T0} for i, r in enumerate(responders)]
    events = [{"activation_key": key, "responder": None, "state": s, "actor_node": "agency-a",
               "msg_id": None, "ts": T0, "note": None} for s in ("draft", "requested")]
    events += [{"activation_key": key, "responder": leg["responder"], "state": "requested",
                "actor_node": "agency-a", "msg_id": leg["request_msg_id"], "ts": T0,
                "note": ODD[:30]} for leg in legs]
    staged = batched_pg.staged_row(entry_row(T0, "activation.request", target_type="activation",
                                             target_id=act["activation_id"],
                                             detail={"note": ODD})) if audited else None
    return act, legs, events, outbox, staged


async def _run_both(old: Database, new: Database,
                    build: Callable[[Any], tuple[Any, dict[str, Any]]],
                    *, autocommit: bool) -> list[str | None]:
    """`build(module)` run on each database (array statements on `old`, JSON on `new`);
    the code each refusal had (None: written)."""
    codes: list[str | None] = []
    for db, module in ((old, array_statements), (new, batched_pg)):
        try:
            if autocommit:
                async with batched.autocommit(db) as conn:
                    await module.run(conn, *build(module))  # type: ignore[attr-defined]
            else:
                async with db.write() as conn:
                    await module.run(conn, *build(module))  # type: ignore[attr-defined]
            codes.append(None)
        except ActivationError as exc:
            codes.append(exc.code.value)
        except DBAPIError as exc:
            codes.append(str(getattr(exc.orig, "sqlstate", None) or exc.orig))
    return codes


async def _users(old: Database, new: Database) -> uuid.UUID:
    ids = []
    for db in (old, new):
        async with db.write() as conn:
            ids.append(await add_user(conn, "coord"))
        async with db.write() as conn:  # the same id in both, for the activations' reference
            await conn.execute(text("UPDATE users SET id = :i"), {"i": ids[0]})
    return ids[0]


@pytest.mark.parametrize(("n_legs", "audited", "autocommit"),
                         [(0, False, False), (1, True, True), (3, True, False),
                          (3, False, True)])
async def test_create_and_cancel_write_what_the_array_statements_wrote(
        pg_pair: tuple[Database, Database], n_legs: int, audited: bool,
        autocommit: bool) -> None:
    old, new = pg_pair
    uid = await _users(old, new)
    keys = [uuid.UUID(int=1000 * (i + 1)) for i in range(2)]
    for key in keys:  # two activations: the second's serial ids follow the first's
        args = _create_args(key, uid if key == keys[0] else None, n_legs, audited=audited)
        if key == keys[1]:
            args[3][:] = [{**r, "msg_id": r["msg_id"][:-1] + "Z"} for r in args[3]]
        assert await _run_both(old, new, lambda m, a=args: m.create_statement(*a),
                               autocommit=autocommit) == [None, None]
    created = await _dump(old)
    assert created == await _dump(new)
    assert len(created["activation_legs"]) == 2 * n_legs
    assert len(created["audit_log"]) == (2 if audited else 0) and not created["audit_staged"]
    # the cancel: every leg but the last moves, the activation too; messages and history
    legs = [(r["id"], r["state"]) for r in created["activation_legs"]
            if r["activation_key"] == keys[0]][: max(0, n_legs - 1)]
    values = {"state": "cancelled", "cancel_reason": "other", "cancelled_by": ODD[:60],
              "updated_at": T0 + 60_000}
    outbox = [_outbox_row(100 + i, envelope=bytes([255 - i]) * 3, intent=None)
              for i in range(len(legs))]
    events = [{"activation_key": keys[0], "responder": "agency-b", "state": "cancelled",
               "actor_node": "agency-a", "msg_id": r["msg_id"], "ts": T0 + 60_000,
               "note": None} for r in outbox]
    staged = batched_pg.staged_row(entry_row(T0 + 60_000, "activation.cancel")) if audited else None
    for own in ((keys[0], "requested", "cancelled"), None):
        assert await _run_both(old, new, lambda m, o=own: m.cancel_statement(
            legs if o else [], values, o, events if o else [], outbox if o else [], staged),
            autocommit=autocommit) == [None, None]
    cancelled = await _dump(old)
    assert cancelled == await _dump(new)
    assert [r["own_state"] for r in cancelled["activations"]] == ["cancelled", "requested"]
    assert sum(r["state"] == "cancelled" for r in cancelled["activation_legs"]) == len(legs)


async def test_a_moved_row_is_a_conflict_for_both(pg_pair: tuple[Database, Database]) -> None:
    """A leg, or the activation, no longer in the state read: both statements fail as a
    whole (`conflict`) and store nothing, in autocommit and in a transaction."""
    old, new = pg_pair
    key = uuid.UUID(int=7)
    args = _create_args(key, None, 2, audited=False)
    assert await _run_both(old, new, lambda m: m.create_statement(*args),
                           autocommit=True) == [None, None]
    before = await _dump(new)
    leg_ids = [leg["id"] for leg in args[1]]
    values = {"state": "cancelled", "cancel_reason": "other", "cancelled_by": "agency-a",
              "updated_at": T0 + 1}
    cases = [
        ([(leg_ids[0], "requested"), (leg_ids[1], "offered")], None),  # one leg moved
        ([(leg_ids[0], "requested"), (leg_ids[0], "requested")], None),  # one leg twice
        ([(leg_ids[0], "requested")], (key, "draft", "cancelled")),  # the activation moved
        ([], (uuid.UUID(int=8), "requested", "cancelled")),  # no such activation
    ]
    staged = batched_pg.staged_row(entry_row(T0 + 1, "activation.cancel"))
    for autocommit in (True, False):
        for legs, own in cases:
            assert await _run_both(old, new, lambda m, g=legs, o=own: m.cancel_statement(
                g, values, o, [], [_outbox_row(50, envelope=b"x", intent=None)], staged),
                autocommit=autocommit) == ["conflict", "conflict"]
    assert await _dump(new) == before == await _dump(old)


async def test_bad_values_are_refused_alike_with_nothing_stored(
        pg_pair: tuple[Database, Database]) -> None:
    """Values the columns refuse (too long, outside a CHECK, a duplicate, a missing
    reference, a type with no JSON form) fail the whole statement on both paths, with the
    same SQLSTATE, and nothing of it is stored."""
    old, new = pg_pair
    base = _create_args(uuid.UUID(int=1000), None, 2, audited=True)
    assert await _run_both(old, new, lambda m: m.create_statement(*base),
                           autocommit=True) == [None, None]
    before = await _dump(new)

    def bad(change: Callable[[tuple[Any, ...]], None]) -> tuple[Any, ...]:
        args = _create_args(uuid.UUID(int=2000), None, 2, audited=True)
        args[3][:] = [{**r, "msg_id": r["msg_id"][:-1] + "Y"} for r in args[3]]
        change(args)
        return args

    cases: list[tuple[str, tuple[Any, ...]]] = [
        ("22001", bad(lambda a: a[0].update(activation_id="0" * 27))),  # varchar(26)
        ("23514", bad(lambda a: a[1][0].update(state="bogus"))),  # CHECK
        ("23505", bad(lambda a: a[3][1].update(msg_id=base[3][1]["msg_id"]))),  # unique
        ("23503", bad(lambda a: a[2][0].update(activation_key=uuid.UUID(int=99)))),  # FK
        ("23502", bad(lambda a: a[2][0].update(actor_node=None))),  # NOT NULL
        ("22001", bad(lambda a: a[4].update(action="x" * 41))),  # the audit entry's
    ]
    for autocommit in (True, False):
        for sqlstate, args in cases:
            codes = await _run_both(old, new, lambda m, a=args: m.create_statement(*a),
                                    autocommit=autocommit)
            assert codes == [sqlstate, sqlstate], (sqlstate, codes)
    leg = (base[1][0]["id"], "requested")
    for reason, sqlstate in (("x" * 33, "22001"), (None, "23502")):  # varchar(32); NOT NULL
        values = {"state": "cancelled" if reason else None, "cancel_reason": reason,
                  "cancelled_by": "agency-a", "updated_at": T0 + 1}
        assert await _run_both(old, new, lambda m, v=values: m.cancel_statement(
            [leg], v, (base[0]["key"], "requested", "cancelled"), [], [], None),
            autocommit=True) == [sqlstate, sqlstate]
    with pytest.raises(TypeError):  # refused before anything is sent
        batched_pg.create_statement(*bad(lambda a: a[0].update(peers_needed={1, 2})))
    assert await _dump(new) == before == await _dump(old)


async def test_the_direct_read_loads_what_sqlalchemy_loads(
        pg_pair: tuple[Database, Database]) -> None:
    """`batched.load` in autocommit (the API's cancel: the query sent to asyncpg directly)
    and in a transaction (through SQLAlchemy) give the same activation, legs (in responder
    order, every column) and approval state, and refuse alike."""
    _, db = pg_pair
    keys = [uuid.UUID(int=3000), uuid.UUID(int=4000)]
    _, body, _ = checked_request(make_ctx("agency-a")[0], request_in(["agency-b"]))
    for i, key in enumerate(keys):
        args = _create_args(key, None, 3 - i, audited=False)
        args[0]["request"] = json_text(wire_json(body))
        args[3][:] = [{**r, "msg_id": r["msg_id"][:-1] + "KL"[i]} for r in args[3]]
        async with batched.autocommit(db) as conn:
            await batched_pg.run(conn, *batched_pg.create_statement(*args))
    async with db.write() as conn:  # a leg with an offer, the second activation's id reused
        await conn.execute(text(
            "UPDATE activation_legs SET state = 'offered', offer_peers = 3, offer = :o, "
            "accepted_at = 5 WHERE responder = 'agency-c'"), {"o": json.dumps(OFFER)})
        aid = (await conn.execute(text("SELECT activation_id FROM activations WHERE key = :k"),
                                  {"k": keys[0]})).scalar_one()
        await conn.execute(text("UPDATE activations SET requester = 'agency-z', "
                                "activation_id = :a WHERE key = :k"), {"a": aid, "k": keys[1]})
    results = []
    for direct in (True, False):
        got: list[Any] = []
        ctx = batched.autocommit(db) if direct else db.write()
        async with ctx as conn:
            for requester in ("agency-a", "agency-z", None, "agency-q"):
                try:
                    got.append(await batched.load(conn, aid, requester))
                except ActivationError as exc:
                    got.append(exc.code.value)
            try:
                await batched.load(conn, "01" + "Z" * 24)
            except ActivationError as exc:
                got.append(exc.code.value)
        results.append(got)
    assert results[0] == results[1]
    act, legs, approval = results[0][0]
    assert [leg.responder for leg in legs] == ["agency-b", "agency-c", "agency-ü"]
    assert legs[1].offer_peers == 3 and approval is None and act.key == keys[0]
    assert results[0][2:] == ["conflict", "not_found", "not_found"]
