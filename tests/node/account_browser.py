"""A browser of its own (cookie jar) against a node under test, and small lookups."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from sqlalchemy import text

from tests.node.conftest import PASSWORD, Node

HTML = {"Accept": "text/html"}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """One person's browser: its own cookies, the last CSRF token it saw."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.http = aiohttp.ClientSession(base_url=str(node.client.make_url("/")),
                                          cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    async def log_in(self, who: str, password: str = PASSWORD) -> int:
        r = await self.http.get("/login", headers=HTML)
        token = _csrf(await r.text())
        r = await self.http.post("/login", data={"csrf": token, "username": who,
                                                 "password": password},
                                 headers=HTML, allow_redirects=False)
        if r.status == 303:
            await self.page("/account/password")
        return r.status

    async def page(self, path: str) -> tuple[int, str]:
        r = await self.http.get(path, headers=HTML, allow_redirects=False)
        body = await r.text()
        m = CSRF_RE.search(body)
        if m:
            self.csrf = m.group(1)
        return r.status, body

    async def post(self, path: str, data: dict[str, Any], csrf: bool = True
                   ) -> aiohttp.ClientResponse:
        form = {"csrf": self.csrf, **data} if csrf else data
        r = await self.http.post(path, data=form, headers=HTML, allow_redirects=False)
        await r.read()
        return r

    async def api(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if method != "GET" else {}
        r = await self.http.request(method, path, headers=headers, **kw)
        return r.status, await r.json()


def _csrf(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, html[:300]
    return m.group(1)


async def scalar(node: Node, sql: str, **params: Any) -> Any:
    async with node.ctx.db.read() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def audit_actions(node: Node, action: str) -> list[tuple[str, str]]:
    async with node.ctx.db.read() as conn:
        rows = (await conn.execute(text(
            "SELECT outcome, detail FROM audit_log WHERE action = :a ORDER BY seq"),
            {"a": action})).all()
    return [(r[0], r[1]) for r in rows]
