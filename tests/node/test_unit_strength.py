"""Unit strength (issue 15 item 4): one person typed several ways is one privacy unit, and
placeholders that name nobody are refused (`node.core.identifier`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.errors import Code, NodeError
from node.core.identifier import IdentifierFormat, unit_key
from node.privacy.ledger import month_columns
from node.privacy.noise import truncated_counts
from node.privacy.schema import FAMILIES, ReleasePolicy
from tests.node.conftest import MakeNode, encounter
from tests.node.test_pages import HTML, form, log_in

INTERVENTIONS = ["one_on_one", "defusing", "debriefing", "demobilization"]
EMP = IdentifierFormat.EMPLOYEE_NUMBER
ALNUM = IdentifierFormat.ALPHANUMERIC


def test_canonical_forms() -> None:
    assert unit_key(" E-00123 ", ALNUM) == unit_key("e.00123", ALNUM) == unit_key(
        "E 001/23", ALNUM) == "e00123"
    assert unit_key("007", ALNUM) != unit_key("7", ALNUM)  # opaque code: zeros kept
    assert unit_key("00123", EMP) == unit_key("12 3", EMP) == unit_key("0-0.1/2 3", EMP) == "123"
    assert unit_key("４２—１７", EMP) == "4217"  # full-width digits, em dash
    for bad, fmt in [("E-123", EMP), ("ab#12", ALNUM), ("ab_12", ALNUM)]:
        with pytest.raises(NodeError) as err:
            unit_key(bad, fmt)
        assert err.value.code is Code.IDENTIFIER_FORMAT and err.value.field == "recipient"


@pytest.mark.parametrize("typed", [
    "unknown", "UNKNOWN ", "n/a", "N.A.", "none", "000000", "0", "123456", "12345",
    "test", " ", "-", "1111", "99999", "xxxx", "654321", "0012345",
])
@pytest.mark.parametrize("fmt", [EMP, ALNUM])
def test_placeholders_refused(typed: str, fmt: IdentifierFormat) -> None:
    with pytest.raises(NodeError) as err:
        unit_key(typed, fmt)
    assert err.value.code is Code.PLACEHOLDER_IDENTIFIER
    assert typed.strip() not in err.value.message or not typed.strip()


async def test_three_typings_are_one_unit_in_the_release(make_node: MakeNode) -> None:
    """Through the real API: 3 typings x 4 encounters (4 cells) of one person in one month.
    Before normalisation these were three refs, so truncation (m=4, c=1) kept 12 encounters;
    now one person keeps one person's bound, 4."""
    node = await make_node(identifier_format="employee_number")
    typings = ["00123", "123", " 0-1.2/3 "]
    refs = set()
    for t, typed in enumerate(typings):
        for k in range(4):
            status, body = await node.post("sup1", "/api/v1/encounters", encounter(
                recipient=typed, occurred_at=f"2026-06-{1 + 4 * t + k:02d}T10:00:00Z",
                intervention=INTERVENTIONS[k]))
            assert status == 201, body
            refs.add(body["recipient_ref"])
    assert len(refs) == 1
    policy = ReleasePolicy()
    async with node.ctx.db.read() as conn:
        cols = await month_columns(conn, "2026-06")
    assert len(cols) == 12 and len(set(cols.person.tolist())) == 1
    counts = truncated_counts(cols, policy.per_person_month, policy.per_cell)
    # one person's bound: m encounters in the encounter family (three people would keep 12),
    # and at most m in every other family
    start = 0
    for i, fam in enumerate(FAMILIES):
        kept = int(counts[start:start + len(fam.keys)].sum())
        assert kept == policy.per_person_month if i == 0 else kept <= policy.per_person_month
        start += len(fam.keys)


async def test_placeholder_refused_on_api_and_form_nothing_stored(make_node: MakeNode) -> None:
    node = await make_node()
    before = (await node.count("encounters"), await node.count("audit_log"))
    status, body = await node.post("sup1", "/api/v1/encounters", encounter(recipient="N/A"))
    assert status == 422
    assert body["error"]["code"] == "placeholder_identifier"
    assert body["error"]["field"] == "recipient"
    status, body = await node.post("sup1", "/api/v1/encounters", encounter(recipient="E#12"))
    assert status == 422 and body["error"]["code"] == "identifier_format"
    assert (await node.count("encounters"), await node.count("audit_log")) == before
    # the form shows the plain sentence (and never the typed value)
    csrf = await log_in(node, "sup1")
    r = await node.client.post("/encounters", data=form(csrf, recipient="Unknown"), headers=HTML)
    text = await r.text()
    assert r.status == 422, text
    assert 'data-code="placeholder_identifier"' in text
    assert "placeholder, not a person" in text and "Unknown" not in text
    assert (await node.count("encounters"), await node.count("audit_log"))[0] == before[0]


def _strip_by_walk(text: str) -> str:
    """The per-character walk, kept as the oracle for the ASCII fast path."""
    import unicodedata

    return "".join(ch for ch in text if not (
        ch in " ./\\" or ch.isspace() or unicodedata.category(ch) == "Pd"))


def test_every_ascii_character_is_stripped_as_the_walk_strips_it() -> None:
    from node.core.identifier import _strip_separators

    for c in map(chr, range(128)):
        assert _strip_separators(f"a{c}1") == _strip_by_walk(f"a{c}1"), repr(c)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x2100), max_size=12))
def test_stripping_matches_the_walk_for_any_text(text: str) -> None:
    from node.core.identifier import _strip_separators

    assert _strip_separators(text) == _strip_by_walk(text)
