"""Issue 15 item 5 (node side), on SQLite and PostgreSQL: the ledger is tamper-evident
(deleting or editing a row refuses every release; a month that left the node is never
drawn again), spending is kept per measure, a node clock running ahead cannot release an
unfinished month, and `peernet node release` fails when the accepted roster cannot load."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import nacl.signing
import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, insert, select, update

from federation.keystore import NodeKeys
from federation.store import inbox, rosters
from node.core.db import Database
from node.core.errors import Code, NodeError
from node.privacy.budget import spent_against, spent_by_measure
from node.privacy.ledger import LedgerEntry, LedgerRow, ReleaseDelivery, record_release
from node.privacy.ledger_attest import check
from node.privacy.runtime import run_once
from node.privacy.schema import ReleasePolicy
from peernet.cli import main
from protocol.ids import new_ulid
from protocol.vocabulary import Measure
from tests.privacy.node_records import add_encounters, make_node_db
from tests.privacy.test_release_service import FakeFed

KEY = nacl.signing.SigningKey(bytes(range(32)))
NODE = "station-7"


def _ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=UTC).timestamp() * 1000)


NOW = _ms(2026, 11, 10)


async def _record(db: Database, month: str, policy: ReleasePolicy | None = None,
                  peer_ms: int | None = None, sent: bool = True) -> LedgerEntry:
    async def send(conn: object, entry: LedgerEntry) -> str:
        return new_ulid(NOW, b"\x01" * 10)

    return await record_release(
        db, node_id=NODE, month=month, policy=policy or ReleasePolicy(), signing_key=KEY,
        key_version=1, now_ms=NOW, on_recorded=send if sent else None, peer_ms=peer_ms)


async def _rows(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(LedgerRow)) or 0)


async def _refused(db: Database, month: str, code: Code, **kw: object) -> None:
    before = await _rows(db)
    with pytest.raises(NodeError) as err:
        await _record(db, month, **kw)  # type: ignore[arg-type]
    assert err.value.code is code, err.value
    assert err.value.body()["error"]["code"] == code.value
    assert await _rows(db) == before


async def test_deleted_row_neither_redraws_nor_refunds(db_url: str) -> None:
    db = await make_node_db(db_url)
    try:
        await add_encounters(db, "2026-09", 40, 10, seed=1)
        first = await _record(db, "2026-09")
        async with db.read() as conn:
            assert (await check(conn, NODE)).ok
        async with db.write() as conn:  # someone with database access deletes the row
            await conn.execute(delete(ReleaseDelivery))
            await conn.execute(delete(LedgerRow).where(LedgerRow.month == "2026-09"))
        # the month left the node: never drawn again (before: a fresh draw, budget refunded)
        await _refused(db, "2026-09", Code.MONTH_ALREADY_SENT)
        # and no other month is released while the ledger has a gap
        await _refused(db, "2026-08", Code.LEDGER_TAMPERED)
        async with db.read() as conn:
            report = await check(conn, NODE)
        assert [(p.code, p.month, p.release_id) for p in report.problems] == [
            ("ledger_gap", "2026-09", first.release_id)]
    finally:
        await db.dispose()


async def test_edited_budget_is_refused(db_url: str) -> None:
    db = await make_node_db(db_url)
    try:
        await _record(db, "2026-09")
        async with db.write() as conn:
            await conn.execute(update(LedgerRow).values(budget_spent="0.0000001"))
        await _refused(db, "2026-10", Code.LEDGER_TAMPERED)
    finally:
        await db.dispose()


async def test_measures_are_kept_apart(db_url: str) -> None:
    """A pure-DP month (eps 1) then zCDP months (rho 1/12 each, yearly 1): before, the
    ledger added eps and rho into one number (1 + 1/12 > 1: over_budget); now eps counts
    as eps^2/2 of rho under zCDP."""
    db = await make_node_db(db_url)
    try:
        pure = ReleasePolicy(measure=Measure.PURE_DP, budget_per_node_year=Decimal(12))
        await _record(db, "2026-01", pure)
        zcdp = ReleasePolicy()
        assert (await _record(db, "2026-02", zcdp)).created
        async with db.read() as conn:
            totals = await spent_by_measure(conn, NODE, 2026)
            assert set(totals) == {"pure_dp", "zcdp"}
            assert totals["pure_dp"] == pytest.approx(Decimal(1))
            assert totals["zcdp"] == pytest.approx(Decimal(1) / 12)
            rho = await spent_against(conn, NODE, 2026, Measure.ZCDP)
            assert float(rho) == pytest.approx(0.5 + 1 / 12)
            eps = await spent_against(conn, NODE, 2026, Measure.PURE_DP)
            assert float(eps) == pytest.approx(1.0)
        for month in ("2026-03", "2026-04", "2026-05", "2026-06", "2026-07"):
            assert (await _record(db, month, zcdp)).created  # 0.5 + 6/12 = 1.0
        await _refused(db, "2026-08", Code.OVER_BUDGET, policy=zcdp)
    finally:
        await db.dispose()


async def test_clock_ahead_cannot_release_an_unfinished_month(db_url: str) -> None:
    """The node's clock says 2026-11-10 but the newest message from the hub was sent on
    2026-10-20: October is not over as far as anyone else knows."""
    db = await make_node_db(db_url)
    try:
        await _refused(db, "2026-10", Code.MONTH_NOT_FINISHED, peer_ms=_ms(2026, 10, 20))
        await _refused(db, "2026-11", Code.MONTH_NOT_FINISHED)  # the node's own month
        await _refused(db, "2027-01", Code.MONTH_NOT_FINISHED)  # a future month
        # through the release pass: the hub's last message sits in the inbox
        async with db.write() as conn:
            await conn.execute(insert(inbox).values(
                from_node="hub-north", msg_id=new_ulid(_ms(2026, 10, 20), b"\x02" * 10),
                msg_type="ack", status="accepted", code=None, received_ts=_ms(2026, 11, 10),
                expires_ts=_ms(2026, 12, 1)))
        fed = FakeFed()
        keys_of = NodeKeys.generate()
        assert await run_once(db, fed, node_id=NODE, keys=keys_of, now_ms=_ms(2026, 11, 10)) == []
        assert await _rows(db) == 0 and fed.sent == []
        # once the hub vouches for a time after October, October is released
        async with db.write() as conn:
            await conn.execute(insert(inbox).values(
                from_node="hub-north", msg_id=new_ulid(_ms(2026, 11, 6), b"\x03" * 10),
                msg_type="ack", status="accepted", code=None, received_ts=_ms(2026, 11, 10),
                expires_ts=_ms(2026, 12, 1)))
        assert len(await run_once(db, fed, node_id=NODE, keys=keys_of,
                                  now_ms=_ms(2026, 11, 10))) == 1
    finally:
        await db.dispose()


def test_release_cli_fails_when_the_roster_cannot_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERNET_PASSPHRASE", "correct horse battery staple")
    cfg = tmp_path / "node.toml"
    runner = CliRunner()
    init = runner.invoke(main, [
        "node", "init", "--config", str(cfg), "--node-id", "metro-fire", "--name", "Metro Fire",
        "--data-dir", str(tmp_path / "data"), "--password-stdin",
    ], input="a long admin password 123\n")
    assert init.exit_code == 0, init.output
    import asyncio

    from federation.database import make_engine

    async def corrupt() -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'node.db'}")
        async with engine.begin() as conn:
            await conn.execute(insert(rosters).values(
                version=1, sha256="x" * 43, document=b"not a roster", accepted_ts=NOW))
        await engine.dispose()

    ok = runner.invoke(main, ["node", "release", "--month", "2026-01", "--config", str(cfg)])
    assert ok.exit_code == 0, ok.output
    verified = runner.invoke(main, ["node", "ledger", "--verify", "--config", str(cfg)])
    assert verified.exit_code == 0 and '"attested": 1' in verified.output, verified.output
    audit = runner.invoke(main, ["node", "audit", "verify", "--offline", "--config", str(cfg)])
    assert audit.exit_code == 0, audit.output  # the CLI signed the head it moved
    asyncio.run(corrupt())
    out = runner.invoke(main, ["node", "release", "--month", "2026-02", "--config", str(cfg)])
    assert out.exit_code != 0
    assert "roster_unreadable" in out.output and len(out.output.strip().splitlines()) == 1
    listing = runner.invoke(main, ["node", "ledger", "--json", "--config", str(cfg)])
    assert listing.exit_code == 0 and len(json.loads(listing.output)) == 1
