"""`TopicSet` binds topics as their sorted, comma-joined strings, members and their strings
alike, and refuses anything that is not a topic as `Topic` does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects.sqlite import aiosqlite

from node.core.db import TopicSet
from node.core.vocabulary import FollowUpStatus, Topic


def _bind(value: Any) -> Any:
    return TopicSet().process_bind_param(value, aiosqlite.dialect())


def test_members_and_their_strings_bind_sorted() -> None:
    assert _bind(frozenset({Topic.WORK_STRESS, Topic.FAMILY})) == "family,work_stress"
    assert _bind(frozenset({"work_stress", Topic.FAMILY})) == "family,work_stress"
    assert _bind(frozenset()) == "" and _bind(None) is None
    everything = frozenset(Topic)
    assert _bind(everything) == ",".join(sorted(t.value for t in Topic))


@pytest.mark.parametrize("bad", ["nope", FollowUpStatus.OPEN, 3, ("work_stress",)])
def test_what_is_not_a_topic_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="is not a valid Topic"):
        _bind(frozenset({Topic.FAMILY, bad}))
