"""Bodies of shared aggregation (DESIGN 7.1 item 2): shares, rounds and results.

- `aggregate_share` (node -> hub, and node -> helper relayed by the hub, which cannot open it):
  one additive share (`protocol.shares`) of the node's truncated, un-noised workload vector
  for `month`, `WORKLOAD_KEYS` order, as base64url of K little-endian uint64. The sender is
  the envelope's `from` (its inner signature covers it); `bounds` and `measure` say which
  truncation and policy the vector was built under, so an aggregator can refuse a share that
  does not match the roster policy.
- `aggregate_round` (hub -> helper): the signed contributor set of one round: per group (a
  region) the sorted node ids whose shares both aggregators sum. The envelope signature is
  the hub's signature over it.
- `aggregate_result` (helper -> hub): per group either the helper's noised share-sum or the
  nodes whose share it does not hold (`missing`), with `set_sha256` naming the contributor
  set answered (SHA-256 of the canonical bytes of the round's `groups`) and the noise scale
  of each workload group.

Lengths are checked against the workload here (a share of the wrong length is `bad_body`);
the schema must be `protocol.workload.SCHEMA`.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from protocol.errors import ProtocolError
from protocol.hub_bodies import Bounds
from protocol.ids import MsgId, NodeId
from protocol.shares import decode as decode_share
from protocol.vocabulary import MeasureField
from protocol.wire_types import B64uText, DecimalStr, MonthStr, SchemaName, Sha256, WireModel
from protocol.workload import GROUP_NAMES, SCHEMA, WORKLOAD_KEYS

__all__ = [
    "MAX_ROUND_NODES",
    "AggregateResultBody",
    "AggregateRoundBody",
    "AggregateShareBody",
    "GroupMissing",
    "GroupSum",
]

MAX_ROUND_NODES = 10_000  # as many as a roster may list
_MAX_GROUPS = 256
# A group is a region (`federation.roster` Region grammar).
GroupId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


def _share_text(value: str) -> str:
    try:
        decode_share(value, len(WORKLOAD_KEYS))
    except ProtocolError as exc:
        raise ValueError(exc.detail) from None
    return value


ShareText = Annotated[B64uText, AfterValidator(_share_text)]


def _schema(value: str) -> str:
    if value != SCHEMA:
        raise ValueError(f"schema must be {SCHEMA}")
    return value


WorkloadSchema = Annotated[SchemaName, AfterValidator(_schema)]


def _sorted_unique(ids: list[str]) -> list[str]:
    if ids != sorted(set(ids)):
        raise ValueError("node ids must be sorted and unique")
    return ids


NodeSet = Annotated[
    list[NodeId], Field(min_length=1, max_length=MAX_ROUND_NODES), AfterValidator(_sorted_unique)
]


class AggregateShareBody(WireModel):
    month: MonthStr
    schema_: WorkloadSchema = Field(alias="schema")
    share: ShareText
    bounds: Bounds
    measure: MeasureField


class AggregateRoundBody(WireModel):
    round_id: MsgId
    month: MonthStr
    schema_: WorkloadSchema = Field(alias="schema")
    groups: dict[GroupId, NodeSet] = Field(min_length=1, max_length=_MAX_GROUPS)

    @model_validator(mode="after")
    def _disjoint(self) -> Self:
        seen: set[str] = set()
        total = 0
        for ids in self.groups.values():
            total += len(ids)
            seen.update(ids)
        if len(seen) != total:
            raise ValueError("a node is in at most one group")
        if total > MAX_ROUND_NODES:
            raise ValueError("too many nodes in one round")
        return self


class GroupSum(WireModel):
    sum: ShareText


class GroupMissing(WireModel):
    missing: NodeSet


class AggregateResultBody(WireModel):
    round_id: MsgId
    set_sha256: Sha256
    results: dict[GroupId, GroupSum | GroupMissing] = Field(min_length=1, max_length=_MAX_GROUPS)
    scales: dict[str, DecimalStr]

    @model_validator(mode="after")
    def _scales(self) -> Self:
        if set(self.scales) != set(GROUP_NAMES):
            raise ValueError("scales names every workload group once")
        return self
