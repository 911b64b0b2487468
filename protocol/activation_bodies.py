"""Bodies of the activation thread between agencies: request, offer, accept, decline,
update, cancel and the follow-up hand-off (DESIGN section 4).

An `activation_request`'s `msg_id` is the activation id. Every later message of that
activation carries it as the inner `thread_id`; replies name the message they answer in
`in_reply_to`. Who to call and who approved are roles from a fixed list (`AgencyRole`); the
only note (`followup_handoff.contact_note`) is short, sealed to the receiving node, and not a
licence for narrative.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from protocol.ids import MsgId, NodeId
from protocol.vocabulary import (
    AgencyRoleField,
    CancelReasonField,
    DeclineReasonField,
    Discipline,
    DisciplineField,
    IncidentTypeField,
    Intervention,
    InterventionField,
    OfferCondition,
    OfferConditionField,
    PriorityField,
    StageField,
)
from protocol.wire_types import (
    ContactNote,
    Count,
    DateStr,
    IncidentRef,
    LocationCode,
    PeerCount,
    Phone,
    Ts,
    WireModel,
    unique_items,
)

__all__ = [
    "ActivationAcceptBody",
    "ActivationCancelBody",
    "ActivationDeclineBody",
    "ActivationOfferBody",
    "ActivationRequestBody",
    "ActivationUpdateBody",
    "Contact",
    "FollowupHandoffBody",
]


class Contact(WireModel):
    """A role from a fixed list and a phone number, never a name."""

    role: AgencyRoleField
    phone: Phone


class ActivationRequestBody(WireModel):
    """Modelled on ICS-213RR and the EMAC request."""

    incident_ref: IncidentRef
    requesting_agency: NodeId
    incident_type: IncidentTypeField
    event_ts: Ts
    affected: dict[DisciplineField, Count] = Field(min_length=1, max_length=len(Discipline))
    interventions: list[InterventionField] = Field(min_length=1, max_length=len(Intervention))
    window_start_ts: Ts
    window_end_ts: Ts
    peers_needed: PeerCount
    reporting_location: LocationCode
    priority: PriorityField
    contact: Contact
    approver: AgencyRoleField
    expires_ts: Ts

    _interventions_unique = field_validator("interventions")(unique_items)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_end_ts < self.window_start_ts:
            raise ValueError("window ends before it starts")
        return self


class ActivationOfferBody(WireModel):
    """Peers offered as counts by discipline (never names until accepted)."""

    peers: PeerCount
    disciplines: dict[DisciplineField, PeerCount] = Field(min_length=1, max_length=len(Discipline))
    eta_minutes: Annotated[int, Field(ge=0, le=10_080)]
    conditions: list[OfferConditionField] = Field(max_length=len(OfferCondition))

    _conditions_unique = field_validator("conditions")(unique_items)

    @model_validator(mode="after")
    def _sum(self) -> Self:
        if sum(self.disciplines.values()) != self.peers:
            raise ValueError("discipline counts must add up to peers")
        return self


class ActivationAcceptBody(WireModel):
    offer_msg_id: MsgId


class ActivationDeclineBody(WireModel):
    reason: DeclineReasonField


class ActivationUpdateBody(WireModel):
    stage: StageField


class ActivationCancelBody(WireModel):
    reason: CancelReasonField


class FollowupHandoffBody(WireModel):
    """Follow-up ownership moving after demobilization. `contact_note` is minimal and sealed;
    the receiving node keeps it encrypted at rest and purges it when done."""

    activation_id: MsgId
    due: DateStr
    contact_note: ContactNote
    discipline: DisciplineField

    @field_validator("due")
    @classmethod
    def _real_date(cls, value: str) -> str:
        datetime.date.fromisoformat(value)  # ValueError for 2025-02-30
        return value

