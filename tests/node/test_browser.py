"""A supporter in real headless Chromium: log in, log an encounter through the form, see the
follow-up, be refused another supporter's record. Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.node.conftest import PASSWORD, MakeNode, encounter

pytestmark = pytest.mark.browser


async def test_supporter_flow_in_chromium(make_node: MakeNode, browser_page: Any) -> None:
    node = await make_node()
    page = browser_page
    base = str(node.client.make_url("/")).rstrip("/")
    status, other = await node.post("sup2", "/api/v1/encounters", encounter())
    assert status == 201

    await page.goto(f"{base}/login")
    await page.screenshot(path=str(ARTIFACTS / "node-login.png"), full_page=True)
    await page.get_by_label("Username").fill("sup1")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{base}/encounters/new")
    await page.get_by_label("Who (employee number or your own code)").fill("E-4242")
    await page.get_by_text("Defusing", exact=True).click()
    await page.get_by_text("EMS", exact=True).click()
    await page.get_by_text("Tomorrow", exact=True).click()
    await page.get_by_label("Written confidentiality notice given").check()
    await page.screenshot(path=str(ARTIFACTS / "node-log-encounter.png"), full_page=True)
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_selector("text=Saved.")
    assert "Defusing · EMS" in await page.inner_text("h1")
    assert "Open, due 2026-06-16" in await page.inner_text("#follow-up-status")
    await page.screenshot(path=str(ARTIFACTS / "node-encounter-saved.png"), full_page=True)

    await page.get_by_role("link", name="My follow-ups").click()
    await page.wait_for_url(f"{base}/follow-ups")
    later = await page.inner_text("#later")
    assert "Defusing" in later and "due 2026-06-16" in later
    await page.screenshot(path=str(ARTIFACTS / "node-follow-ups.png"), full_page=True)

    response = await page.goto(f"{base}/encounters/{other['id']}")
    assert response is not None and response.status == 403
    assert "Not available to you" in await page.inner_text("h1")
    await page.screenshot(path=str(ARTIFACTS / "node-refused.png"), full_page=True)
    assert await node.count("encounters") == 2

    # leadership sees counts and charts only
    await page.goto(f"{base}/")
    await page.get_by_role("button", name="Log out sup1").click()
    await page.wait_for_url(f"{base}/login")
    await page.get_by_label("Username").fill("audit")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{base}/leadership")
    assert await page.locator("svg.chart").count() == 5
    body = await page.inner_text("main")
    assert "E-4242" not in body and other["recipient_ref"] not in body
    await page.screenshot(path=str(ARTIFACTS / "node-leadership.png"), full_page=True)
