"""Query and response models of the shared-aggregation operator routes (`rounds_feature`).

The handlers validate with these and the OpenAPI document (`hub.openapi`) is built from
them, so the document names exactly what `POST /api/v1/rounds/{month}` and
`GET /api/v1/shared-figures` accept and return. Kept apart from `hub.stats.models` (the
release statistics) because shared rounds are their own feature.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from hub.stats.models import MONTH

__all__ = ["RoundStartedOut", "SharedFigureOut", "SharedFiguresOut", "SharedFiguresQuery"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SharedFiguresQuery(_Model):
    month_from: Annotated[str | None, Field(
        pattern=MONTH, description="First month (YYYY-MM); default: the earliest",
        examples=["2026-01"])] = None
    month_to: Annotated[str | None, Field(
        pattern=MONTH, description="Last month (YYYY-MM); default: the latest",
        examples=["2026-04"])] = None


class RoundStartedOut(_Model):
    round_id: str | None = Field(description=(
        "The round started (sent to the policy's helper); null when a round of the month "
        "is open, nothing is left to aggregate, or aggregation is not shared"))


class SharedFigureOut(_Model):
    """One published region-month of a shared round: noisy sums only."""

    month: str
    region: str
    nodes: int = Field(description="How many agencies contributed")
    values: dict[str, int] = Field(description="Noisy sum per workload key")
    variances: dict[str, float] = Field(description=(
        "Variance of each published sum: the hub's noise plus the helper's"))


class SharedFiguresOut(_Model):
    figures: list[SharedFigureOut]
