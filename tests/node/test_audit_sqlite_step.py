"""`node.core.audit_sqlite_step`: a SQLite group commit in one statement stores exactly what
the statement-by-statement group stores (values, types, order, the head), writes nothing
when the head moved or a row fails, declines what it cannot take, raises a busy lock, and is
the way an encounter write goes in the running node."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from node.core import audit_sqlite
from node.core.audit_sqlite_step import HEAD_MOVED, write_in_one_step
from tests.node.conftest import MakeNode, encounter

_T = "INSERT INTO t (id, note, n, raw, x) VALUES (?, ?, ?, ?, ?)"
_U = "INSERT INTO u (t_id, label) VALUES (?, ?)"
_LOG = "INSERT INTO log (seq, what) VALUES (?, ?)"


def _db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        PRAGMA foreign_keys = ON;
        CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER, hash TEXT);
        INSERT INTO audit_head VALUES (1, 0, 'h0');
        CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT NOT NULL, n NUMERIC, raw BLOB,
                        x DATE);
        CREATE TABLE u (k INTEGER PRIMARY KEY AUTOINCREMENT, t_id INTEGER NOT NULL
                        REFERENCES t (id), label VARCHAR(10));
        CREATE TABLE log (seq INTEGER PRIMARY KEY, what TEXT);
    """)
    return conn


def _items(start: int, values: list[list[Any]], follow: set[int]) -> list[Any]:
    out = []
    for i, row in enumerate(values):
        seq = start + i + 1
        inserts = [(_T, [seq, *row])]
        if i in follow:
            inserts.append((_U, [seq, f"u{seq}"]))
        inserts.append((_LOG, [seq, f"w{seq}"]))
        out.append(((seq, f"h{seq}", seq - 1, f"h{seq - 1}"), inserts))
    return out


def _dump(conn: sqlite3.Connection) -> list[Any]:
    out: list[Any] = [conn.execute("SELECT seq, hash FROM audit_head").fetchall()]
    for table in ("t", "u", "log"):
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        typed = ", ".join(f"{c}, typeof({c})" for c in cols)
        out.append(conn.execute(f"SELECT rowid, {typed} FROM {table} ORDER BY rowid").fetchall())
    return out


# Values as the bind processors leave them, and awkward ones: text that looks like a
# number or a date, NUL and non-BMP text, big integers, floats, bytes, NULL.
_VALUES: list[list[Any]] = [
    ["plain", 1, b"\x00\x01", "2026-06-18"],
    ["12", "12", None, "2026-06-18"],
    ["nul\x00inside \U0001f600 é", 2**62, b"", None],
    ["", 1.5, b"bytes", "not a date"],
    ["x" * 300, -7, None, 20260618],
]


def test_one_step_stores_what_the_statements_store(tmp_path: Path) -> None:
    one, many = _db(tmp_path / "one.db"), _db(tmp_path / "many.db")
    items = _items(0, _VALUES, follow={0, 2, 3})
    views: dict[Any, Any] = {}
    assert write_in_one_step(one, items, views) is False
    assert audit_sqlite.write_group(many, items) == [False] * len(items)  # statement by statement
    assert _dump(one) == _dump(many)
    more = _items(len(items), _VALUES[:2], follow={1})  # the same view, again
    assert write_in_one_step(one, more, views) is False
    assert audit_sqlite.write_group(many, more) == [False, False]
    assert _dump(one) == _dump(many)
    assert len(views) == 1 and not one.in_transaction


def test_a_moved_head_writes_nothing(tmp_path: Path) -> None:
    conn = _db(tmp_path / "g.db")
    before = _dump(conn)
    stale = [((5, "h5", 4, "h4"), [(_T, [5, "a", 1, None, None]), (_LOG, [5, "w"])])]
    assert write_in_one_step(conn, stale, {}) is True
    assert _dump(conn) == before


def test_a_failing_row_writes_nothing_and_leaves_it_to_the_statements(tmp_path: Path) -> None:
    conn = _db(tmp_path / "g.db")
    items = _items(0, [["ok", 1, None, None], [None, 2, None, None]], follow=set())
    before = _dump(conn)
    assert write_in_one_step(conn, items, {}) is None  # NOT NULL on the second row
    assert _dump(conn) == before
    assert audit_sqlite.write_group(conn, items, {}) == [False, True]  # the good one lands
    assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]


@pytest.mark.parametrize("case", ["repeated", "reordered", "other shape", "too many"])
def test_what_it_cannot_take_is_declined(tmp_path: Path, case: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _db(tmp_path / "g.db")
    guard = (1, "h1", 0, "h0")
    t_row = (_T, [1, "a", 1, None, None])
    if case == "repeated":  # two rows of one table in one write
        items = [(guard, [t_row, (_U, [1, "a"]), (_U, [1, "b"])])]
    elif case == "reordered":  # the second write names its statements in another order
        items = [(guard, [t_row, (_LOG, [1, "w"])]),
                 ((2, "h2", 1, "h1"), [(_LOG, [2, "w"]), (_T, [2, "b", 1, None, None])])]
    elif case == "other shape":
        items = [(guard, [("INSERT INTO log DEFAULT VALUES", [])])]
    else:
        monkeypatch.setattr("node.core.audit_sqlite_step._MAX_VARIABLES", 10)
        items = _items(0, _VALUES[:2], follow=set())
    before = _dump(conn)
    assert write_in_one_step(conn, items, {}) is None
    assert _dump(conn) == before


def test_a_lock_held_past_the_busy_timeout_raises(tmp_path: Path) -> None:
    conn = _db(tmp_path / "g.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            write_in_one_step(conn, _items(0, _VALUES[:1], follow=set()), {})
    finally:
        other.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_the_head_moved_message_is_the_triggers_own() -> None:
    assert "'" not in HEAD_MOVED  # it sits inside a quoted SQL literal


async def test_encounter_writes_go_in_one_statement(make_node: MakeNode) -> None:
    node = await make_node()
    if not node.ctx.db.is_sqlite:
        pytest.skip("SQLite's group commit")
    await node.post("sup1", "/api/v1/encounters", encounter())  # warms the head
    await node.post("sup1", "/api/v1/encounters", encounter())  # opens the group connection
    conn = node.ctx.db.write_group.conn
    traced: list[str] = []
    conn.set_trace_callback(traced.append)
    results = await asyncio.gather(*[
        node.post("sup1", "/api/v1/encounters", encounter(recipient=f"R{i}")) for i in range(8)])
    conn.set_trace_callback(None)
    assert [s for s, _ in results] == [201] * 8
    writes = [s for s in traced if not s.startswith("CREATE TEMP")]
    assert writes and all(s.startswith("INSERT INTO peernet_group_") for s in writes), writes
    # (the trace repeats a statement for each statement its trigger runs)
    assert len(set(writes)) < 8  # several writes in one statement
    assert await node.count("encounters") == 10


def test_statements_run_in_an_order_every_write_agrees_with() -> None:
    from node.core.audit_sqlite_step import _order

    e, f, a = "INSERT INTO e (x) VALUES (?)", "INSERT INTO f (x) VALUES (?)", \
        "INSERT INTO a (x) VALUES (?)"
    assert _order(((e, a), (e, f, a))) == (e, f, a)  # the follow-up fits between
    assert _order(((e, f, a), (e, a))) == (e, f, a)
    assert _order(((e, a), (a, e))) is None  # no order keeps both
    assert _order(((e, e),)) is None
