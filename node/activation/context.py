"""What the activation services need from the running node, as one small object.

The services are plain async functions over a database connection (or session) and an
`ActivationContext`: the node's id, the clock, the roster directory, the federation `send`
function and the hub that keeps the central activation log. Nothing here imports the web
app, so the services run the same under the API, the pages, the CLI, the inbound
federation handlers and the benchmark.

`send` writes the outbox row in the caller's transaction (DESIGN section 4: the business
row and the outbox row commit together) and returns the new message's `msg_id`; `send_many`,
when given, queues a fan-out's messages with one insert.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from federation.clock import Clock
from node.activation.interstate import InterstateDirectory
from protocol.ids import new_ulid
from protocol.messages import MessageType

__all__ = [
    "ActivationContext",
    "Db",
    "dialect_of",
    "Directory",
    "DirectoryEntry",
    "ManySender",
    "Message",
    "Sender",
    "Stager",
    "derive_note_key",
]

Db = AsyncConnection | AsyncSession


def dialect_of(db: Db) -> str:
    """"sqlite" or "postgresql": the engine under a connection or a session."""
    if isinstance(db, AsyncConnection):
        return str(db.dialect.name)
    return str(db.get_bind().dialect.name)


class Sender(Protocol):
    async def __call__(
        self,
        session: Any,
        to: str,
        msg_type: MessageType,
        body: dict[str, Any],
        thread_id: str | None = None,
        in_reply_to: str | None = None,
    ) -> str: ...


# One message for `ManySender`: `(to, type, body, thread_id)`, or with `in_reply_to` last.
Message = (tuple[str, MessageType, dict[str, Any], str | None]
           | tuple[str, MessageType, dict[str, Any], str | None, str | None])


class ManySender(Protocol):
    """Several messages (`Message`) queued at once (one outbox insert); the msg_ids in
    order."""

    async def __call__(self, session: Any, messages: Sequence[Message]) -> list[str]: ...


class Stager(Protocol):
    """The outbox rows of several messages (`Message`), envelopes built, for the caller to
    insert in `session`'s transaction itself (the worker is woken at its commit)."""

    def __call__(self, session: Any, messages: Sequence[Message]) -> list[dict[str, Any]]: ...


class DirectoryEntry(Protocol):
    @property
    def node_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def disciplines(self) -> Sequence[Any]: ...
    @property
    def is_hub(self) -> bool: ...


class Directory(Protocol):
    """The part of the roster the activation services read (`federation.roster_state`)."""

    def nodes(
        self, *, discipline: str | None = None, region: str | None = None, role: Any = None
    ) -> Sequence[DirectoryEntry]: ...

    def has_node(self, node_id: str) -> bool: ...

    def may_request(self, requester: str, responder: str) -> bool: ...

    def hubs(self) -> Sequence[DirectoryEntry]: ...


def derive_note_key(enc_private_key: bytes) -> bytes:
    """The node-held SecretBox key for hand-off notes at rest.

    Derived (keyed BLAKE2b, own domain) from the node's X25519 private key, which lives only
    in the passphrase-sealed key file and survives signing-key rotation; the database alone
    never holds what opens a note.
    """
    return hashlib.blake2b(
        b"peernet/v1/handoff-note-key", key=enc_private_key, digest_size=32
    ).digest()


@dataclass
class ActivationContext:
    node_id: str
    clock: Clock
    directory: Directory
    send: Sender
    note_key: bytes
    hub_id: str | None = None  # where activation_status goes; None: no central log
    send_many: ManySender | None = None  # a fan-out in one insert; None: `send` each
    stage_many: Stager | None = None  # outbox rows to insert oneself (node.activation.batched)
    # Interstate (node.activation.interstate): this node's network id and the agencies of
    # the other member networks; None: no agency of another network can be asked.
    network_id: str | None = None
    interstate: InterstateDirectory | None = None
    _rand: Any = field(default=os.urandom, repr=False)

    def hub(self) -> str | None:
        """The hub that keeps the central activation log: the configured one, else the
        first hub of the roster, else none (then nothing is reported)."""
        if self.hub_id is not None:
            return self.hub_id
        hubs = self.directory.hubs()
        return hubs[0].node_id if hubs else None

    def now(self) -> int:
        return self.clock.now_ms()

    def new_id(self) -> str:
        return new_ulid(self.clock.now_ms(), self._rand(10))
