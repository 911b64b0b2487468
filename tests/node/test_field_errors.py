"""Field errors read as sentences (issue 13 item 11): bad input posted through a real node
server (SQLite and PostgreSQL) comes back with a plain sentence naming the field as the form
does, the stable code unchanged, no pydantic or regular-expression text, nothing stored."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from federation.field_errors import field_message
from tests.node.conftest import MakeNode
from tests.node.test_pages import HTML, form, log_in

# What developer text looks like: pydantic phrases, patterns, type names.
JARGON = re.compile(
    r"should (have|match|be)|after validation|pattern|\^|\[A-Z|\{0,|\$'|"
    r"dictionary|valid integer|type=|pydantic|input_value|_ts\b|Value error",
    re.IGNORECASE)


def alert_of(html: str) -> tuple[str | None, str]:
    m = re.search(r'role="alert" data-code="([a-z_]+)">([^<]*)<', html)
    assert m, html[:2000]
    return m.group(1), m.group(2)


def plain(text: str) -> None:
    assert not JARGON.search(text), text
    assert text[:1].isupper() and text.endswith("."), text


@pytest.mark.parametrize(("change", "expected"), [
    ({"incident_ref": "#1 bad"}, "Enter the incident number as letters and digits"),
    ({"occurred_at": "yesterday"}, "When: choose a date and time."),
    ({"intervention": "hugging"}, "Type of support: choose one of the offered options."),
    ({"recipient": "line\nbreak"}, "Enter what identifies the person to you"),
])
async def test_encounter_form_errors_are_sentences(
    make_node: MakeNode, change: dict[str, Any], expected: str
) -> None:
    node = await make_node()
    csrf = await log_in(node, "sup1")
    before = await node.count("encounters")
    r = await node.client.post("/encounters", data=form(csrf, **change), headers=HTML)
    assert r.status == 422
    code, text = alert_of(await r.text())
    assert code in ("invalid_input", "invalid_enum")
    assert text.startswith(expected), text
    plain(text)
    assert await node.count("encounters") == before


async def test_api_errors_keep_their_code_and_speak_plainly(make_node: MakeNode) -> None:
    node = await make_node()
    from tests.node.conftest import encounter

    status, body = await node.post("sup1", "/api/v1/encounters",
                                   encounter(incident_ref="#1 bad"))
    assert status == 422
    err = body["error"]
    assert (err["code"], err["field"]) == ("invalid_input", "incident_ref")
    plain(err["message"])
    status, body = await node.post("sup1", "/api/v1/encounters", encounter(colour="blue"))
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        422, "unknown_field", "colour")
    assert body["error"]["message"] == "Colour is not a field of this form."
    assert await node.count("encounters") == 0


class _Sample(BaseModel):
    affected: dict[str, int] = Field(min_length=1)
    month: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    peers_needed: int = Field(ge=1, le=1000)
    password: str = Field(min_length=10)


@pytest.mark.parametrize(("value", "field", "expected"), [
    ({"affected": {}}, "affected", "Affected personnel: choose or fill in at least one."),
    ({"month": "2026-13"}, "month", "Choose a month, for example 2026-03."),
    ({"peers_needed": 0}, "peers_needed", "Peers needed must be at least 1."),
    ({"peers_needed": "four"}, "peers_needed", "Peers needed must be a whole number."),
    ({"password": "short"}, "password", "Password must be at least 10 characters."),
])
def test_one_mapping_covers_the_reported_cases(
    value: dict[str, Any], field: str, expected: str
) -> None:
    full = {"affected": {"fire": 1}, "month": "2026-01", "peers_needed": 2,
            "password": "long enough pw", **value}
    with pytest.raises(ValidationError) as info:
        _Sample.model_validate(full)
    (err,) = info.value.errors(include_url=False, include_input=False)
    assert field_message(err) == (field, expected)
    plain(expected)
