"""Interstate activation (issue 19 item 4, DESIGN section 11): asking agencies of another
member network of the compact, with the same lifecycle as at home.

Names. Inside its own network an agency keeps its bare node id; an agency of another
network is named by its qualified name `<network>/<node_id>` (`protocol.ids`), and that is
the peer id stored in every activation table (`requester`, `responder`, `peer`, `actor_node`:
up to `PEER_NAME_MAX` = 31 + 1 + 63 = 95 characters, migration
`activation_interstate_0001`). A qualified name of this node's own network is the bare id
(`normalize`). The wire bodies keep bare ids (`requesting_agency` is the sender's node id
within its network; the envelope's `from_network` says which network), so an inbound
request from `tx/agency-a` must name `agency-a` (`agency_of`).

Who may be asked. The home roster's activation rules speak only of home agencies; an
agency of another network may be asked when the other network is a member of the current
compact and its verified roster (held through the compact, `federation.foreign_rosters`)
lists it as an agency (`InterstateDirectory`). Received requests from another network are
taken when the federation layer accepted the v2 envelope (it checked the compact, that
network's roster and the sender's key): the home roster has no rule for them.

Approval: `node.activation.approval`. Both hubs log the thread: the requester reports to
its hub as at home, and on an interstate thread the responder also reports its leg to its
own hub (`writes.report_message`); each hub stores the names qualified.

Transport: `FederationService.send(conn, "<network>/<node>", ...)` (v2 envelopes relayed
hub to hub) is the federation layer's; this room only hands it qualified names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from pydantic import StringConstraints

from protocol.ids import NETWORK_ID_PATTERN, NODE_ID_PATTERN, is_node_id

__all__ = [
    "PEER_NAME_MAX",
    "PEER_NAME_PATTERN",
    "ForeignAgency",
    "InterstateDirectory",
    "PeerName",
    "agency_of",
    "is_peer_name",
    "is_qualified",
    "network_of",
    "normalize",
]

PEER_NAME_MAX = 95
PEER_NAME_PATTERN = rf"^(?:{NETWORK_ID_PATTERN}/)?{NODE_ID_PATTERN[1:-1]}$"
_PEER_NAME = re.compile(PEER_NAME_PATTERN[1:-1])

# A bare node id, or `<network>/<node_id>`: an activation's peer as the API takes it.
PeerName = Annotated[
    str, StringConstraints(strict=True, max_length=PEER_NAME_MAX, pattern=PEER_NAME_PATTERN)
]


def is_qualified(name: str) -> bool:
    return "/" in name


def network_of(name: str) -> str | None:
    """The network of a qualified name; None for a bare (home) id."""
    return name.split("/", 1)[0] if is_qualified(name) else None


def agency_of(name: str) -> str:
    """The node id within its network (what wire bodies carry)."""
    return name.rsplit("/", 1)[-1]


def normalize(name: str, home_network: str | None) -> str:
    """A home agency named qualified becomes its bare id; anything else stays."""
    if home_network is not None and network_of(name) == home_network:
        return agency_of(name)
    return name


def is_peer_name(value: object) -> bool:
    return isinstance(value, str) and (
        is_node_id(value) or _PEER_NAME.fullmatch(value) is not None
    )


class ForeignAgency(Protocol):
    @property
    def node_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def disciplines(self) -> Sequence[Any]: ...


class InterstateDirectory(Protocol):
    """Agencies of other member networks, as their verified rosters list them."""

    def networks(self) -> Sequence[str]: ...

    def agencies(
        self, network_id: str, *, discipline: str | None = None, region: str | None = None
    ) -> Sequence[ForeignAgency]: ...

    def has_agency(self, network_id: str, node_id: str) -> bool: ...
