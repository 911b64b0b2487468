"""Bodies a node sends the hub: activation status reports (one or batched), aggregate
releases of noisy counts, and audit anchors. Metadata and noisy counts only: the hub never
sees a record.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, StringConstraints, model_validator

from protocol.canonical import MAX_SAFE_INT
from protocol.ids import NETWORK_ID_PATTERN, NODE_ID_PATTERN, MsgId, NodeId
from protocol.vocabulary import (
    ActivationState,
    ActivationStateField,
    IncidentTypeField,
    Measure,
    MeasureField,
    Mechanism,
    MechanismField,
)
from protocol.wire_types import (
    CellKey,
    Count,
    DecimalStr,
    MonthStr,
    SafeInt,
    SchemaName,
    Sha256,
    Signature,
    Ts,
    VersionStr,
    WireModel,
)
from protocol.workload import SCHEMA as WORKLOAD_SCHEMA

__all__ = [
    "MAX_BATCHED_STATUSES",
    "MAX_STATUS_RESPONDERS",
    "ActivationStatusBody",
    "ActivationStatusesBody",
    "AggregateReleaseBody",
    "AuditAnchorBody",
    "Bounds",
    "GroupNoise",
    "Release",
    "StatusCounts",
]

_MAX_CELLS = 4096
_MAX_GROUPS = 64
GroupName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class StatusCounts(WireModel):
    affected: Count
    peers_needed: Count
    peers_offered: Count


MAX_STATUS_RESPONDERS = 500  # the most agencies one request may go to (`RequestIn.targets`)


# A party of an activation: a node id, or on an interstate thread (WIRE section 16) an
# agency of another network by its qualified name `<network>/<node_id>`.
PartyName = Annotated[str, StringConstraints(
    strict=True, pattern=rf"^(?:{NETWORK_ID_PATTERN}/)?{NODE_ID_PATTERN[1:-1]}$")]


class ActivationStatusBody(WireModel):
    """Metadata only, for the hub's central activation log.

    `responders` (absent unless set) lists the agencies a request went to, in the one
    status a requester sends when it submits (`responder` null, state `requested`): the log
    learns who was asked from one message instead of one per agency. Absent, the body has
    exactly the seven fields of the other statuses (and the same bytes)."""

    activation_id: MsgId
    requester: PartyName
    responder: PartyName | None
    state: ActivationStateField
    counts: StatusCounts
    incident_type: IncidentTypeField
    ts: Ts
    responders: list[PartyName] | None = Field(
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


class GroupNoise(WireModel):
    """One workload group's noise in a v2 release: its scale and the budget it spent."""

    scale: DecimalStr
    budget_spent: DecimalStr


class Release(WireModel):
    """One node-month of noisy counts. Signed (context `release`) over its canonical bytes,
    so the hub and the board can check the origin independently of the envelope.

    Two schemas (docs/WIRE.md): v1 (`peernet.monthly/v1`) carries one `scale` for all
    cells; v2 (`peernet.workload/v2`, `protocol.workload`) carries instead `groups`
    ({group: {scale, budget_spent}}) and `budget_spent` is then the sum of the groups'
    spends. Exactly one of `scale` and `groups` is present (absent, never null), so v1
    bodies keep their exact bytes."""

    release_id: MsgId
    node_id: NodeId
    month: MonthStr
    schema_: SchemaName = Field(alias="schema")
    query_sha256: Sha256
    measure: MeasureField
    mechanism: MechanismField
    scale: DecimalStr | None = Field(default=None, exclude_if=lambda v: v is None)
    groups: dict[GroupName, GroupNoise] | None = Field(
        default=None, min_length=1, max_length=_MAX_GROUPS, exclude_if=lambda v: v is None,
    )
    budget_spent: DecimalStr
    bounds: Bounds
    opendp_version: VersionStr
    cells: dict[CellKey, SafeInt] = Field(max_length=_MAX_CELLS)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and (
            ("scale" in data and data["scale"] is None)
            or ("groups" in data and data["groups"] is None)
        ):
            raise ValueError("scale and groups are omitted, never null")
        return data

    @model_validator(mode="after")
    def _pairing(self) -> Self:
        expected = Mechanism.GAUSSIAN if self.measure is Measure.ZCDP else Mechanism.LAPLACE
        if self.mechanism is not expected:
            raise ValueError("zcdp goes with gaussian, pure_dp with laplace")
        if self.schema_ == WORKLOAD_SCHEMA:
            if self.groups is None or self.scale is not None:
                raise ValueError("a workload release has groups and no single scale")
        elif self.scale is None or self.groups is not None:
            raise ValueError("a cell release has one scale and no groups")
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

