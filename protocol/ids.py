"""Identifiers of the wire format: node ids, message ids (ULID) and key ids.

- `NodeId`: `[a-z0-9][a-z0-9-]{2,62}` (3 to 63 characters, DNS-label-like).
- `MsgId`: a ULID, 26 upper-case Crockford base32 characters (`0-9A-Z` without `I L O U`),
  the first one `0`-`7` because a ULID is 128 bits. 48 bits of millisecond time then 80
  random bits. This package has no clock and no randomness: `new_ulid` takes both.
- `KeyId`: `ed25519:<version>`, the version a decimal integer without leading zeros
  (`0` itself is allowed), at most 2^53 - 1.

The `Annotated` types validate in pydantic models (strict: only `str` is accepted); the
`check_*` functions validate plain values and raise `ProtocolError(malformed)`.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

from protocol.errors import Code, ProtocolError

__all__ = [
    "CROCKFORD",
    "KEY_ID_PATTERN",
    "MSG_ID_PATTERN",
    "NETWORK_ID_PATTERN",
    "NODE_ID_PATTERN",
    "QUALIFIED_NAME_PATTERN",
    "KeyId",
    "MsgId",
    "NetworkId",
    "NodeId",
    "check_key_id",
    "check_msg_id",
    "check_network_id",
    "check_node_id",
    "is_key_id",
    "is_msg_id",
    "is_network_id",
    "is_node_id",
    "key_id",
    "key_version",
    "new_ulid",
    "parse_qualified",
    "qualified_name",
    "ulid_ms",
]

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MAX_VERSION = 2**53 - 1

NODE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,62}$"
MSG_ID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
KEY_ID_PATTERN = r"^ed25519:(0|[1-9][0-9]{0,15})$"
# Interstate (WIRE section 16): a network ("state") id, and a node named across networks as
# `<network>/<node_id>`. Unanchored as INTERSTATE.md fixes it; always used with fullmatch.
NETWORK_ID_PATTERN = r"[a-z][a-z0-9-]{1,30}"
QUALIFIED_NAME_PATTERN = NETWORK_ID_PATTERN + "/" + NODE_ID_PATTERN[1:-1]

# Python's `$` also matches before a final newline: always use fullmatch on the bare form.
_NODE_ID = re.compile(NODE_ID_PATTERN[1:-1])
_MSG_ID = re.compile(MSG_ID_PATTERN[1:-1])
_KEY_ID = re.compile(KEY_ID_PATTERN[1:-1])
_NETWORK_ID = re.compile(NETWORK_ID_PATTERN)

NodeId = Annotated[str, StringConstraints(strict=True, pattern=NODE_ID_PATTERN)]
MsgId = Annotated[str, StringConstraints(strict=True, pattern=MSG_ID_PATTERN)]
KeyId = Annotated[str, StringConstraints(strict=True, pattern=KEY_ID_PATTERN)]
NetworkId = Annotated[str, StringConstraints(strict=True, pattern=f"^{NETWORK_ID_PATTERN}$")]


def is_node_id(value: object) -> bool:
    return isinstance(value, str) and _NODE_ID.fullmatch(value) is not None


def is_msg_id(value: object) -> bool:
    return isinstance(value, str) and _MSG_ID.fullmatch(value) is not None


def is_key_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and _KEY_ID.fullmatch(value) is not None
        and int(value[8:]) <= _MAX_VERSION
    )


def is_network_id(value: object) -> bool:
    return isinstance(value, str) and _NETWORK_ID.fullmatch(value) is not None


def check_network_id(value: object) -> str:
    if not is_network_id(value):
        raise ProtocolError(Code.MALFORMED, "invalid network id")
    return value  # type: ignore[return-value]


def qualified_name(network_id: str, node_id: str) -> str:
    """`<network>/<node_id>`, the name of a node across networks (e.g. `tx/austin-fire`)."""
    return f"{check_network_id(network_id)}/{check_node_id(node_id)}"


def parse_qualified(name: object) -> tuple[str, str]:
    """(network id, node id) of a qualified name; `malformed` for anything else."""
    if not isinstance(name, str) or name.count("/") != 1:
        raise ProtocolError(Code.MALFORMED, "a qualified name is <network>/<node_id>")
    network_id, node_id = name.split("/")
    return check_network_id(network_id), check_node_id(node_id)


def check_node_id(value: object) -> str:
    if not is_node_id(value):
        raise ProtocolError(Code.MALFORMED, "invalid node id")
    return value  # type: ignore[return-value]  # is_node_id proved it is a str


def check_msg_id(value: object) -> str:
    if not is_msg_id(value):
        raise ProtocolError(Code.MALFORMED, "invalid msg id")
    return value  # type: ignore[return-value]


def check_key_id(value: object) -> str:
    if not is_key_id(value):
        raise ProtocolError(Code.MALFORMED, "invalid key id")
    return value  # type: ignore[return-value]


def new_ulid(ts_ms: int, rand: bytes) -> str:
    """ULID from a millisecond timestamp (0 <= ts_ms < 2^48) and 10 random bytes."""
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or not 0 <= ts_ms < 2**48:
        raise ProtocolError(Code.MALFORMED, "ULID time must be an int in [0, 2^48)")
    if not isinstance(rand, bytes | bytearray) or len(rand) != 10:
        raise ProtocolError(Code.MALFORMED, "ULID needs exactly 10 random bytes")
    n = (ts_ms << 80) | int.from_bytes(rand, "big")
    return "".join(CROCKFORD[(n >> shift) & 31] for shift in range(125, -1, -5))


def ulid_ms(msg_id: str) -> int:
    """The millisecond timestamp in a ULID."""
    check_msg_id(msg_id)
    n = 0
    for ch in msg_id[:10]:
        n = (n << 5) | CROCKFORD.index(ch)
    return n


def key_id(version: int) -> str:
    """`ed25519:<version>`."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProtocolError(Code.MALFORMED, "key version must be an int")
    if not 0 <= version <= _MAX_VERSION:
        raise ProtocolError(Code.MALFORMED, "key version out of range")
    return f"ed25519:{version}"


def key_version(key_id: str) -> int:
    """Inverse of `key_id`; `malformed` for anything else."""
    check_key_id(key_id)
    return int(key_id[8:])
