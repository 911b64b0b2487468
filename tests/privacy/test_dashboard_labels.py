"""Issue 15 item 5 on the board's pages, through a real hub on SQLite and PostgreSQL: counts
are labelled as capped counts, no interval is shown narrower than the noise allows (a tiny
month used to show "0, 95%: 0-0"), and the "about the numbers" page says what the unit is and,
plainly, what the hub and a helper would see if they colluded."""

from __future__ import annotations

import re

from hub.stats.estimates import Z95
from tests.federation.network import Network
from tests.privacy.test_dashboard import client, login
from tests.privacy.test_dashboard_figures import MONTH, bare_hub, release_tiny_month

__all__ = ["bare_hub"]


async def test_labels_and_intervals_never_narrower_than_the_noise(bare_hub: Network) -> None:
    await release_tiny_month(bare_hub)
    base = bare_hub.hub.url
    q = f"?month_from={MONTH}&month_to={MONTH}"
    async with client() as http:
        await login(http, base, "analyst")
        async with http.get(base + "/dashboard" + q) as r:
            html = await r.text()
        async with http.get(base + "/api/v1/stats" + q) as r:
            doc = await r.json()
        async with http.get(base + "/dashboard/about") as r:
            about = await r.text()
    assert "Encounters (at most 4 per person-month)" in html
    for m in doc["months"]:
        figs = [m["encounters"], *m["by_discipline"].values(), *m["by_intervention"].values()]
        for fig in figs:
            lo, hi = fig["display"]["interval"]
            assert hi - lo >= 2 * Z95 * fig["se"] - 1e-9
            assert lo >= 0
    shown = re.findall(r"95%: ([\d,]+)–([\d,]+)", html)
    assert shown and all(int(b.replace(",", "")) > int(a.replace(",", "")) for a, b in shown)
    assert "one supported person at one agency, over one year" in about
    assert "capped counts" in about
    assert "if the hub and the helper work together" in about
    assert "exact capped monthly counts" in about
    assert "local aggregation" in about
