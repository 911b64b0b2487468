"""UUIDs for record ids, drawn from the OS's CSPRNG in blocks: random ones (version 4) and
time-ordered ones (version 7) for the rows a node writes most.

`uuid.uuid4()` makes one `getrandom` system call per id, and CPython releases the GIL
around it. On a node writing encounters, the database driver's thread is usually
runnable at that moment, so the event loop then waits for the GIL to come back: under
16 concurrent writers `uuid4` was 9 % of the loop thread's time (py-spy; one call costs
about 0.3 us alone). Here one call to `os.urandom` serves `_BLOCK // 16` ids. The bytes are
the same CSPRNG output `uuid4` uses; only the reading is batched.

`new_record_id` (RFC 9562 version 7: 48 bits of Unix milliseconds, 12 bits of the
sub-millisecond fraction, 62 random bits) is for the ids of records written at a high rate
(encounters, follow-ups, amendments, disclosures): a random id puts each new row's primary
key entry on a random B-tree page, so every commit dirties one more page per index that
holds the id. Time-ordered ids land next to each other: on SQLite the group commit's WAL
per encounter fell from 27.5 to 16 us of the driver thread (bench.node_api), and PostgreSQL
writes fewer full-page images. The time bits come from the real clock, not the node's
injected clock: they order index entries and mean nothing else (a frozen test clock would
give every id the same prefix). They tell the millisecond a record was created, which its
`created_at` holds anyway; these ids never leave the node (the hub and other agencies see
none of them).

Safe across `fork` (the child drops the parent's unread block, so two processes never hand
out the same id) and across threads (a lock around the cursor).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["new_record_id", "new_uuid"]

_BLOCK = 4096
_lock = threading.Lock()
_buf = b""
_pos = 0


def _reset() -> None:
    global _buf, _pos
    _buf, _pos = b"", 0


os.register_at_fork(after_in_child=_reset)


def _random(n: int) -> bytes:
    global _buf, _pos
    with _lock:
        if _pos + n > len(_buf):
            _buf, _pos = os.urandom(_BLOCK), 0
        raw = _buf[_pos:_pos + n]
        _pos += n
    return raw


def new_uuid() -> uuid.UUID:
    """A random UUID (RFC 9562 version 4), as `uuid.uuid4()` makes."""
    return uuid.UUID(bytes=_random(16), version=4)


_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_B = (1 << 62) - 1


def new_record_id() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7, sub-millisecond fraction in `rand_a`, its
    method 3): ids made later in this process sort after earlier ones unless the clock
    steps back; 62 random bits keep them unique whatever the clock does."""
    ns = time.time_ns()
    ms, frac = divmod(ns, 1_000_000)
    rand_a = (frac << 12) // 1_000_000
    rand_b = int.from_bytes(_random(8), "big") & _RAND_B
    return uuid.UUID(int=(ms << 80) | _VERSION_7 | (rand_a << 64) | _VARIANT | rand_b)
