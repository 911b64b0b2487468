"""The forced password change in real headless Chromium (phone-sized): an admin resets a
supporter's password on the Users page, the supporter logs in with the temporary one, is
sent to the change page from every page, changes it, and sees their sessions on Account.
Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.node.conftest import PASSWORD, MakeNode

pytestmark = pytest.mark.browser
NEW = "my own fresh password"


async def _log_in(page: Any, base: str, who: str, password: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Username").fill(who)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()


async def test_reset_and_forced_change_in_chromium(make_node: MakeNode,
                                                   browser_page: Any) -> None:
    node = await make_node()
    page = browser_page
    base = str(node.client.make_url("/")).rstrip("/")
    await _log_in(page, base, "admin", PASSWORD)
    await page.wait_for_url(f"{base}/admin/users")
    await page.get_by_label("Name contains").fill("sup1")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(f"{base}/admin/users?q=sup1*")
    assert "1–1 of 1" in await page.inner_text("#user-count")
    await page.screenshot(path=str(ARTIFACTS / "node-users-filtered.png"), full_page=True)
    await page.get_by_role("button", name="Reset password").click()
    temp = (await page.inner_text("#temporary-password")).strip()
    await page.screenshot(path=str(ARTIFACTS / "node-password-reset.png"), full_page=True)
    await page.goto(f"{base}/")
    await page.get_by_role("button", name="Log out admin").click()
    await page.wait_for_url(f"{base}/login")

    await _log_in(page, base, "sup1", temp)
    await page.wait_for_url(f"{base}/account/password")
    assert "An admin set your password" in await page.inner_text("#forced")
    await page.goto(f"{base}/follow-ups")
    assert page.url == f"{base}/account/password"
    await page.get_by_label("Current password").fill(temp)
    await page.get_by_label("New password (10 or more characters)").fill(NEW)
    await page.get_by_label("New password again").fill(NEW)
    await page.screenshot(path=str(ARTIFACTS / "node-password-change.png"), full_page=True)
    await page.get_by_role("button", name="Change password").click()
    await page.wait_for_url(f"{base}/account?changed=*")
    assert "This browser" in await page.inner_text("#sessions")
    await page.screenshot(path=str(ARTIFACTS / "node-account.png"), full_page=True)
    await page.goto(f"{base}/follow-ups")
    assert page.url == f"{base}/follow-ups"
