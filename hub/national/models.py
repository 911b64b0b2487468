"""Query and response models of the national routes (validated by the handlers, described
in the hub's OpenAPI document by `hub.openapi`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from hub.stats.models import MONTH

__all__ = ["NationalDocument", "NationalQuery", "RefreshOut", "StateStatsQuery"]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NationalQuery(_Query):
    month_from: Annotated[str | None, Field(
        pattern=MONTH, description="First month (YYYY-MM); default: 11 months before month_to",
        examples=["2026-01"])] = None
    month_to: Annotated[str | None, Field(
        pattern=MONTH, description="Last month (YYYY-MM); default: the last complete month",
        examples=["2026-12"])] = None


class StateStatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    month_from: Annotated[str, Field(alias="from", pattern=MONTH)]
    month_to: Annotated[str, Field(alias="to", pattern=MONTH)]


class NationalMonth(BaseModel):
    month: str
    states_reporting: list[str]
    states_missing: list[str]
    nodes_reporting: int
    encounters: dict[str, Any] | None
    by_discipline: dict[str, Any] | None
    by_intervention: dict[str, Any] | None
    by_activation_type: dict[str, Any] | None
    referrals: dict[str, Any] | None
    referrals_by_target: dict[str, Any] | None
    follow_ups_due: dict[str, Any] | None
    follow_ups_on_time: dict[str, Any] | None
    referral_rate: dict[str, Any] | None
    follow_up_on_time_rate: dict[str, Any] | None


class NationalDocument(BaseModel):
    """The national sum of the member states' published figures, per month and over the
    range, with the states that reported and did not (post-processing: no budget spent)."""

    own_network: str
    networks: list[str]
    filter: dict[str, str]
    months: list[NationalMonth]
    total: dict[str, Any]


class RefreshOutcome(BaseModel):
    network_id: str
    status: str = Field(description="stored, refused or unreachable")
    code: str | None = Field(description="The stable refusal or transport code")
    months_stored: int


class RefreshOut(BaseModel):
    peers: list[RefreshOutcome]
