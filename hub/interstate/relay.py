"""`InterstateRelay`: the store-and-forward relay (`hub.relay.forwarding.Relay`) with the
`v: 2` envelope added; one queue, one backoff, one dedupe for both forms.

A hub of network N queues a `v: 2` envelope (checked with
`protocol.envelope_interstate_check.check_interstate_outer`, keys of N's own nodes from N's
roster and of other networks' nodes from their rosters verified against the compact):

- **outbound**: from one of N's own nodes (the per-hop signer is in N's roster) to a node of
  another member network M: queued under the destination `M/<node>` and delivered, sealed as
  received, to the hub the *current* compact names for M (`PUT /fed/v1/send`, this hub's
  per-hop signature, which M's hub checks against the hub keys the compact lists);
- **inbound**: from M's hub (the per-hop signer must be the hub the compact names for the
  envelope's `from_network`) to one of N's own nodes: queued under the bare node id and
  delivered like any envelope within N (one addressed to the hub itself never reaches the
  relay: `hub.app.HubReceiver` hands it to the hub's inbox).

Anything else (neither end in N, a relay by someone other than the sender network's hub) is
`wrong_recipient` / `unknown_sender`; the compact's own refusals (`unknown_network`,
`network_not_in_compact`, `foreign_roster_invalid`) travel in the batch results. Nothing is
stored on a refusal. The dedupe key is the qualified sender `<network>/<node>` and the
msg id. A valid request from M's hub makes its network's queue due at once (it is up).
A `v: 1` envelope is accepted from N's own roster members only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from federation.interstate_runtime import Interstate
from hub.relay.forwarding import Relay, relay_queue
from protocol.canonical import canonical_bytes_of_parsed
from protocol.envelope_interstate_check import check_interstate_outer
from protocol.errors import Code, ProtocolError

__all__ = ["InterstateRelay"]


class InterstateRelay(Relay):
    """See module docstring; `interstate()` is the federation service's runtime or None."""

    def __init__(self, *, interstate: Callable[[], Interstate | None], **kw: Any) -> None:
        super().__init__(**kw)
        self.interstate = interstate

    def _foreign_hub(self, origin: str) -> str | None:
        """The network whose hub `origin` is, when it is not a member of our own roster."""
        ist = self.interstate()
        if ist is None or self.roster.state.has_node(origin):
            return None
        try:
            return ist.compact.member_of_hub(origin).network_id
        except ProtocolError:
            return None

    def check(self, origin: str, item: dict[str, Any], now: int) -> tuple[str, str, str, int]:
        ist = self.interstate()
        if item.get("v") != 2:
            if ist is not None and not self.roster.state.has_node(origin):
                raise ProtocolError(Code.WRONG_RECIPIENT, "another network's hub relays v: 2 only")
            return super().check(origin, item, now)
        if ist is None:
            raise ProtocolError(Code.UNKNOWN_NETWORK, "this hub relays within its network only")
        outer = check_interstate_outer(
            canonical_bytes_of_parsed(item), resolver=ist.keys, now_ms=now
        )
        state = self.roster.state
        if outer.to_network == ist.network_id:
            if ist.compact.check_network(outer.from_network).hub_id != origin:
                raise ProtocolError(Code.UNKNOWN_SENDER, "not relayed by its network's hub")
            if outer.to == self.me or not state.has_node(outer.to):
                raise ProtocolError(Code.WRONG_RECIPIENT, "destination is not routable")
            return outer.to, outer.sender, outer.msg_id, outer.expires_ts
        if outer.from_network == ist.network_id and state.has_node(origin):
            return outer.recipient, outer.sender, outer.msg_id, outer.expires_ts
        raise ProtocolError(Code.WRONG_RECIPIENT, "neither end of the envelope is this network")

    def route(self, dest: str) -> tuple[str, str]:
        ist = self.interstate()
        if "/" in dest and ist is not None:
            return ist.member_route(dest.split("/", 1)[0])
        return super().route(dest)

    async def _reset(self, conn: Any, origin: str, now: int) -> None:
        await super()._reset(conn, origin, now)
        network = self._foreign_hub(origin)
        if network is not None:
            await conn.execute(
                update(relay_queue)
                .where(
                    relay_queue.c.destination.like(f"{network}/%"),
                    relay_queue.c.next_attempt_ts > now,
                    relay_queue.c.attempts > 0,
                )
                .values(next_attempt_ts=now)
            )
