"""The activation transition table: every legal step, every illegal one refused with a code."""

from __future__ import annotations

import itertools

import pytest

from node.activation.states import (
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Event,
    RefusalCode,
    TransitionRefused,
    allowed_events,
    can_step,
    step,
    summarize,
)
from protocol.vocabulary import ActivationState as S

LEGAL = {
    (S.DRAFT, Event.SUBMIT): S.REQUESTED,
    (S.REQUESTED, Event.OFFER): S.OFFERED,
    (S.REQUESTED, Event.DECLINE): S.DECLINED,
    (S.REQUESTED, Event.EXPIRE): S.EXPIRED,
    (S.OFFERED, Event.ACCEPT): S.ACCEPTED,
    (S.OFFERED, Event.DECLINE): S.DECLINED,
    (S.OFFERED, Event.EXPIRE): S.EXPIRED,
    (S.ACCEPTED, Event.MOBILIZE): S.MOBILIZED,
    (S.MOBILIZED, Event.ARRIVE): S.ON_SCENE,
    (S.ON_SCENE, Event.DEMOBILIZE): S.DEMOBILIZED,
    (S.DEMOBILIZED, Event.CLOSE): S.CLOSED,
    **{(s, Event.CANCEL): S.CANCELLED for s in OPEN_STATES},
}


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(S)
    assert OPEN_STATES | TERMINAL_STATES == set(S)
    assert not OPEN_STATES & TERMINAL_STATES


def test_the_table_is_exactly_the_design() -> None:
    table = {(s, e): t for s, row in TRANSITIONS.items() for e, t in row.items()}
    assert table == LEGAL


@pytest.mark.parametrize("state,event", sorted(LEGAL, key=str))
def test_legal_steps(state: S, event: Event) -> None:
    assert step(state, event) is LEGAL[(state, event)]
    assert can_step(state, event)
    assert event in allowed_events(state)


ILLEGAL = [pair for pair in itertools.product(S, Event) if pair not in LEGAL]


@pytest.mark.parametrize("state,event", ILLEGAL, ids=[f"{s}-{e}" for s, e in ILLEGAL])
def test_every_illegal_step_is_refused_with_a_stable_code(state: S, event: Event) -> None:
    with pytest.raises(TransitionRefused) as info:
        step(state, event)
    expected = (
        RefusalCode.TERMINAL_STATE if state in TERMINAL_STATES else RefusalCode.ILLEGAL_TRANSITION
    )
    assert info.value.code is expected
    assert info.value.code.value in ("terminal_state", "illegal_transition")
    assert not can_step(state, event)


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
def test_cancel_from_every_open_state(state: S) -> None:
    assert step(state, Event.CANCEL) is S.CANCELLED


def test_terminal_states_have_no_exit() -> None:
    for state in TERMINAL_STATES:
        assert allowed_events(state) == ()


def test_the_main_line_is_walkable() -> None:
    state = S.DRAFT
    for event in (Event.SUBMIT, Event.OFFER, Event.ACCEPT, Event.MOBILIZE, Event.ARRIVE,
                  Event.DEMOBILIZE, Event.CLOSE):
        state = step(state, event)
    assert state is S.CLOSED


def test_summarize() -> None:
    assert summarize(S.DRAFT, []) is S.DRAFT
    assert summarize(S.REQUESTED, []) is S.REQUESTED
    assert summarize(S.CANCELLED, [S.ACCEPTED]) is S.CANCELLED
    assert summarize(S.CLOSED, [S.CLOSED, S.DECLINED]) is S.CLOSED
    assert summarize(S.REQUESTED, [S.REQUESTED, S.OFFERED, S.DECLINED]) is S.OFFERED
    assert summarize(S.REQUESTED, [S.EXPIRED, S.ACCEPTED, S.EXPIRED]) is S.ACCEPTED
    assert summarize(S.REQUESTED, [S.DECLINED, S.EXPIRED]) is S.EXPIRED
    assert summarize(S.REQUESTED, [S.DECLINED, S.CANCELLED]) is S.DECLINED
    assert summarize(S.REQUESTED, [S.CANCELLED]) is S.CANCELLED
    assert summarize(S.REQUESTED, [S.ON_SCENE, S.DEMOBILIZED]) is S.DEMOBILIZED
