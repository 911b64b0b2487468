"""Issue 21 in real headless Chromium (phone-sized): the sending coordinator transfers a
follow-up from the team page with the responder's consent, the receiving coordinator reads
the note and accepts with an owner, the new owner sees it in "my follow-ups", the sender
sees it accepted. Pages only. Screenshots in test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.core.vocabulary import Role
from tests.activations.netutil import add_user
from tests.activations.test_browser import log_in
from tests.conftest import ARTIFACTS
from tests.federation.network import make_network
from tests.transfers.test_transfer_network import NOTE, Api, _follow_up

pytestmark = pytest.mark.browser


async def test_send_and_accept_a_transfer_in_chromium(tmp_path: Path, browser_page: Any) -> None:
    net = await make_network(2, tmp_path=tmp_path)
    try:
        page = browser_page
        a, b = net.node("agency-1"), net.node("agency-2")
        _, tok_a = await add_user(a, "coord_a", Role.COORDINATOR)
        sup_a, _ = await add_user(a, "sup_a", Role.PEER_SUPPORTER)
        await add_user(b, "coord_b", Role.COORDINATOR)
        await add_user(b, "sup_b", Role.PEER_SUPPORTER)
        async with aiohttp.ClientSession() as http:
            await _follow_up(Api(http, a.url, tok_a), str(sup_a))

        await log_in(page, a, "coord_a")
        await page.goto(f"{a.url}/team")
        await page.click("[data-transfer-link]")
        await page.get_by_label("Agency they moved to").select_option(label="Agency 2")
        await page.get_by_label("Contact note: callback details only").fill(NOTE)
        await page.get_by_role("button", name="Send transfer").click()
        await page.wait_for_selector('[role="alert"][data-code="no_consent"]')
        await page.get_by_label("The responder agreed to this transfer when I asked").check()
        await page.screenshot(path=str(ARTIFACTS / "transfer-send.png"), full_page=True)
        await page.get_by_role("button", name="Send transfer").click()
        await page.wait_for_selector("#notice")
        assert "Waiting for an answer" in await page.inner_text("#transfers-out")
        await net.settle()

        await log_in(page, b, "coord_b")
        await page.goto(f"{b.url}/transfers")
        assert NOTE in await page.inner_text("#transfers-in")
        await page.locator("#transfers-in select[name=owner]").select_option(label="sup_b")
        await page.screenshot(path=str(ARTIFACTS / "transfer-receive.png"), full_page=True)
        await page.get_by_role("button", name="Accept").click()
        await page.wait_for_selector('#transfers-in [data-state="accepted"]')
        await net.settle()

        await log_in(page, b, "sup_b")
        await page.goto(f"{b.url}/follow-ups")
        assert "One-on-one" in await page.inner_text("#transferred")

        await log_in(page, a, "coord_a")
        await page.goto(f"{a.url}/transfers")
        await page.wait_for_selector('#transfers-out [data-state="accepted"]')
        await page.screenshot(path=str(ARTIFACTS / "transfer-accepted.png"), full_page=True)
    finally:
        await net.close()
