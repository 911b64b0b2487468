"""The batch request and response bodies of the send route (DESIGN section 4, WIRE).

A sender posts up to `MAX_BATCH` envelopes as `{"envelopes":[...]}` (`build_batch` joins
their canonical bytes without re-serializing them); the receiver parses the body strictly
(`parse_batch`) and checks or opens each envelope on its own, answering one result per
envelope in order (`{"results":[...]}`: `build_batch_response` / `parse_batch_response`);
`refusal` is the result of an item refused before it could be opened.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from protocol.canonical import (
    canonical_bytes,
    parse_json,
)
from protocol.envelope import MAX_BATCH, MAX_ENVELOPE_BYTES, malformed
from protocol.errors import Code, ProtocolError
from protocol.ids import is_msg_id
from protocol.messages import AckStatus, BatchResponse, BatchResult
from protocol.wire_types import wire_json

__all__ = [
    "MAX_BATCH_BYTES",
    "build_batch",
    "build_batch_response",
    "parse_batch",
    "parse_batch_response",
    "refusal",
]

# 50 envelopes of at most 64 KiB, their commas, and `{"envelopes":[]}`.
MAX_BATCH_BYTES = MAX_BATCH * (MAX_ENVELOPE_BYTES + 1) + 16


def build_batch(envelopes: Sequence[bytes]) -> bytes:
    """`{"envelopes":[...]}` from envelopes' canonical bytes, without re-serializing them
    (the result is canonical when each envelope is)."""
    if len(envelopes) > MAX_BATCH:
        raise ProtocolError(Code.BATCH_TOO_LARGE, f"{len(envelopes)} envelopes > {MAX_BATCH}")
    for envelope in envelopes:
        if not isinstance(envelope, bytes) or not envelope.startswith(b"{"):
            raise malformed("each envelope must be its canonical bytes")
        if len(envelope) > MAX_ENVELOPE_BYTES:
            raise ProtocolError(Code.TOO_LARGE, "envelope exceeds 64 KiB")
    return b'{"envelopes":[' + b",".join(envelopes) + b"]}"


def parse_batch(body: bytes) -> list[object]:
    """The envelopes of a batch request body, as plain JSON values, unchecked (pass each to
    `check_outer`/`open_envelope`). The whole request is refused when the body is not one
    strict JSON object `{"envelopes": [...]}` (malformed) or holds more than 50
    (batch_too_large)."""
    if isinstance(body, bytes | bytearray) and len(body) > MAX_BATCH_BYTES:
        raise ProtocolError(Code.TOO_LARGE, "batch body too large")
    obj = parse_json(body)
    if type(obj) is not dict or obj.keys() != {"envelopes"}:
        raise malformed('batch must be exactly {"envelopes": [...]}')
    envelopes = obj["envelopes"]
    if type(envelopes) is not list:
        raise malformed("envelopes must be an array")
    if len(envelopes) > MAX_BATCH:
        raise ProtocolError(Code.BATCH_TOO_LARGE, f"{len(envelopes)} envelopes > {MAX_BATCH}")
    return envelopes


def refusal(item: object, code: Code) -> BatchResult:
    """The result for a refused batch item, naming its msg_id when one can be read."""
    msg_id = item.get("msg_id") if isinstance(item, dict) else None
    return BatchResult.model_construct(
        msg_id=msg_id if is_msg_id(msg_id) else None,
        status=AckStatus.REFUSED,
        code=Code(code),
    )


def build_batch_response(results: Sequence[BatchResult]) -> bytes:
    """`{"results": [...]}` in batch order."""
    return canonical_bytes({"results": [wire_json(result) for result in results]})


def parse_batch_response(body: bytes, expected: int | None = None) -> list[BatchResult]:
    """Strictly parse a batch response; `expected` is the number of envelopes sent."""
    try:
        response = BatchResponse.model_validate(parse_json(body))
    except ValidationError as exc:
        raise malformed("invalid batch response") from exc
    if expected is not None and len(response.results) != expected:
        raise malformed("batch response has the wrong number of results")
    return list(response.results)
