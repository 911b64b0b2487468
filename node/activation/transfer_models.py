"""API models of the consented follow-up transfer (issue 21): what a coordinator sends and
what the pages and the JSON API show. The contact note is the hand-off's `ContactNote`
(bounded, narrow alphabet); decline reasons are fixed choices; nothing else is free text."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from node.core.paging import NextCursor
from protocol.ids import NodeId
from protocol.transfer_bodies import TransferDeclineReason
from protocol.wire_types import ContactNote

__all__ = [
    "ConsentIn",
    "ConsentOut",
    "TransferAcceptIn",
    "TransferDeclineIn",
    "TransferIn",
    "TransferList",
    "TransferOut",
]

_IN = ConfigDict(extra="forbid", frozen=True)
DateField = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


class ConsentIn(BaseModel):
    """The responder agreed that this follow-up moves to `to`; recorded before sending."""

    model_config = _IN
    to: NodeId


class ConsentOut(BaseModel):
    id: str
    follow_up_id: str
    to: str
    asked_by: str
    consented_at: int


class TransferIn(BaseModel):
    """Send the follow-up to `to` (needs a recorded consent for that agency). `due`
    defaults to the follow-up's own due date."""

    model_config = _IN
    to: NodeId
    contact_note: ContactNote
    due: DateField | None = None


class TransferAcceptIn(BaseModel):
    model_config = _IN
    owner: uuid.UUID


class TransferDeclineIn(BaseModel):
    model_config = _IN
    reason: TransferDeclineReason


class TransferOut(BaseModel):
    id: str
    direction: str
    peer: str
    msg_id: str
    follow_up_id: str | None  # sending side only
    intervention: str
    discipline: str
    due: str
    consent_ts: int
    answer_by: int
    state: str
    reason: str | None
    owner: str | None  # receiving side, once accepted
    contact_note: str | None  # receiving coordinator only, while the hand-off is open
    created_at: int
    decided_at: int | None


class TransferList(BaseModel):
    items: list[TransferOut]
    next_cursor: NextCursor = None
