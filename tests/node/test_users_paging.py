"""The users list pages with counts and filters (role, active, part of the name): the
admin's page and `GET /api/v1/users`; bad filters refused with stable codes; other roles
refused. Also `peernet node user reset-password`. Real node, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text

from federation.database import make_engine
from node.accounts.users import create_user
from node.cli import node_group
from node.core.schemas import UserIn
from node.core.vocabulary import Role
from tests.node.account_browser import Browser
from tests.node.conftest import PASSWORD, MakeNode, Node

HTML = {"Accept": "text/html"}


async def _many(node: Node, n: int) -> None:
    for i in range(n):
        await create_user(node.ctx, None, UserIn(username=f"member{i:02d}", password=PASSWORD,
                                                 role=Role.PEER_SUPPORTER))


async def test_users_page_pages_and_filters(make_node: MakeNode) -> None:
    node = await make_node()
    await _many(node, 55)  # 62 users in all
    admin = Browser(node)
    try:
        assert await admin.log_in("admin") == 303
        status, page = await admin.page("/admin/users")
        assert status == 200 and "1–50 of 62" in page and 'rel="next"' in page
        assert page.count('class="fu"') == 50
        status, page = await admin.page("/admin/users?page=2")
        assert "51–62 of 62" in page and page.count('class="fu"') == 12
        status, page = await admin.page("/admin/users?page=9")  # past the end: the last
        assert "51–62 of 62" in page
        status, page = await admin.page("/admin/users?role=peer_supporter&q=member0")
        assert "1–10 of 10" in page and "62 in all" in page
        assert re.findall(r"<strong>(member\d+)</strong>", page)[0] == "member00"
        status, page = await admin.page("/admin/users?q=member&page=2")
        assert "51–55 of 55" in page and 'href="/admin/users?q=member&amp;page=1"' in page
        status, page = await admin.page("/admin/users?role=admin&active=yes&q=")
        assert "1–1 of 1" in page
        r = await node.client.patch(f"/api/v1/users/{node.users['sup2']}",
                                    json={"active": False}, headers=node.auth("admin"))
        assert r.status == 200
        status, page = await admin.page("/admin/users?active=no")
        assert "1–1 of 1" in page and "<strong>sup2</strong>" in page
        status, page = await admin.page("/admin/users?q=%25")  # no wildcard
        assert status == 422 and 'data-code="invalid_input"' in page
        status, page = await admin.page("/admin/users?q=1_")  # _ is literal
        assert status == 200 and "No users match" in page
        for bad, code in (("role=boss", "invalid_enum"), ("page=0", "invalid_input"),
                          ("sort=name", "unknown_field")):
            status, page = await admin.page(f"/admin/users?{bad}")
            assert status == 422 and f'data-code="{code}"' in page, bad
    finally:
        await admin.close()
    r = await node.client.get("/admin/users", headers={**HTML, **node.auth("coord")},
                              allow_redirects=False)
    assert r.status == 403


async def test_users_api_pages_with_total_and_filters(make_node: MakeNode) -> None:
    node = await make_node()
    await _many(node, 5)
    status, body = await node.get("admin", "/api/v1/users?role=peer_supporter&limit=3")
    assert status == 200 and body["total"] == 8
    names = [u["username"] for u in body["items"]]
    status, body = await node.get("admin", "/api/v1/users?role=peer_supporter&limit=3"
                                           f"&cursor={body['next_cursor']}")
    names += [u["username"] for u in body["items"]]
    status, body = await node.get("admin", "/api/v1/users?role=peer_supporter&limit=3"
                                           f"&cursor={body['next_cursor']}")
    names += [u["username"] for u in body["items"]]
    assert body["next_cursor"] is None and names == sorted(names) and len(names) == 8
    status, body = await node.get("admin", "/api/v1/users?q=SUP")
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "invalid_input",
                                                                       "q")
    status, body = await node.get("admin", "/api/v1/users?active=false")
    assert (status, body["total"], body["items"]) == (200, 0, [])
    status, body = await node.get("admin", "/api/v1/users?q=sup")
    assert [u["username"] for u in body["items"]] == ["sup1", "sup2", "sup_b"]
    status, body = await node.get("sup1", "/api/v1/users")
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_cli_reset_password(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    cfg = tmp_path / "node.toml"
    r = runner.invoke(node_group, [
        "init", "--config", str(cfg), "--node-id", "metro-fire", "--name", "Metro Fire",
        "--data-dir", str(tmp_path / "data"), "--db-url", db_url, "--password-stdin",
    ], input=PASSWORD + "\n", env={"PEERNET_PASSPHRASE": "a long enough passphrase"})
    assert r.exit_code == 0, r.output
    r = runner.invoke(node_group, ["user", "add", "--config", str(cfg), "sam",
                                   "--role", "peer_supporter", "--password-stdin"],
                      input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(node_group, ["user", "reset-password", "--config", str(cfg), "nobody"])
    assert r.exit_code == 1 and "no such user" in r.output
    assert asyncio.run(_flags(db_url)) == 0
    r = runner.invoke(node_group, ["user", "reset-password", "--config", str(cfg), "Sam"])
    assert r.exit_code == 0 and "temporary password for sam" in r.output, r.output
    temp = r.output.strip().rsplit(" ", 1)[1]
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", temp)
    assert asyncio.run(_flags(db_url)) == 1


async def _flags(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(
                "SELECT count(*) FROM users WHERE must_change_password = true "))).scalar_one()
                       + (await conn.execute(text(
                "SELECT count(*) FROM audit_log WHERE action = 'password.reset'"))).scalar_one()
                       ) // 2
    finally:
        await engine.dispose()
