"""Body and layer models: exact field sets, strict types, bounded values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from protocol import (
    BODY_MODELS,
    ActivationOfferBody,
    ActivationRequestBody,
    ActivationStatusBody,
    BatchResult,
    Code,
    Discipline,
    InnerMessage,
    MessageType,
    OuterEnvelope,
    canonical_bytes,
    parse_json,
    wire_json,
)
from protocol.messages import BATCH_FORMS
from tests.protocol.factories import make_envelope, open_as, sample_bodies, ulid

BODIES = sample_bodies()


def invalid(model: type[BaseModel], value: Any) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(value)


def test_every_type_has_a_body_model() -> None:
    assert set(BODY_MODELS) == set(MessageType)


@pytest.mark.parametrize("msg_type", list(MessageType), ids=str)
def test_sample_bodies_round_trip_through_wire_json(msg_type: MessageType) -> None:
    model = BODY_MODELS[msg_type].model_validate(BODIES[msg_type])
    assert wire_json(model) == BODIES[msg_type]
    assert parse_json(canonical_bytes(wire_json(model))) == BODIES[msg_type]
    with pytest.raises(ValidationError):  # frozen
        model.__setattr__(next(iter(type(model).model_fields)), None)


@pytest.mark.parametrize("msg_type", list(MessageType), ids=str)
def test_unknown_body_field_is_refused(msg_type: MessageType) -> None:
    invalid(BODY_MODELS[msg_type], {**BODIES[msg_type], "note": "free text"})


@pytest.mark.parametrize("msg_type", list(MessageType), ids=str)
def test_every_body_field_is_required(msg_type: MessageType) -> None:
    for field in BODIES[msg_type]:
        invalid(BODY_MODELS[msg_type], {k: v for k, v in BODIES[msg_type].items() if k != field})


REQUEST = BODIES[MessageType.ACTIVATION_REQUEST]


@pytest.mark.parametrize(
    "change",
    [
        {"incident_type": "LINE_OF_DUTY_DEATH"},
        {"incident_type": b"line_of_duty_death"},
        {"affected": {"firefighters": 3}},
        {"affected": {}},
        {"affected": {"fire": -1}},
        {"affected": {"fire": True}},
        {"interventions": ["defusing", "defusing"]},
        {"interventions": []},
        {"interventions": ("defusing",)},
        {"window_end_ts": REQUEST["window_start_ts"] - 1},
        {"peers_needed": 0},
        {"peers_needed": 4.0},
        {"peers_needed": "4"},
        {"event_ts": -5},
        {"reporting_location": "X" * 17},
        {"reporting_location": "line\nbreak"},
        {"reporting_location": ""},
        {"reporting_location": "Station 7, 100 Main St"},  # an address is not a code
        {"reporting_location": "sta-7"},
        {"contact": {"role": "coordinator", "phone": "call me maybe"}},
        {"contact": {"role": "coordinator", "phone": "+1 555 0100", "name": "J. Doe"}},
        {"contact": {"role": "Jane Doe, peer team coordinator", "phone": "+1 555 0100"}},
        {"contact": {"role": "Coordinator", "phone": "+1 555 0100"}},
        {"approver": "Deputy Chief Jim Smith"},
        {"approver": "deputy chief"},
        {"requesting_agency": "Agency A"},
        {"incident_ref": "#1 bad"},
        {"priority": "critical"},
    ],
    ids=repr,
)
def test_activation_request_refusals(change: dict[str, Any]) -> None:
    invalid(ActivationRequestBody, {**REQUEST, **change})


def test_enum_fields_hold_enums_and_dump_strings() -> None:
    model = ActivationRequestBody.model_validate(REQUEST)
    assert Discipline.FIRE in model.affected
    assert wire_json(model)["affected"] == {"fire": 24, "dispatch_911": 3}


def test_offer_counts_must_add_up() -> None:
    offer = BODIES[MessageType.ACTIVATION_OFFER]
    invalid(ActivationOfferBody, {**offer, "peers": 4})
    invalid(ActivationOfferBody, {**offer, "conditions": ["hot_tub"]})
    invalid(ActivationOfferBody, {**offer, "eta_minutes": 10_081})


@pytest.mark.parametrize(
    ("msg_type", "change"),
    [
        (MessageType.FOLLOWUP_HANDOFF, {"due": "2026-02-30"}),
        (MessageType.FOLLOWUP_HANDOFF, {"due": "2026-1-5"}),
        (MessageType.FOLLOWUP_HANDOFF, {"contact_note": "x" * 141}),
        (MessageType.FOLLOWUP_HANDOFF, {"contact_note": "Mail j.doe@example.org"}),
        (MessageType.FOLLOWUP_HANDOFF, {"contact_note": "He said \"I can't\""}),
        (MessageType.FOLLOWUP_HANDOFF, {"contact_note": "two\nlines"}),
        (MessageType.FOLLOWUP_HANDOFF, {"contact_note": " leading space"}),
        (MessageType.ACK, {"status": "refused", "code": None}),
        (MessageType.ACK, {"status": "accepted", "code": "malformed"}),
        (MessageType.ACK, {"status": "refused", "code": "teapot"}),
        (MessageType.ACTIVATION_STATUS, {"state": "lost"}),
        (MessageType.ACTIVATION_STATUS, {"counts": {"affected": 1}}),
        (MessageType.ACTIVATION_UPDATE, {"stage": "requested"}),
        (MessageType.ACTIVATION_DECLINE, {"reason": "because"}),
        (MessageType.ACTIVATION_ACCEPT, {"offer_msg_id": "01abc"}),
    ],
    ids=repr,
)
def test_other_body_refusals(msg_type: MessageType, change: dict[str, Any]) -> None:
    invalid(BODY_MODELS[msg_type], {**BODIES[msg_type], **change})


SUBMIT_STATUS = {**BODIES[MessageType.ACTIVATION_STATUS], "responder": None,
                 "state": "requested", "responders": ["agency-b", "agency-c"]}


def test_status_names_the_agencies_asked_only_on_submit() -> None:
    model = ActivationStatusBody.model_validate(SUBMIT_STATUS)
    assert model.responders == ["agency-b", "agency-c"]
    assert wire_json(model)["responders"] == ["agency-b", "agency-c"]
    # Absent stays absent: the other statuses keep exactly their seven fields.
    plain = ActivationStatusBody.model_validate(BODIES[MessageType.ACTIVATION_STATUS])
    assert "responders" not in wire_json(plain)


@pytest.mark.parametrize(
    "change",
    [
        {"responders": None},  # omitted, never null
        {"responders": []},
        {"responders": ["agency-b", "agency-b"]},
        {"responders": ["agency-a"]},  # the requester itself
        {"responders": ["Agency B"]},
        {"responders": [f"agency-{i}" for i in range(501)]},
        {"responder": "agency-b"},  # a list goes only with responder null
        {"state": "offered"},  # and only with state requested
    ],
    ids=repr,
)
def test_status_responders_refusals(change: dict[str, Any]) -> None:
    invalid(ActivationStatusBody, {**SUBMIT_STATUS, **change})


STATUSES = BODIES[MessageType.ACTIVATION_STATUSES]


def test_statuses_carry_each_status_exactly_as_alone() -> None:
    model = BODY_MODELS[MessageType.ACTIVATION_STATUSES].model_validate(STATUSES)
    assert wire_json(model) == STATUSES
    assert [wire_json(s) for s in model.statuses] == [  # type: ignore[attr-defined]
        wire_json(ActivationStatusBody.model_validate(s)) for s in STATUSES["statuses"]
    ]
    with_submit = {"statuses": [STATUSES["statuses"][0], SUBMIT_STATUS]}
    assert wire_json(BODY_MODELS[MessageType.ACTIVATION_STATUSES].model_validate(with_submit)
                     )["statuses"][1]["responders"] == ["agency-b", "agency-c"]


@pytest.mark.parametrize(
    "body",
    [
        {"statuses": []},
        {"statuses": None},
        {},
        {"statuses": [STATUSES["statuses"][0]] * 51},
        {"statuses": [{**STATUSES["statuses"][0], "state": "lost"}]},  # one bad entry
        {"statuses": [{**STATUSES["statuses"][0], "name": "J. Doe"}]},  # no such field
        {"statuses": STATUSES["statuses"], "note": "x"},
        {"statuses": STATUSES["statuses"][0]},  # a list, not one status
    ],
    ids=repr,
)
def test_statuses_refusals(body: dict[str, Any]) -> None:
    invalid(BODY_MODELS[MessageType.ACTIVATION_STATUSES], body)


def test_only_statuses_the_sender_is_party_to_join_a_batch() -> None:
    form = BATCH_FORMS[MessageType.ACTIVATION_STATUS]
    assert form.batch_type is MessageType.ACTIVATION_STATUSES and form.most == 50
    body = BODIES[MessageType.ACTIVATION_STATUS]
    assert form.joins(body, "agency-a") and form.joins(body, "agency-b")
    assert not form.joins(body, "agency-c")


def test_ack_refused_with_code() -> None:
    body = {"msg_id": ulid(1), "status": "refused", "code": "bad_signature"}
    assert BODY_MODELS[MessageType.ACK].model_validate(body).code is Code.BAD_SIGNATURE  # type: ignore[attr-defined]


RELEASE = BODIES[MessageType.AGGREGATE_RELEASE]


@pytest.mark.parametrize(
    "change",
    [
        {"measure": "pure_dp"},  # with mechanism gaussian
        {"scale": "1e-3"},
        {"scale": 2.5},
        {"budget_spent": "-0.1"},
        {"month": "2025-13"},
        {"cells": {"bad key with spaces": 1}},
        {"cells": {"k": 2**53}},
        {"bounds": {"per_person_month": 0, "per_cell": 1}},
        {"query_sha256": "short"},
    ],
    ids=repr,
)
def test_release_refusals(change: dict[str, Any]) -> None:
    model = BODY_MODELS[MessageType.AGGREGATE_RELEASE]
    invalid(model, {**RELEASE, "release": {**RELEASE["release"], **change}})


def test_pure_dp_goes_with_laplace() -> None:
    release = {**RELEASE["release"], "measure": "pure_dp", "mechanism": "laplace"}
    BODY_MODELS[MessageType.AGGREGATE_RELEASE].model_validate({**RELEASE, "release": release})


def test_layer_models_use_wire_names_only() -> None:
    env = parse_json(make_envelope())
    outer = OuterEnvelope.model_validate(env)
    assert outer.from_ == "agency-a"
    assert wire_json(outer) == env
    renamed = {("from_" if k == "from" else k): v for k, v in env.items()}
    invalid(OuterEnvelope, renamed)
    invalid(OuterEnvelope, {**env, "v": True})
    invalid(OuterEnvelope, {**env, "v": 1.0})
    inner = open_as(make_envelope()).inner
    assert isinstance(inner, InnerMessage)
    assert wire_json(inner)["from"] == "agency-a"
    assert canonical_bytes(wire_json(inner)) == open_as(make_envelope()).inner_bytes


def test_batch_result_code_rule() -> None:
    BatchResult.model_validate({"msg_id": None, "status": "refused", "code": "malformed"})
    invalid(BatchResult, {"msg_id": None, "status": "duplicate", "code": "malformed"})


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4))
def test_random_bodies_fail_as_validation_errors(value: dict[str, Any]) -> None:
    for model in BODY_MODELS.values():
        try:
            model.model_validate(value)
        except ValidationError:
            pass
