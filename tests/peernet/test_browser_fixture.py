from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.conftest import ARTIFACTS


async def test_headless_chromium_renders_a_local_page(
    browser_page: Any, aiohttp_server: Any
) -> None:
    async def index(_: web.Request) -> web.Response:
        return web.Response(text="<h1 id=t>peernet</h1>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    server = await aiohttp_server(app)
    await browser_page.goto(str(server.make_url("/")))
    assert await browser_page.text_content("#t") == "peernet"
    await browser_page.screenshot(path=str(ARTIFACTS / "fixture-smoke.png"))
