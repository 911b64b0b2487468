"""The statistics API's query and response models (pydantic), shared by the handlers, which
validate every request with `StatsQuery`, and the OpenAPI document (`hub.openapi`), so the
document describes what the server really accepts and returns.

Query strings are strict: a parameter the model does not name, a repeated parameter, or a
value outside its pattern is refused with 400 `invalid_input` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federation.field_errors import field_message
from hub.errors import Code, HubError
from hub.stats.estimates import DISCIPLINES

__all__ = [
    "ActivationLogQuery",
    "AggregateAlarmOut",
    "AggregateAlarmsOut",
    "AggregateAlarmsQuery",
    "Count",
    "Rate",
    "StatsDocument",
    "StatsQuery",
    "parse_query",
]

MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_DISC = "(" + "|".join(DISCIPLINES) + ")"
_NODE = r"[a-z0-9][a-z0-9-]{2,62}"


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatsQuery(_Query):
    month_from: Annotated[str | None, Field(
        pattern=MONTH, description="First month (YYYY-MM); default: 11 months before month_to",
        examples=["2026-01"])] = None
    month_to: Annotated[str | None, Field(
        pattern=MONTH, description="Last month (YYYY-MM); default: the last complete month",
        examples=["2026-04"])] = None
    region: Annotated[str | None, Field(
        min_length=1, max_length=64, description="Only nodes of this roster region",
        examples=["north"])] = None
    discipline: Annotated[str | None, Field(
        pattern=f"^{_DISC}(,{_DISC})*$",
        description="Comma-separated recipient disciplines; default: all",
        examples=["fire,ems"])] = None
    node: Annotated[str | None, Field(
        pattern=f"^{_NODE}(,{_NODE})*$",
        description="Comma-separated node ids (at most 50); default: all nodes",
        examples=["agency-1"])] = None


class ActivationLogQuery(_Query):
    limit: Annotated[int | None, Field(ge=1, le=1000, description="Default 200")] = None
    cursor: Annotated[str | None, Field(
        pattern=r"^[0-9]{1,18}$", description="Opaque: the previous page's `next_cursor`",
        examples=["200"])] = None
    since_ts: Annotated[int | None, Field(ge=0, le=2**53 - 1)] = None
    activation_id: Annotated[str | None, Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")] = None
    node: Annotated[str | None, Field(pattern=f"^{_NODE}$")] = None


Q = TypeVar("Q", bound=BaseModel)


def parse_query(query: Mapping[str, str], model: type[Q]) -> Q:
    """Validate a query string (a MultiDict) with `model`; HubError `invalid_input`."""
    data: dict[str, str] = {}
    getall = getattr(query, "getall", None)
    for key in query:
        values = list(getall(key)) if getall is not None else [query[key]]
        if len(values) > 1:
            raise HubError(Code.INVALID_INPUT, f"parameter {key} given twice", key)
        data[key] = values[0]
    try:
        return model.model_validate({k: v for k, v in data.items() if v != ""})
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        name, message = field_message(err)  # a sentence, never a pattern
        if err.get("type") == "extra_forbidden":
            raise HubError(Code.INVALID_INPUT, f"unknown parameter {name}", name) from None
        raise HubError(Code.INVALID_INPUT, message, name) from None


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountDisplay(_Out):
    estimate: int = Field(description="Rounded and clamped at zero, for display only")
    interval: tuple[int, int] = Field(description=(
        "The 95% interval moved above zero at its full width (never narrower than the "
        "noise allows) and rounded outward"))


class Count(_Out):
    """A noisy truncated count: the unbiased estimate, its 95% interval and standard error
    (from the exact variance of the combined estimate)."""

    estimate: float
    interval: tuple[float, float] = Field(description="95% interval (estimate +/- 1.96 se)")
    se: float
    display: CountDisplay


class RateDisplay(_Out):
    estimate: float = Field(description="Clamped to [0, 1] and rounded, for display only")
    interval: tuple[float, float] = Field(description=(
        "The 95% interval moved into [0, 1] at its full width (cut only where wider) and "
        "rounded outward"))


class Rate(_Out):
    """A ratio of two noisy counts; interval by the delta method."""

    estimate: float
    interval: tuple[float, float]
    se: float
    display: RateDisplay


_UNMEASURED = ("null when the releases in the period do not measure it for this selection "
               "(workload v2 releases do not cross it with discipline)")


class _Block(_Out):
    """Counts are truncated counts: each person counts at most `per_person_month` encounters
    a month (the policy's bound), so they can be below the number logged."""

    encounters: Count
    by_discipline: dict[str, Count]
    by_intervention: dict[str, Count]
    by_activation_type: dict[str, Count] | None = Field(description=_UNMEASURED)
    referrals: Count | None = Field(description=_UNMEASURED)
    referrals_by_target: dict[str, Count] | None = Field(description=_UNMEASURED)
    follow_ups_due: Count
    follow_ups_on_time: Count
    referral_rate: Rate | None = Field(
        description="null when encounters are not positive or referrals are not measured")
    follow_up_on_time_rate: Rate | None = Field(description="null when none are due")


class MonthStats(_Block):
    month: str = Field(pattern=MONTH)
    nodes_reporting: int = Field(ge=0)


class TotalStats(_Block):
    node_months: int = Field(ge=0)


class StatsFilterOut(_Out):
    month_from: str
    month_to: str
    region: str | None
    discipline: list[str]
    node: list[str]


class StatsDocument(_Out):
    """Estimates with 95% intervals per month and over the range, from releases received."""

    disciplines: list[str]
    months: list[MonthStats]
    total: TotalStats
    filter: StatsFilterOut


class AggregateAlarmOut(_Out):
    kind: str
    node_id: str
    month: str
    stored_release_id: str
    offered_release_id: str | None
    offered_body_sha256: str
    received_at: int


class AggregateAlarmsOut(_Out):
    alarms: list[AggregateAlarmOut]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null: no more pages")


class AggregateAlarmsQuery(_Query):
    limit: Annotated[int | None, Field(ge=1, le=1000, description="Default 200")] = None
    cursor: Annotated[str | None, Field(
        pattern=r"^[0-9]{1,18}$", description="Opaque: the previous page's `next_cursor`",
        examples=["200"])] = None
