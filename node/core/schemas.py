"""Request and response models of the node's JSON API (and of its forms).

Requests are strict (`extra="forbid"`): a field the model does not have is refused with
`unknown_field`, so no free text about a person can ride along in a body. The only free-form
strings a person types are bounded and shaped:

- `recipient`: what identifies the person to the supporter (e.g. an employee number). It is
  turned into `recipient_ref` (`node.core.pseudonym`) and dropped; it is never stored or echoed.
- `incident_ref`: an incident or call number: letters, digits and `. _ : / # -`, no spaces,
  at most 40 characters (a sentence cannot fit the pattern).

Times travel as RFC 3339 date-times (UTC on output), calendar days as `YYYY-MM-DD`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from node.core.paging import Cursor, NextCursor
from node.core.vocabulary import (
    ActivationType,
    DisclosureCategory,
    DurationBucket,
    FollowUpStatus,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Referral,
    Role,
    Topic,
)

__all__ = [
    "AmendmentOut",
    "AuditEntryOut",
    "AuditPage",
    "AuditQuery",
    "AuditVerifyOut",
    "CompleteIn",
    "DisclosureIn",
    "DisclosureList",
    "DisclosureOut",
    "DisclosureQuery",
    "EncounterIn",
    "EncounterList",
    "EncounterOut",
    "EncounterQuery",
    "FollowUpList",
    "FollowUpOut",
    "FollowUpQuery",
    "MeOut",
    "MonthReport",
    "PurgeIn",
    "PurgeOut",
    "ReassignIn",
    "ReportOut",
    "ReportQuery",
    "TokenIn",
    "TokenOut",
    "UserIn",
    "UserList",
    "UserOut",
    "UserPatch",
    "UserQuery",
]

INCIDENT_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,39}$"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,39}$"
TEAM_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$"

IncidentRef = Annotated[str, StringConstraints(pattern=INCIDENT_REF_PATTERN)]
_PRINTABLE = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"
RecipientInput = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Team = Annotated[str, StringConstraints(pattern=TEAM_PATTERN)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=200)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- encounters -------------------------------------------------------------------------

class EncounterIn(Request):
    occurred_at: AwareDatetime
    duration_bucket: DurationBucket
    incident_ref: IncidentRef | None = None
    activation_type: ActivationType
    intervention: Intervention
    recipient_discipline: RecipientDiscipline
    recipient_category: RecipientCategory
    recipient: RecipientInput = Field(
        description="What identifies the person to you (e.g. employee number). Turned into "
        "recipient_ref on this node and never stored."
    )
    topics: set[Topic] = Field(default_factory=set, max_length=len(Topic))
    referral: Referral | None = None
    follow_up_due: date | None = None
    follow_up_owner: uuid.UUID | None = Field(
        default=None, description="User who owns the follow-up (default: you)"
    )
    notice_given: bool
    supporter_was_witness: bool = False


class AmendmentOut(Response):
    """One audited correction of an encounter (`node.records.amendments`)."""

    id: uuid.UUID
    amended_by: uuid.UUID
    amended_by_username: str
    amended_at: datetime
    fields: list[str] = Field(description="The fields the amendment changed")


class EncounterOut(Response):
    """Exactly the fields of DESIGN section 2."""

    id: uuid.UUID
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime
    occurred_at: datetime
    duration_bucket: DurationBucket
    incident_ref: str | None
    activation_type: ActivationType
    intervention: Intervention
    recipient_discipline: RecipientDiscipline
    recipient_category: RecipientCategory
    recipient_ref: str
    topics: list[Topic]
    referral: Referral | None
    follow_up_due: date | None
    follow_up_owner: uuid.UUID | None
    follow_up_status: FollowUpStatus
    notice_given: bool
    supporter_was_witness: bool
    amendments: list[AmendmentOut] | None = Field(
        default=None, description="One encounter's read: its amendment history, oldest "
        "first (who, when, which fields); null in lists")


class EncounterQuery(Request):
    scope: Literal["mine", "team"] = "mine"
    limit: int = Field(default=50, ge=1, le=200)
    since: date | None = Field(default=None, description="Occurred on or after this day "
                               "(node time zone)")
    until: date | None = Field(default=None, description="Occurred on or before this day "
                               "(node time zone)")
    status: FollowUpStatus | None = Field(default=None, description="Follow-up status "
                                          "(overdue: open and past due)")
    discipline: RecipientDiscipline | None = Field(default=None,
                                                   description="Recipient discipline")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Use `cursor`",
                        json_schema_extra={"deprecated": True})
    cursor: Cursor = None


class EncounterList(Response):
    items: list[EncounterOut]
    next_cursor: NextCursor = None
    total: int | None = Field(default=None, description="Encounters matching the filters")


# --- follow-ups -------------------------------------------------------------------------

class FollowUpOut(Response):
    id: uuid.UUID
    encounter_id: uuid.UUID
    owner: uuid.UUID
    owner_username: str
    due: date
    status: FollowUpStatus
    occurred_at: datetime
    intervention: Intervention
    recipient_discipline: RecipientDiscipline
    incident_ref: str | None
    completed_at: datetime | None


class FollowUpQuery(Request):
    scope: Literal["mine", "team"] = "mine"
    due_only: bool = False
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None
    since: date | None = Field(default=None, description="Due on or after this day")
    until: date | None = Field(default=None, description="Due on or before this day")
    status: FollowUpStatus | None = Field(default=None, description="Status (overdue: "
                                          "open and past due; open: not yet overdue)")
    discipline: RecipientDiscipline | None = Field(default=None,
                                                   description="Recipient discipline")


class FollowUpList(Response):
    items: list[FollowUpOut]
    next_cursor: NextCursor = None
    total: int | None = Field(default=None, description="Follow-ups matching the filters")


class ReassignIn(Request):
    owner: uuid.UUID
    due: date | None = None


class CompleteIn(Request):
    outcome: Literal["done", "handed_off"] = "done"


# --- users and tokens -------------------------------------------------------------------

class MeOut(Response):
    id: uuid.UUID
    username: str
    role: Role
    team: str


class UserIn(Request):
    username: Username
    password: Password
    role: Role
    team: Team = "main"


class UserPatch(Request):
    role: Role | None = None
    team: Team | None = None
    active: bool | None = None
    password: Password | None = None


class UserOut(Response):
    id: uuid.UUID
    username: str
    role: Role
    team: str
    active: bool
    created_at: datetime


class UserQuery(Request):
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None
    role: Role | None = Field(default=None, description="Only users with this role")
    active: bool | None = Field(default=None, description="Only active (or inactive) users")
    q: Annotated[str, StringConstraints(pattern=r"^[a-z0-9._-]{1,40}$")] | None = Field(
        default=None, description="Part of the username")


class UserList(Response):
    items: list[UserOut]
    next_cursor: NextCursor = None
    total: int | None = Field(default=None, description="Users matching the filters")


class TokenIn(Request):
    label: Annotated[str, StringConstraints(pattern=LABEL_PATTERN)] = "cli"
    expires_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(Response):
    id: uuid.UUID
    label: str
    token: str = Field(description="Shown once; only its SHA-256 is stored")
    expires_at: datetime | None


# --- disclosures ------------------------------------------------------------------------

class DisclosureIn(Request):
    category: DisclosureCategory
    occurred_on: date
    notice_given: bool


class DisclosureOut(Response):
    id: uuid.UUID
    category: DisclosureCategory
    occurred_on: date
    notice_given: bool
    team: str
    created_by: uuid.UUID
    created_at: datetime


class DisclosureQuery(Request):
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None


class DisclosureList(Response):
    items: list[DisclosureOut]
    next_cursor: NextCursor = None


# --- audit, retention, report -----------------------------------------------------------

class AuditQuery(Request):
    # A BIGINT column (both engines): a larger cursor is refused (422), not a server error.
    after_seq: int = Field(default=0, ge=0, le=2**63 - 1,
                           description="Entries after this seq (the same as `cursor`)")
    limit: int = Field(default=100, ge=1, le=500)
    cursor: Cursor = None


class AuditEntryOut(Response):
    seq: int
    ts: datetime
    actor: str | None
    role: str | None
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Response):
    items: list[AuditEntryOut]
    next_cursor: NextCursor = None


class AuditVerifyOut(Response):
    ok: bool
    entries: int
    head_seq: int
    signed_seq: int | None
    first_broken: int | None
    problem: str | None
    message: str


class PurgeIn(Request):
    days: int | None = Field(default=None, ge=1, le=36500)


class PurgeOut(Response):
    purged: int
    days: int


class ReportQuery(Request):
    months: int = Field(default=12, ge=1, le=36)


class FollowUpCounts(Response):
    total: int
    done: int
    done_on_time: int
    handed_off: int
    open: int
    overdue: int


class MonthReport(Response):
    month: str
    encounters: int
    by_intervention: dict[Intervention, int]
    by_discipline: dict[RecipientDiscipline, int]
    by_referral: dict[str, int]
    follow_ups: FollowUpCounts


class ReportOut(Response):
    """Aggregates only: counts, never a record row."""

    months: list[MonthReport]
    totals: MonthReport
