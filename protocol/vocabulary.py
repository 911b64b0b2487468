"""The fixed choices messages carry: disciplines, interventions, incident types, reasons,
roles, stages, activation states and release measures, each with its wire field type.

Fixed lists keep narrative out of sealed bodies (DESIGN section 4): a body picks a value,
it never describes. On the wire each is its string value (`protocol.wire_types.WireEnum`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from protocol.wire_types import WireEnum

__all__ = [
    "ActivationState",
    "ActivationStateField",
    "AgencyRole",
    "AgencyRoleField",
    "CancelReason",
    "CancelReasonField",
    "DeclineReason",
    "DeclineReasonField",
    "Discipline",
    "DisciplineField",
    "IncidentType",
    "IncidentTypeField",
    "Intervention",
    "InterventionField",
    "Measure",
    "MeasureField",
    "Mechanism",
    "MechanismField",
    "OfferCondition",
    "OfferConditionField",
    "Priority",
    "PriorityField",
    "Stage",
    "StageField",
]


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


class Measure(StrEnum):
    ZCDP = "zcdp"
    PURE_DP = "pure_dp"


class Mechanism(StrEnum):
    GAUSSIAN = "gaussian"
    LAPLACE = "laplace"


# --- field types --------------------------------------------------------------------------

DisciplineField = Annotated[Discipline, WireEnum(Discipline)]
InterventionField = Annotated[Intervention, WireEnum(Intervention)]
IncidentTypeField = Annotated[IncidentType, WireEnum(IncidentType)]
PriorityField = Annotated[Priority, WireEnum(Priority)]
OfferConditionField = Annotated[OfferCondition, WireEnum(OfferCondition)]
DeclineReasonField = Annotated[DeclineReason, WireEnum(DeclineReason)]
CancelReasonField = Annotated[CancelReason, WireEnum(CancelReason)]
StageField = Annotated[Stage, WireEnum(Stage)]
AgencyRoleField = Annotated[AgencyRole, WireEnum(AgencyRole)]
ActivationStateField = Annotated[ActivationState, WireEnum(ActivationState)]
MeasureField = Annotated[Measure, WireEnum(Measure)]
MechanismField = Annotated[Mechanism, WireEnum(Mechanism)]
