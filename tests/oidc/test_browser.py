"""Chromium signs in end to end through the real provider's login page (panva/oidc-provider
on Node 20): on the node (a supporter lands on the encounter form, signs out, and the
provider's end-session page sends the browser back to the node's login), then on the hub
(a board analyst lands on the dashboard), then a person with no mapped group gets the
refusal page. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.oidc.conftest import HUB_USERS, USERS, MakeHub, MakeOidcNode
from tests.oidc.real_provider import PASSWORD, client, free_port, real_provider

pytestmark = pytest.mark.browser


async def _provider_login(page: Any, login: str, shot: str) -> None:
    await page.wait_for_selector("#login")
    await page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    await page.fill("#login", login)
    await page.fill("#password", PASSWORD)
    await page.click("#submit")


async def test_chromium_signs_in_through_the_provider_on_node_and_hub(
        tmp_path: Path, make_oidc_node: MakeOidcNode, make_hub: MakeHub,
        browser_page: Any) -> None:
    node_port, hub_port = free_port(), free_port()
    node_base, hub_base = f"http://127.0.0.1:{node_port}", f"http://127.0.0.1:{hub_port}"
    clients = [client("peernet-node", node_base), client("peernet-hub", hub_base)]
    async with real_provider(tmp_path, clients, {**USERS, **HUB_USERS}) as op:
        node = await make_oidc_node(op.issuer, port=node_port)
        await make_hub(op.issuer, hub_port, own_db=True)  # the node has db_url
        page = browser_page

        await page.goto(node_base + "/login")
        await page.screenshot(path=str(ARTIFACTS / "oidc-node-login.png"), full_page=True)
        await page.get_by_role("link", name="Sign in with your agency account").click()
        await _provider_login(page, "alice", "oidc-provider-login.png")
        await page.wait_for_url(node_base + "/encounters/new")
        await page.get_by_role("button", name="Log out alice").wait_for()
        await page.screenshot(path=str(ARTIFACTS / "oidc-node-signed-in.png"), full_page=True)
        users = {r.username: r.role for r in (await node.state())["users"]}
        assert users["alice"] == "peer_supporter"

        await page.get_by_role("button", name="Log out alice").click()
        await page.get_by_role("button", name="Yes, sign me out").click()  # the provider's
        await page.wait_for_url(node_base + "/login")
        assert (await node.state())["sessions"] == []

        await page.goto(hub_base + "/login")
        await page.get_by_role("link", name="Sign in with your agency account").click()
        await _provider_login(page, "bea", "oidc-provider-login-hub.png")
        await page.wait_for_url(hub_base + "/dashboard")
        await page.screenshot(path=str(ARTIFACTS / "oidc-hub-dashboard.png"), full_page=True)
        assert "bea" in await page.inner_text("header")

        await page.context.clear_cookies()
        await page.goto(node_base + "/login")
        await page.get_by_role("link", name="Sign in with your agency account").click()
        await _provider_login(page, "nora", "oidc-provider-login-2.png")
        await page.wait_for_selector('[data-kit="oidc-refused"]')
        code = await page.get_attribute('[data-kit="oidc-refused"] [data-code]', "data-code")
        assert code == "oidc_no_role"
        assert "no access here" in await page.inner_text("h1")
        await page.screenshot(path=str(ARTIFACTS / "oidc-node-refused.png"), full_page=True)
