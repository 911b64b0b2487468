"""Two hub processes and two outbox workers of one node over one PostgreSQL: 1,000 messages
relayed, none lost, none delivered twice (`bench.relay_workers` runs the same with 10,000;
its result is recorded by the benchmark)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.relay_workers import passed, run_relay
from bench.reliability_report import record

pytestmark = pytest.mark.chaos

N = 1_000


async def test_two_hubs_two_outbox_workers_one_postgres(tmp_path: Path,
                                                        pg_admin_url: str) -> None:
    started = time.monotonic()
    fig = await run_relay(tmp_path, pg_admin_url, N, timeout_s=150)
    ok = passed(fig)
    record("relay-workers-test", area="multi-worker",
           case=f"{N:,} messages through two hub processes and two outbox workers (test)",
           how="tests/chaos/test_relay_workers.py: one PostgreSQL; hub x2 behind a round-robin "
               "proxy, sender node x2 (`peernet node serve` twice on one database); receiver "
               "down until the hubs hold every message, then started and greets its hub "
               "(one empty signed batch)",
           result="none lost, none delivered twice, all acked" if ok else f"FAILED: {fig}",
           figures=fig, passed=ok, duration_s=time.monotonic() - started)
    assert fig["lost"] == 0 and fig["relay_left"] == 0, fig
    assert fig["delivered"] == fig["distinct_delivered"] == N, fig
    assert fig["activations_stored"] == N and fig["duplicates"] == 0, fig
    assert fig["acked"] == N, fig
    # both hub processes took traffic from the two sender processes
    assert fig["proxy_conns_hub1"] >= 1 and fig["proxy_conns_hub2"] >= 1, fig
