"""API tokens: revoked with their owner's password or role change, listed and revoked by
`GET /api/v1/tokens` and `DELETE /api/v1/tokens/{id}` (own tokens; admins any), and by
`peernet node token list|revoke`; refusals carry stable codes and change nothing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import text

from bench.reliability_report import record
from federation.database import make_engine
from node.cli import node_group
from tests.node.conftest import PASSWORD, MakeNode, Node


async def _ids(node: Node, who: str, user: str | None = None) -> list[str]:
    path = "/api/v1/tokens" + (f"?user={user}" if user else "")
    status, body = await node.get(who, path)
    assert status == 200, body
    return [t["id"] for t in body["items"] if t["state"] == "active"]


async def _delete(node: Node, who: str, tid: str) -> tuple[int, Any]:
    r = await node.client.delete(f"/api/v1/tokens/{tid}", headers=node.auth(who))
    return r.status, await r.json()


async def _revoked(node: Node) -> int:
    return await _count(node, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL")


async def _count(node: Node, sql: str) -> int:
    async with node.ctx.db.read() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_password_and_role_changes_revoke_tokens(make_node: MakeNode) -> None:
    node = await make_node()
    for who in ("sup1", "sup2"):
        assert (await node.get(who, "/api/v1/me"))[0] == 200
    r = await node.client.patch(f"/api/v1/users/{node.users['sup1']}",
                                json={"password": "a brand new password"},
                                headers=node.auth("admin"))
    assert r.status == 200, await r.json()
    r = await node.client.patch(f"/api/v1/users/{node.users['sup2']}",
                                json={"role": "coordinator"}, headers=node.auth("admin"))
    assert r.status == 200, await r.json()
    for who in ("sup1", "sup2"):
        status, body = await node.get(who, "/api/v1/me")
        assert (status, body["error"]["code"]) == (401, "unauthenticated")
    assert (await node.get("coord", "/api/v1/me"))[0] == 200  # others keep theirs
    r = await node.client.patch(f"/api/v1/users/{node.users['coord']}", json={"team": "b"},
                                headers=node.auth("admin"))
    assert r.status == 200
    assert (await node.get("coord", "/api/v1/me"))[0] == 200  # a team change revokes nothing
    assert await _revoked(node) == 2
    record("security-token-password-change", area="security",
           case="API token after its owner's password or role changes",
           how="a supporter's token used after an admin changes the password; another's "
               "after a role change (real node, SQLite and PostgreSQL)",
           result="both refused 401 unauthenticated at once; other users' tokens unaffected",
           figures={"tokens_revoked": 2})


async def test_delete_revokes_own_and_admin_any(make_node: MakeNode) -> None:
    node = await make_node()
    [own] = await _ids(node, "sup1")
    status, body = await node.get("sup1", "/api/v1/tokens")
    assert set(body["items"][0]) == {"id", "user", "label", "created_at", "expires_at",
                                      "revoked_at", "state"}
    assert node.tokens["sup1"] not in str(body)
    status, body = await _delete(node, "sup1", own)
    assert status == 200 and body["state"] == "revoked" and body["revoked_at"]
    assert (await node.get("sup1", "/api/v1/me"))[0] == 401
    [other] = await _ids(node, "admin", user="sup2")
    status, body = await _delete(node, "admin", other)
    assert (status, body["user"]) == (200, "sup2")
    assert (await node.get("sup2", "/api/v1/me"))[0] == 401
    again = await _delete(node, "admin", other)  # idempotent, first time kept
    assert again[0] == 200 and again[1] == body
    assert await _count(node, "SELECT count(*) FROM audit_log WHERE action = 'token.revoke'"
                        ) == 2


async def test_refusals_change_nothing(make_node: MakeNode) -> None:
    node = await make_node()
    [theirs] = await _ids(node, "admin", user="sup2")
    refused = await _count(node, "SELECT count(*) FROM audit_log WHERE action = "
                                 "'access.refused'")
    status, body = await _delete(node, "sup1", theirs)
    assert (status, body) == (403, {"error": {
        "code": "forbidden", "message": "only an admin may manage another user's tokens",
        "field": None}})
    for tid in (str(uuid.uuid4()), "not-a-uuid"):
        status, body = await _delete(node, "sup1", tid)
        assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await node.get("sup1", "/api/v1/tokens?user=sup2")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await node.get("admin", "/api/v1/tokens?user=nobody")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await node.get("admin", "/api/v1/tokens?user=Bad%20Name")
    assert (status, body["error"]["code"]) == (422, "invalid_input")
    assert await _revoked(node) == 0
    assert (await node.get("sup2", "/api/v1/me"))[0] == 200
    assert await _count(node, "SELECT count(*) FROM audit_log WHERE action = "
                              "'access.refused'") == refused + 2


async def test_token_routes_are_in_the_openapi_document(make_node: MakeNode) -> None:
    node = await make_node(seed=False)
    doc = await (await node.client.get("/api/v1/openapi.json")).json()
    assert doc["paths"]["/api/v1/tokens"]["get"]["operationId"] == "api.tokens.list"
    op = doc["paths"]["/api/v1/tokens/{id}"]["delete"]
    assert op["operationId"] == "api.tokens.revoke" and op["security"]


def test_cli_token_list_and_revoke(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    cfg = tmp_path / "node.toml"
    r = runner.invoke(node_group, [  # a node command refuses a database never initialised
        "init", "--config", str(cfg), "--node-id", "metro-fire", "--name", "Metro Fire",
        "--data-dir", str(tmp_path / "data"), "--db-url", db_url, "--password-stdin",
    ], input=PASSWORD + "\n", env={"PEERNET_PASSPHRASE": "a long enough passphrase"})
    assert r.exit_code == 0, r.output
    r = runner.invoke(node_group, ["user", "add", "--config", str(cfg), "sam",
                                   "--role", "peer_supporter", "--password-stdin"],
                      input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(node_group, ["token", "create", "--config", str(cfg), "--user", "sam"])
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    r = runner.invoke(node_group, ["token", "list", "--config", str(cfg)])
    assert r.exit_code == 0 and "sam" in r.output and "active" in r.output, r.output
    assert token not in r.output
    tid = r.output.splitlines()[1].split()[0]
    r = runner.invoke(node_group, ["token", "revoke", "--config", str(cfg), str(uuid.uuid4())])
    assert r.exit_code == 1 and "no such token" in r.output
    r = runner.invoke(node_group, ["token", "revoke", "--config", str(cfg), "nope"])
    assert r.exit_code == 2  # not a UUID: click refuses it
    assert asyncio.run(_revoked_in(db_url)) == 0
    r = runner.invoke(node_group, ["token", "revoke", "--config", str(cfg), tid])
    assert r.exit_code == 0 and f"revoked token {tid} of sam" in r.output, r.output
    r = runner.invoke(node_group, ["token", "list", "--config", str(cfg), "--user", "sam"])
    assert "revoked" in r.output
    assert asyncio.run(_revoked_in(db_url)) == 1


async def _revoked_in(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(
                "SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL"))).scalar_one())
    finally:
        await engine.dispose()
