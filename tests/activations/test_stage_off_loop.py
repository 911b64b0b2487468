"""`FederationService.stage_many_off_loop` (the activation writes' stager,
`node.activation.runtime`): the rows are those `stage_many` builds, the envelopes sealed to
the same inner message, built on the sealing threads, not the event loop; a refused
destination is refused the same way with nothing staged. The envelopes' delivery end to
end through the real API is test_batched.py's statement-count test (both responders
receive the request and its cancel)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from federation.errors import FederationError
from federation.sending import Outgoing
from protocol.encoding import unb64u
from protocol.messages import MessageType
from protocol.sealing import unpad, unseal
from tests.federation.network import Network, make_network

MT = MessageType
THREAD = "01J" + "A" * 23


def _messages() -> list[Outgoing]:
    return [Outgoing("agency-2", MT.ACTIVATION_CANCEL, {"reason": "other"}, THREAD, THREAD),
            Outgoing("agency-3", MT.ACTIVATION_CANCEL, {"reason": "resolved_locally"}, THREAD),
            Outgoing("agency-2", MT.ACTIVATION_CANCEL, {"reason": "other"}, THREAD)]


def _opened(net: Network, row: dict[str, Any]) -> dict[str, Any]:
    """The row with its envelope opened: the outer fields the signature and the sealing
    do not randomise, and the sealed inner message (signature and bytes) itself."""
    outer = json.loads(row["envelope"])
    key = net.node(row["destination"]).keys.enc_key
    inner = unpad(unseal(unb64u(outer.pop("ct")), key))
    del outer["ct_sha256"], outer["sig"]["value"]
    return {**{k: v for k, v in row.items() if k != "envelope"}, "outer": outer,
            "inner": inner}


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_off_loop_rows_are_stage_manys(tmp_path: Path, pg_admin_url: str, db: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    net = await make_network(3, tmp_path=tmp_path, db=db, pg_admin_url=pg_admin_url)
    try:
        fed = net.node("agency-1").fed
        monkeypatch.setattr("federation.sending.os.urandom", lambda n: bytes(range(n)))
        seen: list[str] = []
        rows_of = fed._rows

        def spy(*a: Any) -> Any:
            seen.append(threading.current_thread().name)
            return rows_of(*a)

        monkeypatch.setattr(fed, "_rows", spy)
        async with net.node("agency-1").db.write() as conn:
            on_loop = fed.stage_many(conn, _messages())
            off_loop = await fed.stage_many_off_loop(conn, _messages())
        assert seen[0] == threading.current_thread().name
        assert seen[1].startswith("peernet-seal")
        assert len(off_loop) == 3
        assert [_opened(net, r) for r in off_loop] == [_opened(net, r) for r in on_loop]
        assert await fed.stage_many_off_loop(None, []) == []
    finally:
        await net.close()


async def test_off_loop_refuses_an_unknown_destination_alike(tmp_path: Path) -> None:
    net = await make_network(2, tmp_path=tmp_path)
    try:
        fed = net.node("agency-1").fed
        bad = [*_messages()[:1], Outgoing("agency-9", MT.ACTIVATION_CANCEL, {"reason": "other"})]
        codes = []
        async with net.node("agency-1").db.write() as conn:
            for stage in (fed.stage_many, fed.stage_many_off_loop):
                with pytest.raises(FederationError) as err:
                    res = stage(conn, bad)
                    if not isinstance(res, list):
                        await res
                codes.append(err.value.code)
        assert codes == ["unknown_node", "unknown_node"]
        async with net.node("agency-1").db.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM fed_outbox"))).scalar_one() == 0
    finally:
        await net.close()
