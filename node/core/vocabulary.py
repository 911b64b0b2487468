"""The fixed vocabularies of the node (DESIGN sections 2 and 3).

Every value a person can choose on an encounter is one of these enums, so nothing stored can
carry free text about a person. Values are stored and sent as their lower-case strings and
are never renamed (the privacy engineer's release cells and old rows depend on them).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ActivationType",
    "DisclosureCategory",
    "DurationBucket",
    "FollowUpStatus",
    "Intervention",
    "RecipientCategory",
    "RecipientDiscipline",
    "Referral",
    "Role",
    "Topic",
]


class Role(StrEnum):
    PEER_SUPPORTER = "peer_supporter"  # own encounters, assigned follow-ups
    COORDINATOR = "coordinator"  # the team's records, assignments, activations, disclosures
    ADMIN = "admin"  # users, keys, config, retention; no encounter detail
    AUDITOR = "auditor"  # audit log, aggregate views


class DurationBucket(StrEnum):
    UNDER_15M = "<15m"
    M15_30 = "15-30m"
    M30_60 = "30-60m"
    H1_2 = "1-2h"
    OVER_2H = ">2h"


class ActivationType(StrEnum):
    SELF = "self"
    SUPERVISOR = "supervisor"
    POST_CRITICAL_INCIDENT = "post_critical_incident"
    PEER_OUTREACH = "peer_outreach"
    INTERAGENCY = "interagency"


class Intervention(StrEnum):
    ONE_ON_ONE = "one_on_one"
    DEFUSING = "defusing"
    DEBRIEFING = "debriefing"
    DEMOBILIZATION = "demobilization"
    FAMILY_SUPPORT = "family_support"
    FOLLOW_UP = "follow_up"


class RecipientDiscipline(StrEnum):
    FIRE = "fire"
    EMS = "ems"
    DISPATCH_911 = "dispatch_911"
    LAW_ENFORCEMENT = "law_enforcement"
    CORRECTIONS = "corrections"
    OTHER = "other"


class RecipientCategory(StrEnum):
    OWN_AGENCY = "own_agency"
    OTHER_AGENCY = "other_agency"
    FAMILY = "family"
    OTHER_STAFF = "other_staff"


class Topic(StrEnum):
    WORK_STRESS = "work_stress"
    CRITICAL_INCIDENT = "critical_incident"
    FAMILY = "family"
    FINANCES = "finances"
    HEALTH = "health"
    SUBSTANCE_USE = "substance_use"
    GRIEF = "grief"
    OTHER = "other"
    UNDISCLOSED = "undisclosed"


class Referral(StrEnum):
    EAP = "eap"
    CLINICIAN = "clinician"
    CHAPLAIN = "chaplain"
    CRISIS_LINE = "crisis_line"
    OTHER = "other"


class FollowUpStatus(StrEnum):
    """`none` (no follow-up) and `overdue` (open and past due against the clock) are computed;
    only `open`, `done`, `handed_off` and `transferred` (another member agency accepted it by
    consented transfer, issue 21) are stored."""

    NONE = "none"
    OPEN = "open"
    DONE = "done"
    OVERDUE = "overdue"
    HANDED_OFF = "handed_off"
    TRANSFERRED = "transferred"


class DisclosureCategory(StrEnum):
    """Legal exceptions to confidentiality (DESIGN section 2)."""

    IMMINENT_HARM = "imminent_harm"
    MANDATED_REPORT = "mandated_report"
    COURT_ORDER = "court_order"
    CONSENT = "consent"
