"""API models of notifications (strict: unknown fields are refused, as everywhere)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from node.core.paging import Cursor, NextCursor
from node.notify.kinds import DeliveryState, NotifyChannel, NotifyKind

__all__ = ["DeliveryList", "DeliveryOut", "EndpointIn", "EndpointList", "EndpointOut",
           "ListQuery", "PrefsIn", "PrefsOut", "RetryOut", "StateQuery"]

_STRICT = ConfigDict(extra="forbid")
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class PrefsIn(BaseModel):
    model_config = _STRICT
    email: str | None = Field(default=None, max_length=254)
    channels: list[NotifyChannel] = Field(default_factory=list, max_length=2)
    webhook_url: str | None = Field(default=None, max_length=400)
    digest: bool = False
    quiet_start: str | None = Field(default=None, pattern=HHMM)
    quiet_end: str | None = Field(default=None, pattern=HHMM)
    urgent_in_quiet: bool = False


class PrefsOut(BaseModel):
    email: str | None
    channels: list[NotifyChannel]
    webhook_url: str | None
    webhook_secret_set: bool
    webhook_secret: str | None = Field(
        default=None, description="Only in the answer that created it: keep it now.")
    digest: bool
    quiet_start: str | None
    quiet_end: str | None
    urgent_in_quiet: bool


class EndpointIn(BaseModel):
    model_config = _STRICT
    label: str = Field(min_length=1, max_length=60)
    channel: NotifyChannel
    target: str = Field(min_length=3, max_length=400, description="mail address or URL")
    kinds: list[NotifyKind] = Field(min_length=1, max_length=len(NotifyKind))


class EndpointOut(BaseModel):
    id: str
    label: str
    channel: NotifyChannel
    target: str
    kinds: list[NotifyKind]
    active: bool
    created_at: int
    secret: str | None = Field(
        default=None, description="Only in the answer that created it: keep it now.")


class EndpointList(BaseModel):
    items: list[EndpointOut]
    next_cursor: NextCursor = None


class DeliveryOut(BaseModel):
    id: str
    kind: NotifyKind
    recipient: str = Field(description="a username or an endpoint label")
    channel: NotifyChannel
    state: DeliveryState
    attempts: int
    next_at: int
    held: str | None
    last_error: str | None
    created_at: int
    sent_at: int | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    next_cursor: NextCursor = None


class ListQuery(BaseModel):
    model_config = _STRICT
    limit: int = Field(default=100, ge=1, le=200)
    cursor: Cursor = None


class StateQuery(ListQuery):
    state: DeliveryState | None = None


class RetryOut(BaseModel):
    id: str
    state: DeliveryState
    next_at: int
