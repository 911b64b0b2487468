"""The board's side of a node leaving: `peernet board accept-leave --dir D --request FILE`.

A node that leaves (`peernet node detach`) writes a leave request signed with a key the
roster lists for it (`protocol.leave_request`). The board checks it against its newest
signed roster (the node must be listed there, the key id must be one of its signing keys,
current or old, and the signature must verify under it) and then edits the draft of the
next version: the node's entry is removed and each of its signing keys is revoked with the
reason "left the network" (so nothing signed with them is accepted again, whatever its
timestamp). The key holders then sign and combine the draft as for any other change; the
node's entry stays in the older versions, which is the record that it was a member.

Refusals (`FederationError`): a file that is not a leave request (`bad_input`), a node the
roster does not list (`not_found`), a key the roster does not list for it or a signature
that does not verify (`bad_input`); nothing is written on any of them.
"""

from __future__ import annotations

from federation.board import BoardDir
from federation.errors import FedCode, FederationError
from federation.roster import Roster
from protocol.encoding import unb64u
from protocol.errors import ProtocolError
from protocol.leave_request import parse_leave_request, verify_leave_request

__all__ = ["LEAVE_REASON", "accept_leave"]

LEAVE_REASON = "left the network"


def accept_leave(board: BoardDir, data: bytes, now_ms: int) -> tuple[str, Roster]:
    """Check the request and edit the draft (module docstring); the node id and the draft."""
    try:
        doc = parse_leave_request(data)
    except ProtocolError:
        raise FederationError(FedCode.BAD_INPUT, "the file is not a peernet leave request") \
            from None
    node_id = str(doc["request"]["node_id"])
    latest = board.latest()
    entry = latest.roster.node(node_id) if latest is not None else None
    if entry is None:
        raise FederationError(FedCode.NOT_FOUND, f"{node_id} is not in the newest signed roster")
    keys = {**entry.old_sign_keys, **entry.sign_keys}
    listed = keys.get(doc["sig"]["key_id"])
    if listed is None:
        raise FederationError(FedCode.BAD_INPUT, f"the request is signed with a key the roster "
                              f"does not list for {node_id}")
    try:
        verify_leave_request(doc, unb64u(listed.key))
    except ProtocolError:
        raise FederationError(FedCode.BAD_INPUT, f"the leave request's signature does not "
                              f"verify under {node_id}'s key") from None
    draft = board.draft(now_ms)
    if draft.node(node_id) is not None:
        draft = board.remove_node(node_id, now_ms)
    revoked = {r.key for r in draft.revoked}
    for sk in keys.values():
        if sk.key not in revoked:
            draft = board.revoke(sk.key, LEAVE_REASON, now_ms)
    return node_id, draft
