"""WIRE.md §7 and the code agree on body defects (issue 13, item 14): once the inner message
parsed, a defect inside the body is `bad_body`, even where §1/§2 would say `malformed` for the
same defect in the envelope (a release signature that is not strict base64url, a release with
no canonical form, an id inside a body). The document used to promise `malformed` for these;
the code's `bad_body` (422, an authentic message with a bad body) is what the refusal table
means, so the document changed."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import MessageType, ProtocolError
from protocol.envelope import body_json
from protocol.release import verify_release
from tests.protocol.factories import Directory
from tests.vectors.generate import T0, _release


def _release_body(**sig: Any) -> dict[str, Any]:
    return {"release": _release(), "sig": {"key_id": "ed25519:1", "value": "AAAA", **sig}}


@pytest.mark.parametrize("body", [
    _release_body(value="AAAA="),  # padded base64url
    _release_body(value="AA+/"),  # the standard alphabet
    {"release": {**_release(), "scale": 1.5}, "sig": {"key_id": "ed25519:1",
                                                       "value": "AAAA"}},  # a float
])
def test_release_defects_are_bad_body(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as e:
        verify_release(body, keys=Directory.default(), at_ms=T0)
    assert e.value.code.value == "bad_body"


@pytest.mark.parametrize(("msg_type", "body"), [
    (MessageType.ACTIVATION_ACCEPT, {"offer_msg_id": "not-a-ulid"}),
    (MessageType.ACTIVATION_ACCEPT, {"offer_msg_id": "01ARZ3NDEKTSV4RRFFQ69G5FA="}),
    (MessageType.FOLLOWUP_HANDOFF, {"activation_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
                                    "due": "2026-02-30", "contact_note": "x",
                                    "discipline": "fire"}),
])
def test_defects_inside_a_body_are_bad_body(msg_type: MessageType, body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as e:
        body_json(msg_type, body)
    assert e.value.code.value == "bad_body"
