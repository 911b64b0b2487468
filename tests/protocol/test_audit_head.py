"""The audit head signature and the `audit_anchor` body against the golden vector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.audit_head import head_signing_input, verify_head
from protocol.encoding import b64u, unb64u
from protocol.errors import Code, ProtocolError
from protocol.messages import BODY_MODELS, MessageType
from protocol.wire_types import wire_json
from tests.vectors.generate import signing_key

CASES = json.loads((Path(__file__).parents[1] / "vectors" / "audit_anchor.json")
                   .read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES)
def test_audit_anchor_vector(case: dict[str, object]) -> None:
    head = case["head"]
    body = case["body"]
    assert isinstance(head, dict) and isinstance(body, dict)
    data = head_signing_input(head["node_id"], head["seq"], head["hash"], head["signed_at"])
    assert b64u(data) == case["signing_input_b64u"]
    vk = bytes(signing_key(str(case["signer"])).verify_key)
    verify_head(vk, head["node_id"], head["seq"], head["hash"], head["signed_at"],
                unb64u(body["sig"]["value"]))
    model = BODY_MODELS[MessageType.AUDIT_ANCHOR].model_validate(body)
    assert wire_json(model) == body
    with pytest.raises(ProtocolError) as err:  # any other seq: not this signature
        verify_head(vk, head["node_id"], head["seq"] - 1, head["hash"], head["signed_at"],
                    unb64u(body["sig"]["value"]))
    assert err.value.code is Code.BAD_SIGNATURE
