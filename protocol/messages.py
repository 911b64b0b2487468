"""Message models: the outer envelope, the inner message and one body model per type.

All models are pydantic v2, strict, frozen and `extra="forbid"`: field sets are exact
(DESIGN section 4: a new field means a new `v`). They validate *plain JSON values* as
produced by `protocol.canonical.parse_json`; they never feed a signature check (signatures
are verified over received bytes before any model is built, see `protocol.envelope`).

Conventions:

- times are integer milliseconds since the Unix epoch (`*_ts`), dates are `YYYY-MM-DD`,
  months `YYYY-MM`;
- decimals are strings in plain notation (`protocol.encoding.format_decimal`);
- enumerations are `StrEnum`s; on the wire they are their string values (only `str` input
  is accepted, matched exactly);
- counts are bounded non-negative integers. Nothing in a body names or describes a person:
  who to call and who approved are roles from a fixed list (`AgencyRole`), where to report
  is a short upper-case code (`LocationCode`, e.g. `STA-7`), and the only note
  (`followup_handoff.contact_note`, `ContactNote`) is at most 140 characters of letters,
  digits, spaces and `.,:;/#()+-` (no `@`, quotes or line breaks), sealed to the receiving
  node. Sealed is not a licence for narrative: fixed choices wherever a choice fits.
- Python attribute `from_` is the wire field `from` (a keyword in Python). Models accept
  only the wire names; `model_dump()` emits wire names.

The activation thread: an `activation_request`'s `msg_id` is the activation id. Every later
message of that activation carries it as the inner `thread_id`; replies name the message
they answer in `in_reply_to`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from protocol.canonical import MAX_SAFE_INT
from protocol.encoding import DECIMAL_PATTERN
from protocol.errors import Code
from protocol.ids import KeyId, MsgId, NodeId

__all__ = [
    "BATCH_FORMS",
    "BODY_MODELS",
    "BatchForm",
    "AckBody",
    "AckStatus",
    "ActivationAcceptBody",
    "ActivationCancelBody",
    "ActivationDeclineBody",
    "ActivationOfferBody",
    "ActivationRequestBody",
    "ActivationState",
    "ActivationStatusBody",
    "ActivationStatusesBody",
    "AuditAnchorBody",
    "ActivationUpdateBody",
    "AgencyRole",
    "AggregateReleaseBody",
    "BatchResponse",
    "BatchResult",
    "Bounds",
    "CancelReason",
    "Contact",
    "ContactNote",
    "DeclineReason",
    "Discipline",
    "FollowupHandoffBody",
    "IncidentType",
    "InnerMessage",
    "LocationCode",
    "Intervention",
    "Measure",
    "Mechanism",
    "MessageType",
    "OfferCondition",
    "OuterEnvelope",
    "Priority",
    "Release",
    "RosterRef",
    "SHA256_PATTERN",
    "SIGNATURE_PATTERN",
    "Signature",
    "Stage",
    "StatusCounts",
    "MAX_BATCHED_STATUSES",
    "MAX_STATUS_RESPONDERS",
    "WireModel",
    "wire_json",
]

# 32 bytes -> 43 chars whose last one carries 4 bits + 2 zero bits.
SHA256_PATTERN = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"
# 64 bytes -> 86 chars whose last one carries 2 bits + 4 zero bits.
SIGNATURE_PATTERN = r"^[A-Za-z0-9_-]{85}[AQgw]$"


class WireModel(BaseModel):
    """Base of every wire model: strict, frozen, exact field set, wire names only."""

    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="forbid",
        validate_by_name=False,
        validate_by_alias=True,
        serialize_by_alias=True,
        hide_input_in_errors=True,  # error text may reach logs; never echo sealed content
    )


def wire_json(model: BaseModel) -> dict[str, Any]:
    """Plain JSON values of a model (wire names), ready for `canonical_bytes`."""
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


# --- enumerations -------------------------------------------------------------------------


class MessageType(StrEnum):
    ACTIVATION_REQUEST = "activation_request"
    ACTIVATION_OFFER = "activation_offer"
    ACTIVATION_ACCEPT = "activation_accept"
    ACTIVATION_DECLINE = "activation_decline"
    ACTIVATION_UPDATE = "activation_update"
    ACTIVATION_CANCEL = "activation_cancel"
    FOLLOWUP_HANDOFF = "followup_handoff"
    ACK = "ack"
    ACTIVATION_STATUS = "activation_status"
    AGGREGATE_RELEASE = "aggregate_release"
    ACTIVATION_STATUSES = "activation_statuses"
    AUDIT_ANCHOR = "audit_anchor"


class Discipline(StrEnum):
    FIRE = "fire"
    EMS = "ems"
    DISPATCH_911 = "dispatch_911"
    LAW_ENFORCEMENT = "law_enforcement"
    CORRECTIONS = "corrections"
    OTHER = "other"


class Intervention(StrEnum):
    """CISM components (SAFER-R for one-on-one)."""

    ONE_ON_ONE = "one_on_one"
    DEFUSING = "defusing"
    DEBRIEFING = "debriefing"
    DEMOBILIZATION = "demobilization"
    FAMILY_SUPPORT = "family_support"
    FOLLOW_UP = "follow_up"


class IncidentType(StrEnum):
    LINE_OF_DUTY_DEATH = "line_of_duty_death"
    SERIOUS_INJURY = "serious_injury"
    MASS_CASUALTY = "mass_casualty"
    CHILD_FATALITY = "child_fatality"
    SUICIDE = "suicide"
    VIOLENT_INCIDENT = "violent_incident"
    DISASTER = "disaster"
    PROLONGED_INCIDENT = "prolonged_incident"
    OTHER = "other"


class Priority(StrEnum):
    """ICS-213RR priorities."""

    URGENT = "urgent"
    ROUTINE = "routine"
    LOW = "low"


class OfferCondition(StrEnum):
    LODGING_REQUIRED = "lodging_required"
    TRANSPORT_REQUIRED = "transport_required"
    MEALS_REQUIRED = "meals_required"
    VIRTUAL_ONLY = "virtual_only"
    DAYTIME_ONLY = "daytime_only"
    MAX_ONE_SHIFT = "max_one_shift"
    MAX_THREE_DAYS = "max_three_days"
    BRIEFING_REQUIRED = "briefing_required"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NO_MATCHING_DISCIPLINE = "no_matching_discipline"
    OUTSIDE_SERVICE_AREA = "outside_service_area"
    CONFLICT_OF_INTEREST = "conflict_of_interest"
    REQUEST_EXPIRED = "request_expired"
    POLICY = "policy"
    OTHER = "other"


class CancelReason(StrEnum):
    NO_LONGER_NEEDED = "no_longer_needed"
    RESOLVED_LOCALLY = "resolved_locally"
    REQUEST_FILLED = "request_filled"
    ENTERED_IN_ERROR = "entered_in_error"
    OTHER = "other"


class AgencyRole(StrEnum):
    """Who to call and who approved a request: a role, never a person's name."""

    COORDINATOR = "coordinator"
    TEAM_LEAD = "team_lead"
    CLINICIAN = "clinician"
    CHAPLAIN = "chaplain"
    DUTY_OFFICER = "duty_officer"
    SUPERVISOR = "supervisor"
    CHIEF = "chief"
    DEPUTY_CHIEF = "deputy_chief"
    EMERGENCY_MANAGER = "emergency_manager"


class Stage(StrEnum):
    MOBILIZED = "mobilized"
    ON_SCENE = "on_scene"
    DEMOBILIZED = "demobilized"


class ActivationState(StrEnum):
    DRAFT = "draft"
    REQUESTED = "requested"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    MOBILIZED = "mobilized"
    ON_SCENE = "on_scene"
    DEMOBILIZED = "demobilized"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class AckStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


class Measure(StrEnum):
    ZCDP = "zcdp"
    PURE_DP = "pure_dp"


class Mechanism(StrEnum):
    GAUSSIAN = "gaussian"
    LAPLACE = "laplace"


# --- field types --------------------------------------------------------------------------


class _WireEnum:
    """Enum field as a wire string: exactly `str` input (strict), matched exactly against
    the values (lax enum: a value, not an instance, is what parsed JSON holds). Both steps
    run in pydantic-core, with no Python call on the hot path."""

    def __init__(self, cls: type[StrEnum]) -> None:
        self._cls = cls
        self._schema = core_schema.chain_schema(
            [
                core_schema.str_schema(strict=True),
                core_schema.enum_schema(cls, list(cls), sub_type="str", strict=False),
            ]
        )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return self._schema

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": [member.value for member in self._cls]}


MessageTypeField = Annotated[MessageType, _WireEnum(MessageType)]
DisciplineField = Annotated[Discipline, _WireEnum(Discipline)]
InterventionField = Annotated[Intervention, _WireEnum(Intervention)]
IncidentTypeField = Annotated[IncidentType, _WireEnum(IncidentType)]
PriorityField = Annotated[Priority, _WireEnum(Priority)]
OfferConditionField = Annotated[OfferCondition, _WireEnum(OfferCondition)]
DeclineReasonField = Annotated[DeclineReason, _WireEnum(DeclineReason)]
CancelReasonField = Annotated[CancelReason, _WireEnum(CancelReason)]
StageField = Annotated[Stage, _WireEnum(Stage)]
AgencyRoleField = Annotated[AgencyRole, _WireEnum(AgencyRole)]
ActivationStateField = Annotated[ActivationState, _WireEnum(ActivationState)]
AckStatusField = Annotated[AckStatus, _WireEnum(AckStatus)]
MeasureField = Annotated[Measure, _WireEnum(Measure)]
MechanismField = Annotated[Mechanism, _WireEnum(Mechanism)]
CodeField = Annotated[Code, _WireEnum(Code)]

Version1 = Annotated[int, Field(ge=1, le=1)]
Ts = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
SafeInt = Annotated[int, Field(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]
Count = Annotated[int, Field(ge=0, le=100_000)]
PeerCount = Annotated[int, Field(ge=1, le=1_000)]
RosterVersion = Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
SignatureValue = Annotated[str, StringConstraints(pattern=SIGNATURE_PATTERN)]
B64uText = Annotated[str, StringConstraints(min_length=2, pattern=r"^[A-Za-z0-9_-]+$")]
DecimalStr = Annotated[str, StringConstraints(pattern=DECIMAL_PATTERN)]

_NO_CONTROL = r"^[^\x00-\x1F\x7F]+$"
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_NO_CONTROL)]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_CONTROL)]
Text280 = Annotated[str, StringConstraints(min_length=1, max_length=280, pattern=_NO_CONTROL)]
IncidentRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$")]
# A station, staging area or post as a code (no street addresses, no names).
LOCATION_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,15}$"
LocationCode = Annotated[str, StringConstraints(pattern=LOCATION_CODE_PATTERN)]
# Callback logistics only; no '@', quotes or line breaks leave little room for narrative.
CONTACT_NOTE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 .,:;/#()+-]{0,139}$"
ContactNote = Annotated[str, StringConstraints(pattern=CONTACT_NOTE_PATTERN)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ().x-]{2,31}$")]
DateStr = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
MonthStr = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
SchemaName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]{0,63}$")]
VersionStr = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$")]
CellKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:|=/-]{1,128}$")]

_MAX_CELLS = 4096


def _unique(items: list[Any]) -> list[Any]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


# --- envelope layers ----------------------------------------------------------------------


class Signature(WireModel):
    """`{"key_id": "ed25519:<v>", "value": "<b64u of 64 bytes>"}`."""

    key_id: KeyId
    value: SignatureValue


class RosterRef(WireModel):
    """The roster an envelope was built under: its version and the SHA-256 (b64u) of the
    canonical bytes of `roster` (without `signatures`)."""

    version: RosterVersion
    sha256: Sha256


class OuterEnvelope(WireModel):
    """What the hub can read. `sig` (context `outer`) covers the canonical bytes of the
    envelope without `sig`; `ct_sha256` is over the raw ciphertext bytes."""

    v: Version1
    msg_id: MsgId
    from_: NodeId = Field(alias="from")
    to: NodeId
    created_ts: Ts
    expires_ts: Ts
    roster: RosterRef
    ct: B64uText
    ct_sha256: Sha256
    sig: Signature


class InnerMessage(WireModel):
    """The sealed layer. Its signature (context `inner`) is not a field: it is the 64 bytes
    before the inner bytes in the plaintext. `body` holds plain JSON values; the typed body
    is validated separately against `BODY_MODELS[type]`."""

    v: Version1
    type: MessageTypeField
    msg_id: MsgId
    from_: NodeId = Field(alias="from")
    to: NodeId
    created_ts: Ts
    expires_ts: Ts
    thread_id: MsgId | None
    in_reply_to: MsgId | None
    roster_version: RosterVersion
    body: dict[str, Any]


# --- bodies -------------------------------------------------------------------------------


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

    _interventions_unique = field_validator("interventions")(_unique)

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

    _conditions_unique = field_validator("conditions")(_unique)

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


class AckBody(WireModel):
    """End-to-end acknowledgement of `msg_id`; `code` is set exactly when refused."""

    msg_id: MsgId
    status: AckStatusField
    code: CodeField | None

    @model_validator(mode="after")
    def _code(self) -> Self:
        if (self.status is AckStatus.REFUSED) != (self.code is not None):
            raise ValueError("code is required for refused and only for refused")
        return self


class StatusCounts(WireModel):
    affected: Count
    peers_needed: Count
    peers_offered: Count


MAX_STATUS_RESPONDERS = 500  # the most agencies one request may go to (`RequestIn.targets`)


class ActivationStatusBody(WireModel):
    """Metadata only, for the hub's central activation log.

    `responders` (absent unless set) lists the agencies a request went to, in the one
    status a requester sends when it submits (`responder` null, state `requested`): the log
    learns who was asked from one message instead of one per agency. Absent, the body has
    exactly the seven fields of the other statuses (and the same bytes)."""

    activation_id: MsgId
    requester: NodeId
    responder: NodeId | None
    state: ActivationStateField
    counts: StatusCounts
    incident_type: IncidentTypeField
    ts: Ts
    responders: list[NodeId] | None = Field(
        default=None, min_length=1, max_length=MAX_STATUS_RESPONDERS,
        exclude_if=lambda v: v is None,
    )

    @model_validator(mode="before")
    @classmethod
    def _no_null_responders(cls, data: Any) -> Any:
        if isinstance(data, dict) and "responders" in data and data["responders"] is None:
            raise ValueError("responders is omitted, never null")
        return data

    @model_validator(mode="after")
    def _responders(self) -> Self:
        if self.responders is None:
            return self
        if self.responder is not None or self.state is not ActivationState.REQUESTED:
            raise ValueError("responders goes only with responder null and state requested")
        if len(set(self.responders)) != len(self.responders):
            raise ValueError("responders must be unique")
        if self.requester in self.responders:
            raise ValueError("the requester is not its own responder")
        return self


MAX_BATCHED_STATUSES = 50


class ActivationStatusesBody(WireModel):
    """Several `activation_status` bodies in one message to the hub, each exactly as it would
    travel alone. The hub logs each as if it had come by itself; if any one is refused, the
    whole message is. Senders batch the reports of a burst (a fan-out's offers arriving)
    instead of sealing, relaying and acknowledging one message per leg."""

    statuses: list[ActivationStatusBody] = Field(min_length=1, max_length=MAX_BATCHED_STATUSES)


class Bounds(WireModel):
    per_person_month: Annotated[int, Field(ge=1, le=1_000)]
    per_cell: Annotated[int, Field(ge=1, le=1_000)]


class Release(WireModel):
    """One node-month of noisy counts. Signed (context `release`) over its canonical bytes,
    so the hub and the board can check the origin independently of the envelope."""

    release_id: MsgId
    node_id: NodeId
    month: MonthStr
    schema_: SchemaName = Field(alias="schema")
    query_sha256: Sha256
    measure: MeasureField
    mechanism: MechanismField
    scale: DecimalStr
    budget_spent: DecimalStr
    bounds: Bounds
    opendp_version: VersionStr
    cells: dict[CellKey, SafeInt] = Field(max_length=_MAX_CELLS)

    @model_validator(mode="after")
    def _pairing(self) -> Self:
        expected = Mechanism.GAUSSIAN if self.measure is Measure.ZCDP else Mechanism.LAPLACE
        if self.mechanism is not expected:
            raise ValueError("zcdp goes with gaussian, pure_dp with laplace")
        return self


class AggregateReleaseBody(WireModel):
    release: Release
    sig: Signature


class AuditAnchorBody(WireModel):
    """A node's signed audit head, for the hub to keep (`protocol.audit_head`): `sig`
    signs the head of the envelope's `from` at `seq`/`hash`/`signed_at`. No record content."""

    seq: Annotated[int, Field(ge=1, le=MAX_SAFE_INT)]
    hash: Sha256
    signed_at: Ts
    sig: Signature


BODY_MODELS: dict[MessageType, type[WireModel]] = {
    MessageType.ACTIVATION_REQUEST: ActivationRequestBody,
    MessageType.ACTIVATION_OFFER: ActivationOfferBody,
    MessageType.ACTIVATION_ACCEPT: ActivationAcceptBody,
    MessageType.ACTIVATION_DECLINE: ActivationDeclineBody,
    MessageType.ACTIVATION_UPDATE: ActivationUpdateBody,
    MessageType.ACTIVATION_CANCEL: ActivationCancelBody,
    MessageType.FOLLOWUP_HANDOFF: FollowupHandoffBody,
    MessageType.ACK: AckBody,
    MessageType.ACTIVATION_STATUS: ActivationStatusBody,
    MessageType.AGGREGATE_RELEASE: AggregateReleaseBody,
    MessageType.ACTIVATION_STATUSES: ActivationStatusesBody,
    MessageType.AUDIT_ANCHOR: AuditAnchorBody,
}

@dataclass(frozen=True)
class BatchForm:
    """How messages of one type to one destination may travel together as one message:
    its type, the body field holding the list, the most bodies per message, and which
    bodies may join (one the receiver would refuse must not take the others with it)."""

    batch_type: MessageType
    field: str
    most: int
    joins: Callable[[Mapping[str, Any], str], bool]


def _status_joins(body: Mapping[str, Any], sender: str) -> bool:
    # The hub refuses a report from a node that is not party to the activation.
    return sender in (body.get("requester"), body.get("responder"))


BATCH_FORMS: dict[MessageType, BatchForm] = {
    MessageType.ACTIVATION_STATUS: BatchForm(
        MessageType.ACTIVATION_STATUSES, "statuses", MAX_BATCHED_STATUSES, _status_joins
    ),
}


# --- batch response -----------------------------------------------------------------------


class BatchResult(WireModel):
    """Positional result for one envelope of a batch. `msg_id` is null when the envelope
    was too broken to read one; `code` is set exactly when refused."""

    msg_id: MsgId | None
    status: AckStatusField
    code: CodeField | None

    @model_validator(mode="after")
    def _code(self) -> Self:
        if (self.status is AckStatus.REFUSED) != (self.code is not None):
            raise ValueError("code is required for refused and only for refused")
        return self


class BatchResponse(WireModel):
    results: list[BatchResult]
