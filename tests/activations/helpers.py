"""Fixture factories for activation tests: a directory, a recording sender, requests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.clock import FakeClock
from federation.database import make_engine, migrate
from node.activation.context import ActivationContext
from node.activation.models import RequestIn
from node.core.db import Database, User, import_table_modules, table_of
from node.core.vocabulary import Role
from protocol.ids import new_ulid
from protocol.messages import MessageType

T0 = 1_780_000_000_000
HOUR = 3_600_000


@dataclass(frozen=True)
class Entry:
    node_id: str
    name: str
    region: str
    disciplines: tuple[str, ...]
    is_hub: bool = False


@dataclass
class Directory:
    entries: list[Entry]
    forbidden: set[tuple[str, str]] = field(default_factory=set)

    def nodes(self, *, discipline: str | None = None, region: str | None = None,
              role: Any = None) -> list[Entry]:
        out = []
        for e in self.entries:
            if discipline and discipline not in e.disciplines:
                continue
            if region and e.region != region:
                continue
            if role == "agency" and e.is_hub:
                continue
            out.append(e)
        return out

    def hubs(self) -> list[Entry]:
        return [e for e in self.entries if e.is_hub]

    def has_node(self, node_id: str) -> bool:
        return any(e.node_id == node_id for e in self.entries)

    def may_request(self, requester: str, responder: str) -> bool:
        return (
            self.has_node(requester) and self.has_node(responder)
            and (requester, responder) not in self.forbidden
        )


def directory() -> Directory:
    return Directory([
        Entry("agency-a", "Agency A Fire", "north", ("fire", "ems")),
        Entry("agency-b", "Agency B EMS", "north", ("ems",)),
        Entry("agency-c", "Agency C Police", "south", ("law_enforcement",)),
        Entry("agency-d", "Agency D Corrections", "south", ("corrections",)),
        Entry("hub-one", "Hub", "north", (), is_hub=True),
    ])


@dataclass
class Sent:
    to: str
    msg_type: MessageType
    body: dict[str, Any]
    thread_id: str | None
    in_reply_to: str | None
    msg_id: str


@dataclass
class Recorder:
    clock: FakeClock
    sent: list[Sent] = field(default_factory=list)
    n: int = 0

    async def __call__(self, session: Any, to: str, msg_type: MessageType,
                       body: dict[str, Any], thread_id: str | None = None,
                       in_reply_to: str | None = None) -> str:
        self.n += 1
        msg_id = new_ulid(self.clock.now_ms(), self.n.to_bytes(10, "big"))
        self.sent.append(Sent(to, msg_type, body, thread_id, in_reply_to, msg_id))
        return msg_id

    def of(self, msg_type: MessageType, to: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.msg_type is msg_type and (to is None or s.to == to)]


def make_ctx(node_id: str = "agency-a", clock: FakeClock | None = None,
             hub_id: str | None = "hub-one") -> tuple[ActivationContext, Recorder]:
    clock = clock or FakeClock(T0)
    rec = Recorder(clock)
    ctx = ActivationContext(node_id=node_id, clock=clock, directory=directory(), send=rec,
                            note_key=b"k" * 32, hub_id=hub_id)
    return ctx, rec


@asynccontextmanager
async def node_db(url: str) -> AsyncIterator[Database]:
    import_table_modules()
    engine = make_engine(url)
    await migrate(engine, "node:migrations")
    db = Database(engine)
    try:
        yield db
    finally:
        await db.dispose()


async def add_user(
    conn: AsyncConnection, username: str, role: Role = Role.COORDINATOR
) -> uuid.UUID:
    uid = uuid.uuid4()
    await conn.execute(insert(table_of(User)).values(
        id=uid, username=username, password_hash="x", role=role.value, team="main",
        active=True, created_at=T0, updated_at=T0,
    ))
    return uid


def request_in(targets: list[str], *, draft: bool = False, **over: Any) -> RequestIn:
    data: dict[str, Any] = {
        "incident_ref": "INC-2026-0042",
        "incident_type": "line_of_duty_death",
        "event_ts": T0 - 2 * HOUR,
        "affected": {"fire": 40, "ems": 12},
        "interventions": ["defusing", "one_on_one"],
        "window_start_ts": T0,
        "window_end_ts": T0 + 6 * HOUR,
        "peers_needed": 6,
        "reporting_location": "STA-7",
        "priority": "urgent",
        "contact": {"role": "coordinator", "phone": "+1 555 0100"},
        "approver": "deputy_chief",
        "expires_ts": T0 + 4 * HOUR,
        "targets": targets,
        "draft": draft,
    }
    data.update(over)
    return RequestIn.model_validate(data)
