"""A whole demo network (hub, helper aggregator, five agencies; activations, hand-offs,
releases, a shared aggregation round) with peernet's loggers at DEBUG (the rest at INFO)
into one JSON log, and every server's `/metrics` scraped: neither holds a secret (passwords,
passphrases, tokens,
key bytes in any encoding), a typed identifier (employee numbers) or a pseudonym."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from federation.observe.logs import configure_logging
from node.core.appkeys import DB as NODE_DB
from node.core.db import Encounter
from peernet.demo_network import DEMO_PASSPHRASE, OPERATOR_TOKEN
from peernet.demo_seed import DEMO_PASSWORD

EMPLOYEE_NUMBER = re.compile(r"\b[A-Z]{2,3}-[0-9]{4}\b(?!-)")
TOKENS = {"PEERNET_METRICS_TOKEN": "node-metrics-secret-7f3a9c",
          "PEERNET_HUB_METRICS_TOKEN": "hub-metrics-secret-1b8e2d",
          "PEERNET_HELPER_METRICS_TOKEN": "helper-metrics-secret-4c6f0a"}


def encodings(raw: bytes) -> list[str]:
    return [raw.hex(), base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("=")]


@pytest.mark.slow
async def test_demo_logs_and_metrics_hold_no_secret_or_identifier(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from peernet.demo import DemoOptions, run_demo

    for k, v in TOKENS.items():
        monkeypatch.setenv(k, v)
    buf = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("json", "INFO")
    root.handlers[0].stream = buf  # type: ignore[attr-defined]
    ours = logging.getLogger("peernet")
    ours.setLevel(logging.DEBUG)  # every line of ours; drivers' DEBUG chatter would slow it
    secrets: list[str] = [DEMO_PASSWORD, DEMO_PASSPHRASE, OPERATOR_TOKEN, *TOKENS.values()]
    refs: set[str] = set()
    scraped: dict[str, str] = {}

    async def inspect(net: Any, _summary: dict[str, Any]) -> None:
        for s in net.servers():
            secrets.extend(encodings(bytes(s.keys.signing_key)))
            secrets.extend(encodings(bytes(s.keys.enc_key)))
            if s.pseudonyms is not None:
                secrets.extend(encodings(s.pseudonyms._key))
            token = TOKENS[{"node": "PEERNET_METRICS_TOKEN", "hub": "PEERNET_HUB_METRICS_TOKEN",
                            "helper": "PEERNET_HELPER_METRICS_TOKEN"}[s.kind]]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{s.url}/metrics",
                                    headers={"Authorization": f"Bearer {token}"}) as r:
                    assert r.status == 200, s.kind
                    scraped[s.node_id] = await r.text()
        for n in net.nodes:
            async with n.app[NODE_DB].read() as conn:
                refs.update((await conn.execute(select(Encounter.recipient_ref))).scalars())

    try:
        await run_demo(DemoOptions(tmp_path / "net", months=1, per_month=6,
                                   aggregation="shared"), lambda _m: None, keep_running=inspect)
    finally:
        root.handlers, root.level = saved[0], saved[1]
        ours.setLevel(logging.NOTSET)
    log = buf.getvalue()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    # The run was logged: each of the seven servers (hub, helper, five agencies) wrote its
    # roster acceptance (a healthy run logs no failures; library start-up chatter is off).
    accepted = [x for x in lines if x["logger"] == "peernet.federation.roster"
                and x["message"] == "roster version 1 accepted"]
    assert len(accepted) == 7, lines
    assert {"ts", "level", "logger", "message"} <= set(lines[0])
    assert refs and len(secrets) > 30
    kinds = {"node", "hub", "helper"}
    assert len(scraped) == 7 and kinds  # hub, helper and five agencies
    for server, text in scraped.items():
        fams = {f.name for f in text_string_to_metric_families(text)}
        assert {"peernet_outbox_messages", "peernet_roster_version",
                "peernet_http_request_duration_seconds"} <= fams, server
    hub_text = next(t for k, t in scraped.items() if "hub" in k)
    assert "peernet_relay_queued" in hub_text and "peernet_releases_held" in hub_text
    for where, text in (("log", log), *scraped.items()):
        assert not EMPLOYEE_NUMBER.search(text), where
        for secret in secrets:
            assert secret not in text, (where, "a secret leaked")
        for ref in refs:
            assert ref not in text, (where, "a pseudonym leaked")
