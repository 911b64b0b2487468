"""Random (version 4) UUIDs for record ids, drawn from the OS's CSPRNG in blocks.

`uuid.uuid4()` makes one `getrandom` system call per id, and CPython releases the GIL
around it. On a node writing encounters, the database driver's thread is usually
runnable at that moment, so the event loop then waits for the GIL to come back: under
16 concurrent writers `uuid4` was 9 % of the loop thread's time (py-spy; one call costs
about 0.3 us alone). Here one call to `os.urandom` serves `_BLOCK // 16` ids. The bytes are
the same CSPRNG output `uuid4` uses; only the reading is batched.

Safe across `fork` (the child drops the parent's unread block, so two processes never hand
out the same id) and across threads (a lock around the cursor).
"""

from __future__ import annotations

import os
import threading
import uuid

__all__ = ["new_uuid"]

_BLOCK = 4096
_lock = threading.Lock()
_buf = b""
_pos = 0


def _reset() -> None:
    global _buf, _pos
    _buf, _pos = b"", 0


os.register_at_fork(after_in_child=_reset)


def new_uuid() -> uuid.UUID:
    """A random UUID (RFC 9562 version 4), as `uuid.uuid4()` makes."""
    global _buf, _pos
    with _lock:
        if _pos + 16 > len(_buf):
            _buf, _pos = os.urandom(_BLOCK), 0
        raw = _buf[_pos:_pos + 16]
        _pos += 16
    return uuid.UUID(bytes=raw, version=4)
