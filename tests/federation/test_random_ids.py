"""`federation.random_ids`: version 4 UUIDs (`new_uuid`) and time-ordered version 7 record ids
(`new_record_id`) from blocks of CSPRNG output; never the same id twice, across blocks,
threads and a fork."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from federation import random_ids
from federation.random_ids import new_record_id, new_uuid


def _child_ids(q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    q.put([new_uuid() for _ in range(64)])


def _drawn_in_threads(make: Callable[[], uuid.UUID]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []

    def draw() -> None:
        ids.extend(make() for _ in range(2000))  # several 4 KiB blocks each

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ids


def test_ids_are_version_4_and_unique_across_blocks_and_threads() -> None:
    ids = _drawn_in_threads(new_uuid)
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


def _child_record_ids(q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    q.put([new_record_id() for _ in range(64)])


def test_record_ids_are_version_7_time_ordered_and_carry_the_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_record_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 5000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert all(before <= u.int >> 80 <= after for u in ids)
    # Made one after another on one clock: each sorts after the one before (the sub-ms
    # fraction orders ids within a millisecond), so index entries land side by side.
    assert all(a.int >> 64 <= b.int >> 64 for a, b in itertools.pairwise(ids))


def test_record_ids_stay_unique_when_the_clock_stands_still(monkeypatch: Any) -> None:
    monkeypatch.setattr(random_ids.time, "time_ns", lambda: 1_781_524_800_000_000_000)
    ids = [new_record_id() for _ in range(20000)]
    assert len(set(ids)) == 20000  # 62 random bits, not the clock, keep them apart
    assert {u.int >> 64 for u in ids} == {ids[0].int >> 64}


def test_record_ids_unique_across_threads_and_a_fork() -> None:
    ids = _drawn_in_threads(new_record_id)
    assert len(ids) == 8000 == len(set(ids))
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_record_ids, args=(q,))
    p.start()
    child = q.get(timeout=30)
    p.join(30)
    assert not set(child) & {*ids, *(new_record_id() for _ in range(64))}
