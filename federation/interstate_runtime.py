"""One server's interstate runtime: its compact, the foreign rosters, building and opening
`v: 2` envelopes (WIRE section 16).

`FederationService` makes one when the server knows its network id and pins its board
(`network_id` + the roster board pin: the board that signs this network's roster signs its
compacts too). It holds:

- `store` (`CompactStore`, its `state` is the `CompactState` the relay and hub.national use)
  and `foreign` (`ForeignRosters`, other networks' rosters verified against the compact);
- `keys` (`NetworkKeys`): the resolver of interstate envelopes, own network by the own roster;
- `build(...)`: the `v: 2` envelope to a qualified name `<network>/<node>` (the recipient's
  encryption key from its network's verified roster);
- `open(item, ...)`: a `v: 2` envelope addressed to this node opened and presented as a
  `protocol.envelope.Opened` whose `outer.from_` and `inner.from_` are the *qualified*
  sender: handlers, the inbox's dedupe key `(from, msg_id)` and its acks all use that name,
  so a reply or an ack goes back across the line by the same `send`;
- `refresh_from_hub` (a node: the compact and the foreign rosters from its own hub's routes,
  each verified here against the node's own pinned board and the compact: the hub is not
  trusted for them) and `refresh_from_members` (a hub: newer compacts and each member's
  roster from the hub endpoint the compact names).

`foreign_roster_document` / `FOREIGN_ROSTER_PATH` serve a hub's held foreign rosters to its
own nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import nacl.public
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.clock import Clock
from federation.compact_acceptance import CompactPin
from federation.compact_state import CompactState
from federation.compact_store import CompactStore
from federation.errors import FederationError
from federation.foreign_rosters import ForeignRosters
from federation.interstate_fetch import MAX_DOCUMENT_BYTES, fetch_compact, fetch_foreign_roster
from federation.interstate_keys import NetworkKeys
from federation.interstate_tables import foreign_rosters
from federation.roster_sync import RosterStore
from federation.transport import read_bounded
from protocol.canonical import canonical_bytes_of_parsed
from protocol.envelope import Opened, Sender
from protocol.envelope_interstate import build_interstate_envelope
from protocol.envelope_interstate_check import open_interstate_envelope
from protocol.errors import Code, ProtocolError
from protocol.ids import is_network_id, parse_qualified
from protocol.messages import InnerMessage, MessageType, OuterEnvelope, RosterRef
from protocol.wire_types import Signature

__all__ = ["FOREIGN_ROSTER_PATH", "Interstate", "foreign_roster_document"]

log = logging.getLogger("peernet.federation.interstate")

FOREIGN_ROSTER_PATH = "/fed/v1/foreign-roster/{network_id}"
_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5, sock_read=5)


async def foreign_roster_document(
    engine: AsyncEngine, network_id: str, have_sha256: str | None = None
) -> bytes | None:
    """The newest held roster of `network_id` (as stored); None when none is held; `b""`
    when it is the one whose hash the requester names (`have_sha256`: not modified)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(foreign_rosters.c.document, foreign_rosters.c.sha256)
                .where(foreign_rosters.c.network_id == network_id)
                .order_by(foreign_rosters.c.version.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        return None
    return b"" if have_sha256 is not None and row.sha256 == have_sha256 else bytes(row.document)


class Interstate:
    """See module docstring."""

    def __init__(
        self,
        *,
        network_id: str,
        engine: AsyncEngine,
        write: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        clock: Clock,
        pin: CompactPin,
        roster: RosterStore,
    ) -> None:
        self.network_id = network_id
        self.clock = clock
        self.store = CompactStore(engine, clock, pin, write)
        self.foreign = ForeignRosters(engine, clock, self.store.state, write)
        self.keys = NetworkKeys(network_id, roster.state, self.foreign)
        self.roster = roster

    @property
    def compact(self) -> CompactState:
        return self.store.state

    async def load(self) -> None:
        await self.store.load()
        await self.foreign.load()

    def local_name(self, dest: str) -> str | None:
        """The bare node id when `dest` names a node of this network (bare or qualified),
        else None (another network's node)."""
        if "/" not in dest:
            return dest
        network, node = parse_qualified(dest)
        return node if network == self.network_id else None

    # --- envelopes ----------------------------------------------------------------------

    def build(
        self,
        *,
        sender: Sender,
        dest: str,
        msg_type: MessageType,
        body: BaseModel | Mapping[str, Any],
        msg_id: str,
        created_ts: int,
        expires_ts: int,
        roster: RosterRef,
        thread_id: str | None = None,
        in_reply_to: str | None = None,
    ) -> bytes:
        """The `v: 2` envelope from this server's `sender` to the qualified name `dest`.
        Raises `ProtocolError` (unknown_network, network_not_in_compact,
        foreign_roster_invalid, ...) or `FederationError` (unknown_node)."""
        network, node = parse_qualified(dest)
        recipient = self.foreign.roster_of(network)  # checks membership and the roster
        return build_interstate_envelope(
            sender=sender, from_network=self.network_id, to_network=network, to=node,
            recipient_enc_key=recipient.enc_key(node), msg_type=msg_type, body=body,
            msg_id=msg_id, created_ts=created_ts, expires_ts=expires_ts, roster=roster,
            thread_id=thread_id, in_reply_to=in_reply_to,
        )

    def open(
        self, item: Mapping[str, Any], *, me: str, enc_key: nacl.public.PrivateKey, now_ms: int
    ) -> Opened:
        """Open a `v: 2` envelope addressed to `<network_id>/<me>` (see module docstring)."""
        got = open_interstate_envelope(
            canonical_bytes_of_parsed(dict(item)), me_network=self.network_id, me=me,
            enc_key=enc_key, resolver=self.keys, now_ms=now_ms,
        )
        o = got.outer
        sender = o.sender
        inner = InnerMessage.model_construct(
            v=2, type=got.msg_type, msg_id=o.msg_id, from_=sender, to=me,
            created_ts=o.created_ts, expires_ts=o.expires_ts,
            thread_id=got.inner["thread_id"], in_reply_to=got.inner["in_reply_to"],
            roster_version=o.roster.version, body=got.body_json,
        )
        sig = item.get("sig") or {}
        outer = OuterEnvelope.model_construct(
            v=2, msg_id=o.msg_id, from_=sender, to=me, created_ts=o.created_ts,
            expires_ts=o.expires_ts, roster=o.roster, ct=o.ct, ct_sha256=o.ct_sha256,
            sig=Signature.model_construct(key_id=o.key_id, value=str(sig.get("value", ""))),
        )
        return Opened(outer, inner, got.body, got.inner_bytes, got.body_json)

    # --- learning the compact and the foreign rosters -------------------------------------

    def others(self) -> list[str]:
        cur = self.compact.current
        if cur is None:
            return []
        return [m.network_id for m in cur.members() if m.network_id != self.network_id]

    async def refresh_from_hub(self, http: aiohttp.ClientSession, hub_url: str,
                               source: str = "hub") -> None:
        """A node: newer compacts and every member's roster from its own hub's routes,
        verified here (see module docstring). Failures are logged per document."""
        try:
            await fetch_compact(http, hub_url, self.store, source)
        except (FederationError, ProtocolError) as exc:
            log.warning("compact refresh from %s failed: %s", source, exc.code)
        for network in self.others():
            url = hub_url.rstrip("/") + FOREIGN_ROSTER_PATH.format(network_id=network)
            held = self.foreign._states.get(network)  # noqa: SLF001 - the hash held, if any
            if held is not None and held.current is not None:
                url += f"?have_sha256={held.current.sha256}"  # unchanged: 304, no body
            try:
                async with http.get(url, timeout=_TIMEOUT, allow_redirects=False) as resp:
                    if resp.status != 200:
                        continue
                    data = await read_bounded(resp, MAX_DOCUMENT_BYTES)
                if data is None:
                    raise ProtocolError(Code.FOREIGN_ROSTER_INVALID, "roster too large")
                await self.foreign.accept_document(network, data, source)
            except (aiohttp.ClientError, TimeoutError, OSError):
                log.warning("roster of %s from %s: unreachable", network, source)
            except (FederationError, ProtocolError) as exc:
                log.warning("roster of %s from %s refused: %s", network, source, exc.code)

    async def refresh_from_members(self, http: aiohttp.ClientSession,
                                   only: str | None = None) -> None:
        """A hub: newer compacts from the member hubs, then each member's roster from the
        hub the current compact names for it (`only`: one network)."""
        cur = self.compact.current
        for m in [] if cur is None else cur.members():
            if m.network_id == self.network_id or (only and m.network_id != only):
                continue
            try:
                await fetch_compact(http, m.endpoint, self.store, m.hub_id)
            except (FederationError, ProtocolError) as exc:
                log.info("compact from %s not taken: %s", m.hub_id, exc.code)
        for network in self.others():
            if only and network != only:
                continue
            try:
                await fetch_foreign_roster(http, self.foreign, network)
            except (FederationError, ProtocolError) as exc:
                log.warning("roster of %s not taken: %s", network, exc.code)

    def member_route(self, network_id: str) -> tuple[str, str]:
        """(endpoint, hub id) of the hub the current compact names for `network_id`;
        `FederationError` with the wire code when it is not a current member."""
        if not is_network_id(network_id):
            raise FederationError(Code.UNKNOWN_NETWORK.value, "not a network id")
        try:
            member = self.compact.check_network(network_id)
        except ProtocolError as exc:
            raise FederationError(exc.code.value, exc.detail or exc.code.value) from None
        return member.endpoint, member.hub_id
