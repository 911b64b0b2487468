"""Workload (v2) releases on the node and end to end.

- Sensitivity through the node's real truncation: removing one person from a month changes
  each group's exact answer within that group's bound (`protocol.workload`), including a
  maximal person who reaches it.
- A v2 release end to end through real node and hub servers (SQLite and PostgreSQL): the
  node's ledger records the groups, the hub stores every key with its group's variance,
  and the stored body is the ledger's bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hub.stats.aggregates_read import node_values
from node.privacy.ledger import ledger_entries
from node.privacy.noise import EncounterColumns
from node.privacy.workload import truncated_workload
from protocol.canonical import parse_json
from protocol.workload import GROUP_NAMES, GROUPS, SCHEMA, WORKLOAD_KEYS, group_sensitivity
from tests.federation.network import Network, make_network
from tests.privacy.synthetic import synthetic_columns
from tests.privacy.test_e2e_release import MONTH, _release, _seed

SLICES = {g.name: [WORKLOAD_KEYS.index(k) for k in g.keys] for g in GROUPS}


def _without(cols: EncounterColumns, person: int) -> EncounterColumns:
    keep = cols.person != person
    return EncounterColumns(*(c[keep] for c in (cols.person, cols.order, cols.enc, cols.ref,
                                                 cols.fu_due, cols.fu_on_time)))


def _with_person(cols: EncounterColumns, enc_cells: list[int]) -> EncounterColumns:
    """Add a person with one encounter per given enc cell (index (d*6 + i)*5 + a), each
    referred to the same target and with a follow-up done on time in discipline 0."""
    p = int(cols.person.max()) + 1 if len(cols) else 0
    n = len(enc_cells)

    def add(col: Any, v: Any) -> Any:
        return np.concatenate([col, np.asarray(v, dtype=np.int64) * np.ones(n, np.int64)])

    return EncounterColumns(
        add(cols.person, p), add(cols.order, np.arange(n)), add(cols.enc, enc_cells),
        add(cols.ref, 0), add(cols.fu_due, 0), add(cols.fu_on_time, 0))


@pytest.mark.parametrize(("m", "c"), [(4, 1), (3, 2), (6, 1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_neighbouring_months_within_each_group_bound(m: int, c: int, seed: int) -> None:
    cols = synthetic_columns(400, 60, seed=seed)
    full = truncated_workload(cols, m, c)
    for person in np.unique(cols.person)[:25]:
        diff = full - truncated_workload(_without(cols, int(person)), m, c)
        for g in GROUP_NAMES:
            d = diff[SLICES[g]]
            sens = group_sensitivity(g, m, c)
            assert int(np.abs(d).sum()) <= sens.l1
            assert int((d * d).sum()) <= sens.l2_squared


def test_maximal_persons_reach_the_encounter_bounds() -> None:
    cols = synthetic_columns(200, 40, seed=4)
    base = truncated_workload(cols, 4, 1)
    # Same discipline and intervention, four activation types (and four more beyond m).
    one = truncated_workload(_with_person(cols, [0, 1, 2, 3, 4, 30, 31, 32]), 4, 1) - base
    for g in ("total", "discipline", "intervention", "cross"):
        d = one[SLICES[g]]
        assert int((d * d).sum()) == group_sensitivity(g, 4, 1).l2_squared == 16
    assert int(one[SLICES["fu_due"]].sum()) == 1  # c = 1: one fu_due cell counts once
    # Four disciplines, one activation type: that group's bound.
    two = truncated_workload(_with_person(cols, [0, 30, 60, 90]), 4, 1) - base
    d = two[SLICES["activation_type"]]
    assert int((d * d).sum()) == group_sensitivity("activation_type", 4, 1).l2_squared
    assert int(np.abs(two[SLICES["discipline"]]).sum()) == 4


NetworkFactory = Callable[[int], Awaitable[Network]]


@pytest.fixture(params=["sqlite", "postgres"])
async def network(request: pytest.FixtureRequest, tmp_path: Path,
                  ) -> AsyncIterator[NetworkFactory]:
    made: list[Network] = []
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None

    async def factory(n: int) -> Network:
        sub = tmp_path / f"net{len(made)}"
        sub.mkdir()
        made.append(await make_network(n, tmp_path=sub, db=request.param, pg_admin_url=pg))
        return made[-1]

    yield factory
    for net in made:
        await net.close()


async def test_v2_release_end_to_end(network: NetworkFactory) -> None:
    net = await network(2)
    a, b = net.nodes
    await _seed(a, 24)
    await _seed(b, 12)
    [ra] = await _release(a, net)
    [rb] = await _release(b, net)
    await net.settle()

    async with net.hub.db.read() as conn:
        got = await node_values(conn, MONTH)
        north = await node_values(conn, MONTH, region="north")
    assert set(got) == {a.node_id, b.node_id} and set(north) == {a.node_id}
    for node, rid in ((a, ra), (b, rb)):
        [entry] = await ledger_entries(node.db)
        assert entry.release_id == rid
        assert [g["group"] for g in entry.groups] == list(GROUP_NAMES)
        rel = parse_json(entry.body)["release"]
        assert rel["schema"] == SCHEMA
        stored = got[node.node_id]
        assert stored.schema == SCHEMA
        assert {k: v for k, (v, _) in stored.values.items()} == rel["cells"]
        variances = {g["group"]: float(g["scale"]) ** 2 for g in entry.groups}
        for k, (_, var) in stored.values.items():
            group = next(g.name for g in GROUPS if k in g.keys)
            assert var == pytest.approx(variances[group], rel=1e-6)
    # The total is measured directly: 36 encounters well inside a few standard errors.
    total = sum(got[n].values["total"][0] for n in got)
    se = sum(got[n].values["total"][1] for n in got) ** 0.5
    assert abs(total - 36) < 6 * se
    assert await _release(a, net) == []  # recorded once; nothing new to send
