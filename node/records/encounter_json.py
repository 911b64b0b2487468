"""The JSON answer to an encounter write, without building the pydantic model.

`POST /api/v1/encounters` answers with the new `EncounterOut`. Validating that model from
the row the service has just written and serialising it again was the largest single cost
of the write after the database (about 40 us of the event loop's ~210 us per request under
the 16-client benchmark, `bench.node_api`). Here the same bytes come from the row directly:
the values are the row's own (UUIDs, enum members, integer milliseconds, dates), put in the
model's field order and written by the standard library's C JSON encoder with the escaping
pydantic uses (`ensure_ascii=False`: raw UTF-8, `\\uXXXX` for control characters). The
vocabularies are `StrEnum`s, which that encoder writes as their values, as it writes any
`str`; members sort as their values.

`EncounterOut` stays the contract (the OpenAPI document, reads and lists use it); the test
`tests/node/test_encounter_json.py` compares these bytes with `model_dump_json` over
generated rows, so a field added to the model without being added here fails it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["FIELDS", "encounter_json"]

# EncounterOut's fields, in its order.
FIELDS = (
    "id", "created_by", "created_at", "updated_at", "occurred_at", "duration_bucket",
    "incident_ref", "activation_type", "intervention", "recipient_discipline",
    "recipient_category", "recipient_ref", "topics", "referral", "follow_up_due",
    "follow_up_owner", "follow_up_status", "notice_given", "supporter_was_witness",
    "amendments",
)

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                           check_circular=False).encode


def _time(ms: int) -> str:
    """As pydantic writes a UTC datetime: seconds, then microseconds only when non-zero
    (as `isoformat` does), then `Z` for its `+00:00`."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()[:-6] + "Z"




def encounter_json(row: Mapping[str, Any], *, topics: Iterable[Any], follow_up_due: date | None,
                   follow_up_owner: Any, follow_up_status: Any) -> bytes:
    """`EncounterOut(...).model_dump_json()` of a just-written encounter `row` (the
    service's insert values) and its follow-up, as bytes."""
    created = _time(row["created_at"])
    updated = created if row["updated_at"] == row["created_at"] else _time(row["updated_at"])
    out = {
        "id": str(row["id"]),
        "created_by": str(row["created_by"]),
        "created_at": created,
        "updated_at": updated,
        "occurred_at": _time(row["occurred_at"]),
        "duration_bucket": row["duration_bucket"],
        "incident_ref": row["incident_ref"],
        "activation_type": row["activation_type"],
        "intervention": row["intervention"],
        "recipient_discipline": row["recipient_discipline"],
        "recipient_category": row["recipient_category"],
        "recipient_ref": row["recipient_ref"],
        "topics": sorted(topics),
        "referral": row["referral"],
        "follow_up_due": None if follow_up_due is None else follow_up_due.isoformat(),
        "follow_up_owner": None if follow_up_owner is None else str(follow_up_owner),
        "follow_up_status": follow_up_status,
        "notice_given": bool(row["notice_given"]),
        "supporter_was_witness": bool(row["supporter_was_witness"]),
        "amendments": None,
    }
    return _ENCODE(out).encode("utf-8")
