"""Pydantic models of the activation API: what a coordinator sends and what the node shows.

Inputs reuse the wire field types of `protocol.messages` (same bounds, same vocabularies),
so a request that passes the API also passes the recipient's body check. Nothing in an
input can hold a name or a narrative: roles are fixed choices (`AgencyRole`), the
reporting location is a short code, the incident a reference, the hand-off note at most 140
characters of a narrow alphabet (`ContactNote`).
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from node.activation.interstate import PeerName
from protocol.activation_bodies import Contact
from protocol.hub_bodies import MAX_STATUS_RESPONDERS
from protocol.ids import MsgId
from protocol.vocabulary import (
    ActivationState,
    AgencyRole,
    CancelReason,
    DeclineReason,
    Discipline,
    IncidentType,
    Intervention,
    OfferCondition,
    Priority,
    Stage,
)
from protocol.wire_types import ContactNote, IncidentRef, LocationCode, Ts

__all__ = [
    "AcceptIn",
    "AcceptOut",
    "ActivationOut",
    "ActivationSummary",
    "CancelIn",
    "DeclineIn",
    "HandoffIn",
    "HandoffOut",
    "LegOut",
    "OfferIn",
    "OfferOut",
    "RequestIn",
    "RequestOut",
    "TargetOut",
    "UpdateIn",
    "WarningOut",
]

_IN = ConfigDict(extra="forbid", frozen=True)


class RequestIn(BaseModel):
    """A new activation request (ICS-213RR / EMAC): to `targets`, sent unless `draft`."""

    model_config = _IN

    incident_ref: IncidentRef
    incident_type: IncidentType
    event_ts: Ts
    affected: dict[Discipline, Annotated[int, Field(ge=0, le=100_000)]] = Field(
        min_length=1, max_length=len(Discipline)
    )
    interventions: list[Intervention] = Field(min_length=1, max_length=len(Intervention))
    window_start_ts: Ts
    window_end_ts: Ts
    peers_needed: Annotated[int, Field(ge=1, le=1_000)]
    reporting_location: LocationCode
    priority: Priority
    contact: Contact
    approver: AgencyRole
    expires_ts: Ts
    # Home agencies by node id, agencies of another member network as `<network>/<node_id>`.
    targets: list[PeerName] = Field(min_length=1, max_length=MAX_STATUS_RESPONDERS)
    draft: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.window_end_ts < self.window_start_ts:
            raise ValueError("window ends before it starts")
        if len(set(self.interventions)) != len(self.interventions):
            raise ValueError("interventions must be unique")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets must be unique")
        return self


class OfferIn(BaseModel):
    """Peers offered as counts by discipline (never names), ETA and conditions."""

    model_config = _IN

    disciplines: dict[Discipline, Annotated[int, Field(ge=1, le=1_000)]] = Field(
        min_length=1, max_length=len(Discipline)
    )
    eta_minutes: Annotated[int, Field(ge=0, le=10_080)]
    conditions: list[OfferCondition] = Field(default_factory=list, max_length=len(OfferCondition))

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(set(self.conditions)) != len(self.conditions):
            raise ValueError("conditions must be unique")
        if sum(self.disciplines.values()) > 1_000:
            raise ValueError("at most 1000 peers")
        return self

    @property
    def peers(self) -> int:
        return sum(self.disciplines.values())


class AcceptIn(BaseModel):
    model_config = _IN

    offer_msg_id: MsgId


class DeclineIn(BaseModel):
    model_config = _IN

    reason: DeclineReason
    responder: PeerName | None = None  # requester side: whose offer to decline


class CancelIn(BaseModel):
    model_config = _IN

    reason: CancelReason
    responder: PeerName | None = None  # requester side: only this leg (default: all of it)


class UpdateIn(BaseModel):
    model_config = _IN

    stage: Stage


class HandoffIn(BaseModel):
    """A follow-up hand-off: due date, discipline and a minimal contact note (sealed)."""

    model_config = _IN

    to: PeerName
    due: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    discipline: Discipline
    contact_note: ContactNote


class WarningOut(BaseModel):
    code: str
    message: str


class OfferOut(BaseModel):
    msg_id: str
    peers: int
    disciplines: dict[str, int]
    eta_minutes: int
    conditions: list[str]


class LegOut(BaseModel):
    responder: str
    state: ActivationState
    request_msg_id: str | None
    offer: OfferOut | None
    accept_msg_id: str | None
    decline_reason: str | None
    declined_by: str | None
    cancel_reason: str | None
    cancelled_by: str | None
    updated_at: int


class RequestOut(BaseModel):
    incident_ref: str
    requesting_agency: str
    incident_type: str
    event_ts: int
    affected: dict[str, int]
    interventions: list[str]
    window_start_ts: int
    window_end_ts: int
    peers_needed: int
    reporting_location: str
    priority: str
    contact: dict[str, str]
    approver: str
    expires_ts: int


class ActivationSummary(BaseModel):
    activation_id: str
    requester: str
    side: str
    state: ActivationState
    incident_ref: str
    incident_type: str
    event_ts: int
    expires_ts: int
    peers_needed: int
    peers_offered: int
    legs: int
    updated_at: int


class ActivationOut(BaseModel):
    activation_id: str
    requester: str
    side: str
    state: ActivationState
    own_state: ActivationState = Field(
        description="Where this node's own part stands: a responder's leg (offered, "
        "accepted, ...), a requester's activation as a whole")
    request: RequestOut
    legs: list[LegOut]
    warnings: list[WarningOut]
    approval: str | None = Field(
        default=None, description="Interstate only, when this node's policy asks for it: "
        "`pending` (not sent / no offer yet) until an approver approves, then `approved`")
    created_at: int
    updated_at: int


class AcceptOut(BaseModel):
    """The outcome of accepting an offer; a repeated acceptance returns the first one."""

    activation_id: str
    offer_msg_id: str
    responder: str
    accept_msg_id: str
    state: ActivationState
    repeated: bool


class TargetOut(BaseModel):
    node_id: str
    name: str
    region: str
    disciplines: list[str]
    allowed: bool


class HandoffOut(BaseModel):
    id: str
    activation_id: str
    requester: str
    direction: str
    peer: str
    discipline: str
    due: str
    status: str
    assigned_to: str | None
    contact_note: str | None  # only for the assigned coordinator, only while open
    created_at: int
    completed_at: int | None
