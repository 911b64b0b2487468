"""Two coordinators of two agencies in real headless Chromium (phone-sized): request, offer,
accept, updates, hand-off and close through the pages only. Screenshots in test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.core.vocabulary import Role
from tests.activations.netutil import PASSWORD, add_user, state_of
from tests.conftest import ARTIFACTS
from tests.federation.network import NodeHandle, make_network

pytestmark = pytest.mark.browser
NOTE = "Call B-shift captain about the crew debrief"


async def log_in(page: Any, node: NodeHandle, who: str) -> None:
    # Both nodes live on 127.0.0.1 (cookies ignore ports): each visit logs in again.
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Username").fill(who)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_load_state()


async def test_coordinators_drive_an_activation_in_chromium(
    tmp_path: Path, browser_page: Any
) -> None:
    net = await make_network(4, tmp_path=tmp_path)
    try:
        page = browser_page
        a, b = net.node("agency-1"), net.node("agency-2")
        await add_user(a, "coord_a", Role.COORDINATOR)
        await add_user(b, "coord_b", Role.COORDINATOR)

        await log_in(page, a, "coord_a")
        await page.goto(f"{a.url}/activations/new?discipline=law_enforcement")
        targets = await page.inner_text("#targets")
        assert "Agency 2" in targets and "Agency 3" not in targets
        await page.get_by_label("Agency 2").check()
        await page.get_by_label("Incident number").fill("INC-77")
        await page.get_by_text("Line of duty death", exact=True).click()
        await page.get_by_label("Law enforcement", exact=True).fill("30")
        await page.get_by_label("Peers needed").fill("3")
        await page.get_by_label("Report to (location code)").fill("sta-7")
        await page.get_by_label("Contact phone").fill("+1 555 0100")
        await page.get_by_label("Approved by (role, not a name)").select_option("deputy_chief")
        await page.screenshot(path=str(ARTIFACTS / "activation-new.png"), full_page=True)
        await page.get_by_role("button", name="Send request").click()
        await page.wait_for_selector("#state")
        assert await page.get_attribute("#state", "data-state") == "requested"
        assert await page.inner_text("#notice") == "Request sent to 1 agency."
        aid = page.url.split("/activations/")[1].split("?")[0]
        await page.screenshot(path=str(ARTIFACTS / "activation-requested.png"), full_page=True)
        await net.settle()

        await log_in(page, b, "coord_b")
        await page.goto(f"{b.url}/activations")
        await page.click(f'[data-activation="{aid}"]')
        await page.get_by_label("Law enforcement", exact=True).fill("2")
        await page.get_by_label("ETA (minutes)").fill("40")
        await page.screenshot(path=str(ARTIFACTS / "activation-offer.png"), full_page=True)
        await page.get_by_role("button", name="Offer peers").click()
        await page.wait_for_selector('#mine[data-state="offered"]')
        await net.settle()

        await log_in(page, a, "coord_a")
        await page.goto(f"{a.url}/activations/{aid}")
        assert "Offers 2 peers" in await page.inner_text("#legs")
        await page.get_by_role("button", name="Accept").click()
        await page.wait_for_selector('#state[data-state="accepted"]')
        await page.screenshot(path=str(ARTIFACTS / "activation-accepted.png"), full_page=True)
        await net.settle()

        await log_in(page, b, "coord_b")
        for button, state in (("Report mobilized", "mobilized"), ("Report on scene", "on_scene"),
                              ("Report demobilized", "demobilized")):
            await page.goto(f"{b.url}/activations/{aid}?requester=agency-1")
            await page.get_by_role("button", name=button).click()
            await page.wait_for_selector(f'#mine[data-state="{state}"]')
        await page.get_by_label("Contact note: callback details only").fill(NOTE)
        await page.get_by_role("button", name="Send hand-off").click()
        await page.wait_for_selector('#mine[data-state="demobilized"]')
        await net.settle()
        assert (await state_of(a, aid)).value == "demobilized"

        await log_in(page, a, "coord_a")
        await page.goto(f"{a.url}/activations/handoffs")
        assert NOTE in await page.inner_text("#handoffs-in")
        await page.screenshot(path=str(ARTIFACTS / "activation-handoffs.png"), full_page=True)
        await page.get_by_role("button", name="Done").click()
        await page.wait_for_load_state()
        assert NOTE not in await page.content()
        await page.goto(f"{a.url}/activations/{aid}")
        await page.get_by_role("button", name="Close activation").click()
        await page.wait_for_selector('#state[data-state="closed"]')
        await page.screenshot(path=str(ARTIFACTS / "activation-closed.png"), full_page=True)
    finally:
        await net.close()
