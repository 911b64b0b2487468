"""Additive secret shares modulo 2^64: the arithmetic of shared aggregation (DESIGN 7.1 item 2).

A node holds its month's truncated (not noised) workload vector x of K integers. It draws r
uniformly from Z_{2^64}^K with a CSPRNG and sends `r` to the hub and `(x - r) mod 2^64` to the
helper. Either share alone is uniform on Z_{2^64}^K whatever x is (r is uniform, and x - r is
a bijection of r), so one aggregator learns nothing about x from its share. The sum of both
shares is x mod 2^64; read as a signed 64-bit integer it is x exactly while |x| < 2^63, which
truncated counts, their sums over every node of a network and integer noise all are.

Aggregators add shares (and their own integer noise) modulo 2^64; only the final combined
vector is read back as signed (`to_int64`).

On the wire a share is the unpadded base64url of K little-endian unsigned 64-bit integers
(integers above 2^53 cannot travel as JSON numbers, DESIGN section 4). `decode` checks the
length exactly against the expected K.

Pure: no I/O and no randomness of its own; the caller passes the random source (the node
passes `secrets.token_bytes`, a CSPRNG; tests pass fixed bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence

from protocol.encoding import b64u, unb64u
from protocol.errors import Code, ProtocolError

__all__ = [
    "MOD",
    "RandomBytes",
    "add",
    "combine",
    "decode",
    "encode",
    "split",
    "sub",
    "to_int64",
    "to_uint64",
    "zeros",
]

MOD = 1 << 64
_MASK = MOD - 1
_HALF = 1 << 63

RandomBytes = Callable[[int], bytes]


def to_uint64(values: Iterable[int]) -> list[int]:
    """Signed integers as their residues in [0, 2^64)."""
    return [v & _MASK for v in values]


def to_int64(values: Iterable[int]) -> list[int]:
    """Residues mod 2^64 read as signed 64-bit integers (two's complement)."""
    return [(v & _MASK) - MOD if v & _MASK >= _HALF else v & _MASK for v in values]


def zeros(k: int) -> list[int]:
    return [0] * k


def add(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Elementwise a + b mod 2^64 (same length required)."""
    if len(a) != len(b):
        raise ProtocolError(Code.BAD_BODY, "share lengths differ")
    return [(x + y) & _MASK for x, y in zip(a, b, strict=True)]


def sub(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Elementwise a - b mod 2^64."""
    if len(a) != len(b):
        raise ProtocolError(Code.BAD_BODY, "share lengths differ")
    return [(x - y) & _MASK for x, y in zip(a, b, strict=True)]


def split(x: Sequence[int], rand: RandomBytes) -> tuple[list[int], list[int]]:
    """(share_hub, share_helper) of `x`: r uniform, and (x - r) mod 2^64."""
    k = len(x)
    raw = rand(8 * k)
    if len(raw) != 8 * k:
        raise ValueError("random source returned the wrong number of bytes")
    r = list(struct.unpack(f"<{k}Q", raw))
    return r, sub(to_uint64(x), r)


def combine(*shares: Sequence[int]) -> list[int]:
    """Sum of shares mod 2^64, read as signed 64-bit integers."""
    if not shares:
        raise ValueError("nothing to combine")
    total = list(to_uint64(shares[0]))
    for s in shares[1:]:
        total = add(total, s)
    return to_int64(total)


def encode(values: Sequence[int]) -> str:
    """K residues as unpadded base64url of K little-endian uint64."""
    return b64u(struct.pack(f"<{len(values)}Q", *to_uint64(values)))


def decode(text: str, k: int) -> list[int]:
    """The K residues of a share on the wire; `bad_body` unless exactly 8K bytes of strict
    base64url."""
    try:
        raw = unb64u(text)
    except ProtocolError:
        raise ProtocolError(Code.BAD_BODY, "share is not strict base64url") from None
    if len(raw) != 8 * k:
        raise ProtocolError(Code.BAD_BODY, f"share must hold {k} uint64 values")
    return list(struct.unpack(f"<{k}Q", raw))
