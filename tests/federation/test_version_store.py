"""`federation.version_store`: the accepted versions a roster or compact store keeps, on
both databases. A version already stored is skipped; the same version with other bytes
(another process took a different document) is `split_view`, and nothing of the batch is
stored; the stored bytes are read back as they arrived."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.database import make_engine
from federation.errors import FedCode, FederationError
from federation.store import METADATA, rosters
from federation.version_store import OwnWrite, store_new_versions, stored_document
from protocol.encoding import sha256_b64u


@dataclass(frozen=True)
class Doc:
    version: int
    body: bytes

    @property
    def sha256(self) -> str:
        return sha256_b64u(self.body)

    def to_bytes(self) -> bytes:
        return self.body


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    async with eng.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield eng
    await eng.dispose()


async def _stored(engine: AsyncEngine) -> list[tuple[int, bytes]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(rosters.c.version, rosters.c.document).order_by(rosters.c.version))).all()
    return [(r.version, bytes(r.document)) for r in rows]


async def test_versions_stored_once_and_read_back(engine: AsyncEngine) -> None:
    write = OwnWrite(engine)
    v1, v2 = Doc(1, b'{"v":1}'), Doc(2, b'{"v":2}')
    async with write() as conn:
        await store_new_versions(conn, rosters, [v1], 10, lock="fed_roster", label="roster")
    async with write() as conn:  # v1 again (another process stored it first): skipped
        await store_new_versions(conn, rosters, [v1, v2], 20, lock="fed_roster",
                                 label="roster")
    assert await _stored(engine) == [(1, v1.body), (2, v2.body)]
    assert await stored_document(engine, rosters) == v2.body
    assert await stored_document(engine, rosters, 1) == v1.body
    assert await stored_document(engine, rosters, 3) is None


async def test_other_bytes_under_a_stored_version_are_split_view_and_store_nothing(
    engine: AsyncEngine,
) -> None:
    write = OwnWrite(engine)
    async with write() as conn:
        await store_new_versions(conn, rosters, [Doc(1, b"a")], 10, lock="fed_roster",
                                 label="roster")
    with pytest.raises(FederationError) as e:
        async with write() as conn:
            await store_new_versions(conn, rosters, [Doc(2, b"b"), Doc(1, b"other")], 20,
                                     lock="fed_roster", label="roster")
    assert e.value.code == FedCode.SPLIT_VIEW
    assert "roster version 1 differs" in str(e.value)
    assert await _stored(engine) == [(1, b"a")]
