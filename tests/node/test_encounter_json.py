"""`node.records.encounter_json`: the write's answer built from the row is byte for byte
`EncounterOut.model_dump_json()` (generated rows, including any text and time), and the
API's answer to a write is the record as a read shows it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from node.core.schemas import EncounterOut
from node.core.vocabulary import (
    ActivationType,
    DurationBucket,
    FollowUpStatus,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Referral,
    Topic,
)
from node.records.encounter_json import FIELDS, encounter_json
from node.records.encounters import out_of
from tests.node.conftest import MakeNode, encounter

_MS = st.integers(min_value=0, max_value=4_102_444_800_000)  # to 2100
_ROWS = st.fixed_dictionaries({
    "id": st.uuids(), "created_by": st.uuids(), "created_at": _MS, "occurred_at": _MS,
    "duration_bucket": st.sampled_from(DurationBucket),
    "incident_ref": st.none() | st.text(max_size=40),
    "activation_type": st.sampled_from(ActivationType),
    "intervention": st.sampled_from(Intervention),
    "recipient_discipline": st.sampled_from(RecipientDiscipline),
    "recipient_category": st.sampled_from(RecipientCategory),
    "recipient_ref": st.text(min_size=1, max_size=43),
    "topics": st.frozensets(st.sampled_from(Topic)),
    "referral": st.none() | st.sampled_from(Referral),
    "notice_given": st.booleans(), "supporter_was_witness": st.booleans(),
})
_FOLLOW = st.none() | st.tuples(st.dates(date(2000, 1, 1), date(2099, 12, 31)), st.uuids(),
                                st.sampled_from(FollowUpStatus))


def _model(row: dict[str, Any], follow: Any) -> bytes:
    due, owner, status = follow or (None, None, FollowUpStatus.NONE)
    return out_of({**row, "due_on": due, "owner_id": owner}, status).model_dump_json().encode()


@settings(max_examples=400, deadline=None)
@given(row=_ROWS, follow=_FOLLOW, later=st.none() | _MS)
def test_the_same_bytes_as_the_model(row: dict[str, Any], follow: Any, later: int | None) -> None:
    row = {**row, "updated_at": row["created_at"] if later is None else later}
    due, owner, status = follow or (None, None, FollowUpStatus.NONE)
    got = encounter_json(row, topics=row["topics"], follow_up_due=due, follow_up_owner=owner,
                         follow_up_status=status)
    assert got == _model(row, follow)


def test_every_field_of_the_model_is_written_in_its_order() -> None:
    assert tuple(EncounterOut.model_fields) == FIELDS


def test_a_time_with_milliseconds_and_one_without() -> None:
    row = {"id": uuid.uuid4(), "created_by": uuid.uuid4(), "created_at": 1_781_524_800_123,
           "updated_at": 1_781_524_800_000, "occurred_at": 0,
           "duration_bucket": DurationBucket.M15_30, "incident_ref": "A-1",
           "activation_type": ActivationType.SELF, "intervention": Intervention.DEFUSING,
           "recipient_discipline": RecipientDiscipline.FIRE,
           "recipient_category": RecipientCategory.OWN_AGENCY, "recipient_ref": "r",
           "referral": None, "notice_given": True, "supporter_was_witness": False}
    got = encounter_json(row, topics=[], follow_up_due=None, follow_up_owner=None,
                         follow_up_status=FollowUpStatus.NONE)
    assert b'"created_at":"2026-06-15T12:00:00.123000Z","updated_at":"2026-06-15T12:00:00Z"' \
        in got and b'"occurred_at":"1970-01-01T00:00:00Z"' in got
    assert datetime.fromisoformat(got.split(b'"created_at":"')[1][:27].decode()) == datetime(
        2026, 6, 15, 12, 0, 0, 123000, tzinfo=UTC)


async def test_the_answer_to_a_write_is_the_record_as_read(make_node: MakeNode) -> None:
    node = await make_node()
    # A follow-up already past due when logged is answered `overdue`, as a read shows it.
    for extra in ({}, {"follow_up_due": "2026-06-16", "referral": "eap", "incident_ref": "F-9"},
                  {"occurred_at": "2026-05-01T08:00:00Z", "follow_up_due": "2026-05-02"}):
        status, body = await node.post("sup1", "/api/v1/encounters", encounter(**extra))
        assert status == 201, body
        status, got = await node.get("sup1", f"/api/v1/encounters/{body['id']}")
        assert status == 200 and got == {**body, "amendments": []}
    assert body["follow_up_status"] == "overdue"
    status, err = await node.post("sup1", "/api/v1/encounters", encounter(topics=["x"]))
    assert status == 422 and err["error"]["code"] == "invalid_enum"
