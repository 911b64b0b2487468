"""`federation.random_ids.new_uuid`: version 4 UUIDs from blocks of CSPRNG output; never the
same id twice, across blocks, threads and a fork."""

from __future__ import annotations

import multiprocessing
import threading
import uuid

from federation import random_ids
from federation.random_ids import new_uuid


def _child_ids(q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    q.put([new_uuid() for _ in range(64)])


def test_ids_are_version_4_and_unique_across_blocks_and_threads() -> None:
    ids: list[uuid.UUID] = []

    def draw() -> None:
        ids.extend(new_uuid() for _ in range(2000))  # several 4 KiB blocks each

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8000 == len(set(ids))
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in ids)


def test_a_forked_child_does_not_repeat_the_parents_block() -> None:
    new_uuid()  # the parent holds an unread block
    assert random_ids._pos > 0
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_ids, args=(q,))
    p.start()
    child = q.get(timeout=30)
    p.join(30)
    parent = [new_uuid() for _ in range(64)]
    assert not set(child) & set(parent)
