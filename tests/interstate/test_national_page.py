"""The national page in headless Chromium on a phone-sized screen: a board analyst sees the
bar chart (read out with its intervals), the month table naming the states that did not
report, and nothing overflows sideways; screenshot in test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federation.clock import FakeClock
from tests.conftest import ARTIFACTS
from tests.interstate.national_hubs import (
    OPERATOR_TOKEN,
    add_analyst,
    link,
    seed_releases,
    start_state,
)
from tests.interstate.test_national import SEEDED, get_json

Q = f"month_from={SEEDED[0]}&month_to={SEEDED[-1]}"


async def test_national_page_in_chromium(tmp_path: Path, browser_page: Any) -> None:
    clock = FakeClock()
    hubs = []
    try:
        for nid in ("tx", "hi", "ca"):
            (tmp_path / nid).mkdir()
            hubs.append(await start_state(nid, tmp_path / nid,
                                          f"sqlite:///{tmp_path / nid}.db", clock))
        tx, hi, ca = hubs
        link(hubs)
        await seed_releases(tx, SEEDED, seed=1)
        await seed_releases(hi, SEEDED, seed=2, skip=lambda n, m: m == SEEDED[0])
        await ca.stop()
        token = await add_analyst(tx, clock.now_ms())
        await get_json(f"{tx.url}/api/v1/national/refresh?{Q}",
                       {"Authorization": f"Bearer {OPERATOR_TOKEN}"}, "POST")
        page = browser_page
        await page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
        await page.goto(f"{tx.url}/dashboard/national?{Q}")
        chart = page.get_by_role("img")
        assert await chart.count() == 1
        label = await chart.first.get_attribute("aria-label")
        assert label is not None and "95% interval" in label
        rows = page.locator("#national-table tbody tr")
        assert await rows.count() == 3
        assert "ca" in await rows.nth(0).locator(".missing").inner_text()
        assert "hi" in await rows.nth(0).locator(".missing").inner_text()
        assert await rows.nth(1).locator(".reporting").inner_text() == "hi, tx"
        width = await page.evaluate("document.documentElement.scrollWidth")
        wide = await page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
            ".right > 391).map(e => e.tagName + '.' + e.className).slice(0, 8).join(' ')")
        assert width <= 390, wide
        await page.screenshot(path=str(ARTIFACTS / "hub-national-phone.png"), full_page=True)
    finally:
        for h in hubs:
            await h.stop()
