"""Issue 17 item 4 on a phone (headless Chromium, 390x844): a supporter corrects an encounter
through the form and sees the correction in its history; the auditor filters the audit log
and finds the amendment. Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.node.conftest import PASSWORD, MakeNode, encounter

pytestmark = pytest.mark.browser


async def _log_in(page: Any, base: str, who: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Username").fill(who)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_load_state()


async def test_correct_an_encounter_and_find_it_in_the_audit_log(
        make_node: MakeNode, browser_page: Any) -> None:
    node = await make_node()
    page = browser_page
    base = str(node.client.make_url("/")).rstrip("/")
    status, body = await node.post("sup1", "/api/v1/encounters", encounter())
    assert status == 201
    await _log_in(page, base, "sup1")
    await page.goto(f"{base}/encounters/{body['id']}")
    await page.get_by_role("link", name="Correct").click()
    await page.wait_for_url(f"{base}/encounters/{body['id']}/amend")
    await page.get_by_text("Debriefing", exact=True).click()
    await page.get_by_text("EMS", exact=True).click()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling on a phone
    await page.screenshot(path=str(ARTIFACTS / "node-amend-form.png"), full_page=True)
    await page.get_by_role("button", name="Save the correction").click()
    await page.wait_for_selector("#amended")
    assert "Debriefing · EMS" in await page.inner_text("h1")
    history = await page.inner_text("#amendments")
    assert "sup1" in history and "Their discipline" in history
    assert "Type of support" in history
    await page.screenshot(path=str(ARTIFACTS / "node-amended.png"), full_page=True)

    await page.goto(f"{base}/")
    await page.get_by_role("button", name="Log out sup1").click()
    await page.wait_for_url(f"{base}/login")
    await _log_in(page, base, "audit")
    await page.goto(f"{base}/audit")
    assert await page.get_attribute("#verify", "data-ok") == "yes"
    await page.get_by_label("Who (username)").fill("sup1")
    await page.get_by_label("Action").select_option("encounter.amend")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(f"{base}/audit?**")
    assert (await page.inner_text("#page-count")).strip() == "1–1 of 1"
    assert "encounter.amend" in await page.inner_text("#entries")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=str(ARTIFACTS / "node-audit-log.png"), full_page=True)
