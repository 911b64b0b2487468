"""ID tokens a real provider would never send, refused by a real node and a real hub with
a stable code and nothing stored changed: signed by another key (same key id, and an
unknown key id), from another issuer, for another sign-in (nonce), expired, for another
client, and without the groups claim. The in-test provider (`tests.oidc.fake_provider`)
runs the real code flow with PKCE; only its token is tampered with. The untampered token
signs in (the control)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from bench.reliability_report import record
from tests.oidc.conftest import MakeHub, MakeOidcNode, code_of, session_for
from tests.oidc.fake_provider import FakeProvider
from tests.oidc.real_provider import free_port

EXPECTED = {
    "bad_signature": (401, "oidc_bad_signature"),
    "unknown_key": (401, "oidc_bad_signature"),
    "wrong_issuer": (401, "oidc_wrong_issuer"),
    "nonce": (401, "oidc_nonce"),
    "expired": (401, "oidc_token_expired"),
    "wrong_audience": (401, "oidc_bad_token"),
    "no_groups": (403, "oidc_no_groups"),
}


async def test_tampered_id_tokens_are_refused_and_nothing_is_stored(
        fake: FakeProvider, make_oidc_node: MakeOidcNode) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    node = await make_oidc_node(fake.issuer, port=port)
    before = await node.state()
    for mode, expected in EXPECTED.items():
        fake.mode = mode
        async with session_for(base) as s:
            r = await s.get(base + "/login/oidc")
            got = (r.status, code_of(await r.text()))
            assert got == expected, mode
            assert "peernet_session" not in {c.key for c in s.cookie_jar}, mode
        assert await node.state() == before, mode
    refused = await node.audit("login.oidc.refused")
    assert len(refused) == len(EXPECTED)
    assert [r.detail for r in refused] == [f'{{"code":"{c}"}}' for _, c in EXPECTED.values()]
    fake.mode = "good"  # the control: the same flow with an honest token signs in
    async with session_for(base) as s:
        r = await s.get(base + "/login/oidc")
        assert r.status == 200 and 'data-kit="oidc-done"' in await r.text()
    assert len((await node.state())["sessions"]) == 1
    record("security-oidc-tampered-tokens", area="security",
           case="tampered ID tokens at the node's OpenID Connect callback",
           how="an in-test provider runs the code flow with PKCE and sends a token signed "
               "by another key (same and unknown kid), from another issuer, with another "
               "nonce, expired, for another client, without the groups claim",
           result="each refused with its stable code (oidc_bad_signature, "
                  "oidc_wrong_issuer, oidc_nonce, oidc_token_expired, oidc_bad_token, "
                  "oidc_no_groups); no user, link, session or token stored; the honest "
                  "token signs in", figures={"cases": len(EXPECTED)})


async def test_the_hub_refuses_tampered_id_tokens_the_same_way(
        fake: FakeProvider, make_hub: MakeHub) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    fake.groups = ["board-analysts"]
    _client, db = await make_hub(fake.issuer, port)

    async def rows() -> list[Any]:
        async with db.read() as conn:
            return [list((await conn.execute(text(q))).all()) for q in (
                "SELECT username, role FROM hub_users ORDER BY username",
                "SELECT subject FROM hub_oidc_identities", "SELECT id FROM hub_sessions")]

    before = await rows()
    for mode, expected in EXPECTED.items():
        fake.mode = mode
        async with session_for(base) as s:
            r = await s.get(base + "/login/oidc")
            assert (r.status, code_of(await r.text())) == expected, mode
        assert await rows() == before, mode
    fake.mode = "good"
    async with session_for(base) as s:
        r = await s.get(base + "/login/oidc")
        assert r.status == 200
        assert (await s.get(base + "/dashboard", allow_redirects=False)).status == 200
