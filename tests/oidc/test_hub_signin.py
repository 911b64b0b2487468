"""OpenID Connect sign-in for board analysts and operators on a real hub against the real
provider (panva/oidc-provider on Node 20): first sign-in creates the hub user with the
mapped role and lands on the dashboard; the provider's groups rule the next sign-in; no
mapped group is refused with a stable code (the user's sessions end, nothing else stored);
a local account is never taken over; the sign-ins are recorded in the hub's account log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.oidc.conftest import HUB_USERS, MakeHub, code_of, session_for, sign_in
from tests.oidc.real_provider import client, real_provider


async def _state(db: Any) -> dict[str, Any]:
    async with db.read() as conn:
        return {t: list((await conn.execute(text(q))).all()) for t, q in {
            "users": "SELECT username, role, active FROM hub_users ORDER BY username",
            "links": "SELECT subject FROM hub_oidc_identities ORDER BY subject",
            "sessions": "SELECT id FROM hub_sessions ORDER BY id"}.items()}


async def test_board_analyst_signs_in_through_the_provider(
        tmp_path: Path, port: int, make_hub: MakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="peernet.hub.users")
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-hub", base)], HUB_USERS) as op:
        hub, db = await make_hub(op.issuer, port)
        before = await _state(db)
        for login, status, code in (("nils", 403, "oidc_no_role"),
                                    ("op", 409, "oidc_username_taken")):
            async with session_for(base) as s:
                got, page = await sign_in(s, base, login)
                assert (got, code_of(page)) == (status, code), login
        assert await _state(db) == before
        async with session_for(base) as s:
            status, page = await sign_in(s, base, "bea")
            assert status == 200 and 'data-kit="oidc-done"' in page
            dash = await s.get(base + "/dashboard", allow_redirects=False)
            assert dash.status == 200
            ops = await s.get(base + "/operator", allow_redirects=False)
            assert ops.status == 403  # a board analyst is not an operator
            # Promoted at the provider: operator at the next sign-in, old session ended.
            op.set_users({**HUB_USERS, "bea": {**HUB_USERS["bea"],
                                               "groups": ["hub-operators"]}})
            async with session_for(base) as s2:
                assert (await sign_in(s2, base, "bea"))[0] == 200
                assert (await s2.get(base + "/operator", allow_redirects=False)).status == 200
                assert (await s.get(base + "/dashboard", allow_redirects=False)).status == 303
                # Removed from the groups: refused, and the open session ends.
                op.set_users({**HUB_USERS, "bea": {**HUB_USERS["bea"], "groups": []}})
                async with session_for(base) as s3:
                    status, page = await sign_in(s3, base, "bea")
                    assert (status, code_of(page)) == (403, "oidc_no_role")
                assert (await s2.get(base + "/operator", allow_redirects=False)).status == 303
        users = {r.username: (r.role, r.active) for r in (await _state(db))["users"]}
        assert users["bea"] == ("operator", True)
        assert (await _state(db))["sessions"] == []
    log = [r.getMessage() for r in caplog.records if r.name == "peernet.hub.users"]
    assert any("bea created by the identity provider (board_analyst)" in m for m in log)
    assert any("bea role board_analyst -> operator" in m for m in log)
    assert any("refused (oidc_no_role) for hub user bea; 1 sessions ended" in m for m in log)
    assert any("refused (oidc_username_taken)" in m for m in log)
