"""The interagency activation state machine (DESIGN section 6), as one explicit, pure table.

An activation is a request from one agency (the requester) to several others (responders).
Each requester-responder pair is a *leg*; both nodes keep their own copy of a leg and move it
through the same table:

    draft -> requested -> offered -> accepted | declined | expired
    accepted -> mobilized -> on_scene -> demobilized -> closed
    requested -> declined | expired    (the responder says no, or nobody answered in time)
    any open state -> cancelled

`draft` exists only on the requester (a request being written, never sent). `declined`,
`expired`, `closed` and `cancelled` are terminal: nothing leaves them. Every other state is
*open* and can be cancelled.

The activation as a whole (requester side) has its own stored state for the steps that
belong to it alone (`draft`, `requested`, `cancelled`, `closed`) and otherwise shows the
furthest state any of its legs reached (`summarize`): one accepted leg among two expired
ones makes an accepted activation.

Nothing here touches a database or a clock: `step(state, event)` answers the next state or
raises `TransitionRefused` with a stable code (`illegal_transition` for an event that does
not apply in this state, `terminal_state` when the state is final). The services call it
before writing anything, so a refused event leaves every row as it was.

`step` is for a node's own actions. A message from the other node of a leg is merged
instead (`merge`), because federation delivers every message exactly once but not in order
(a retried message is overtaken by a later one of the same thread). Each node's copy of a
leg moves only forward, so both copies end in the same state whatever the arrival order:

- a message further along the main line applies even if steps were skipped (`on_scene`
  after `accepted` implies `mobilized`; the skipped steps are answered for the history);
- a message behind the leg's state (a late `mobilized` after `on_scene`) is stale: kept in
  the history, no change;
- a terminal message (`declined`, `cancelled`, or a local `expired`) ends any open state;
- a leg that is over stays over, except that two terminal states reached concurrently on
  the two copies settle on the same one by a fixed precedence, `cancelled` > `declined` >
  `closed` > `expired` (`TERMINAL_PRECEDENCE`): a responder that withdrew while the
  requester closed, or a decline that crossed a cancel, ends the same on both sides.

Which messages a sender may send at all (an update before any acceptance, an acceptance of
an offer never made...) is checked by the inbound rules before merging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from protocol.vocabulary import ActivationState

__all__ = [
    "EVENT_TARGETS",
    "OPEN_STATES",
    "PROGRESS",
    "TERMINAL_PRECEDENCE",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Event",
    "Merge",
    "RefusalCode",
    "TransitionRefused",
    "allowed_events",
    "can_step",
    "merge",
    "step",
    "summarize",
]

S = ActivationState


class Event(StrEnum):
    """What can happen to a leg (or to the activation as a whole)."""

    SUBMIT = "submit"  # the requester sends the request
    OFFER = "offer"  # the responder offers peers
    ACCEPT = "accept"  # the requester accepts an offer
    DECLINE = "decline"  # the responder declines the request, or the requester an offer
    EXPIRE = "expire"  # the request's expiry passed before acceptance
    MOBILIZE = "mobilize"  # responder update: peers on their way
    ARRIVE = "arrive"  # responder update: peers on scene
    DEMOBILIZE = "demobilize"  # responder update: peers released
    CLOSE = "close"  # the work is done, follow-ups handed off
    CANCEL = "cancel"  # either side calls it off while it is open


class RefusalCode(StrEnum):
    ILLEGAL_TRANSITION = "illegal_transition"
    TERMINAL_STATE = "terminal_state"


TERMINAL_STATES: frozenset[ActivationState] = frozenset(
    {S.DECLINED, S.EXPIRED, S.CLOSED, S.CANCELLED}
)
OPEN_STATES: frozenset[ActivationState] = frozenset(set(S) - TERMINAL_STATES)

# The one table. Cancel is listed explicitly for every open state (no wildcard rule), so
# the table alone answers every question and the tests can walk it exhaustively.
TRANSITIONS: Mapping[ActivationState, Mapping[Event, ActivationState]] = MappingProxyType(
    {
        S.DRAFT: MappingProxyType({Event.SUBMIT: S.REQUESTED, Event.CANCEL: S.CANCELLED}),
        S.REQUESTED: MappingProxyType(
            {
                Event.OFFER: S.OFFERED,
                Event.DECLINE: S.DECLINED,
                Event.EXPIRE: S.EXPIRED,
                Event.CANCEL: S.CANCELLED,
            }
        ),
        S.OFFERED: MappingProxyType(
            {
                Event.ACCEPT: S.ACCEPTED,
                Event.DECLINE: S.DECLINED,
                Event.EXPIRE: S.EXPIRED,
                Event.CANCEL: S.CANCELLED,
            }
        ),
        S.ACCEPTED: MappingProxyType({Event.MOBILIZE: S.MOBILIZED, Event.CANCEL: S.CANCELLED}),
        S.MOBILIZED: MappingProxyType({Event.ARRIVE: S.ON_SCENE, Event.CANCEL: S.CANCELLED}),
        S.ON_SCENE: MappingProxyType(
            {Event.DEMOBILIZE: S.DEMOBILIZED, Event.CANCEL: S.CANCELLED}
        ),
        S.DEMOBILIZED: MappingProxyType({Event.CLOSE: S.CLOSED, Event.CANCEL: S.CANCELLED}),
        S.DECLINED: MappingProxyType({}),
        S.EXPIRED: MappingProxyType({}),
        S.CLOSED: MappingProxyType({}),
        S.CANCELLED: MappingProxyType({}),
    }
)

# Forward order of the main line, used to summarize legs into one activation state.
PROGRESS: tuple[ActivationState, ...] = (
    S.REQUESTED,
    S.OFFERED,
    S.ACCEPTED,
    S.MOBILIZED,
    S.ON_SCENE,
    S.DEMOBILIZED,
    S.CLOSED,
)

# The state each event leads to, wherever it starts (what a merged message claims).
EVENT_TARGETS: Mapping[Event, ActivationState] = MappingProxyType(
    {
        Event.SUBMIT: S.REQUESTED,
        Event.OFFER: S.OFFERED,
        Event.ACCEPT: S.ACCEPTED,
        Event.DECLINE: S.DECLINED,
        Event.EXPIRE: S.EXPIRED,
        Event.MOBILIZE: S.MOBILIZED,
        Event.ARRIVE: S.ON_SCENE,
        Event.DEMOBILIZE: S.DEMOBILIZED,
        Event.CLOSE: S.CLOSED,
        Event.CANCEL: S.CANCELLED,
    }
)

# Which of two terminal states reached concurrently on a leg's two copies both settle on.
TERMINAL_PRECEDENCE: Mapping[ActivationState, int] = MappingProxyType(
    {S.EXPIRED: 0, S.CLOSED: 1, S.DECLINED: 2, S.CANCELLED: 3}
)


class Merge(NamedTuple):
    """The outcome of merging a remote message into a leg."""

    state: ActivationState  # the leg's state afterwards
    skipped: tuple[ActivationState, ...]  # main-line steps the message implies, in order
    stale: bool  # behind the leg (or the leg is over): recorded, nothing changes


class TransitionRefused(Exception):
    """An event that does not apply to the current state. Nothing was changed."""

    def __init__(self, code: RefusalCode, state: ActivationState, event: Event) -> None:
        self.code = code
        self.state = state
        self.event = event
        super().__init__(f"{code.value}: cannot {event.value} when {state.value}")


def step(state: ActivationState, event: Event) -> ActivationState:
    """The next state, or `TransitionRefused`."""
    nxt = TRANSITIONS[state].get(event)
    if nxt is None:
        code = (
            RefusalCode.TERMINAL_STATE
            if state in TERMINAL_STATES
            else RefusalCode.ILLEGAL_TRANSITION
        )
        raise TransitionRefused(code, state, event)
    return nxt


def merge(state: ActivationState, event: Event) -> Merge:
    """Merge a message from the leg's other node (see the module notes); never goes back.

    A draft has not been sent, so nobody can speak about it: only `step` applies there.
    """
    target = EVENT_TARGETS[event]
    if state is S.DRAFT:
        return Merge(step(state, event), (), False)
    if state in TERMINAL_STATES:
        if target in TERMINAL_STATES and (
            TERMINAL_PRECEDENCE[target] > TERMINAL_PRECEDENCE[state]
        ):
            return Merge(target, (), False)
        return Merge(state, (), True)
    if target in TERMINAL_STATES and target is not S.CLOSED:
        return Merge(target, (), False)
    here, there = PROGRESS.index(state), PROGRESS.index(target)
    if there <= here:
        return Merge(state, (), True)
    return Merge(target, PROGRESS[here + 1 : there], False)


def can_step(state: ActivationState, event: Event) -> bool:
    return event in TRANSITIONS[state]


def allowed_events(state: ActivationState) -> tuple[Event, ...]:
    """The events that apply in `state`, in table order (for pages: which buttons to show)."""
    return tuple(TRANSITIONS[state])


def summarize(own: ActivationState, legs: Iterable[ActivationState]) -> ActivationState:
    """The state of an activation as a whole, from its own state and its legs' states.

    `draft`, `cancelled` and `closed` belong to the activation itself and win. Otherwise the
    furthest leg on the main line wins; with no leg on it (every leg declined, expired or
    cancelled) the activation shows `expired` if any leg expired, else `declined`, else
    `cancelled`; with no legs at all it keeps its own state.
    """
    if own in (S.DRAFT, S.CANCELLED, S.CLOSED):
        return own
    states = list(legs)
    if not states:
        return own
    on_line = [PROGRESS.index(s) for s in states if s in PROGRESS]
    if on_line:
        return PROGRESS[max(on_line)]
    for fallback in (S.EXPIRED, S.DECLINED):
        if fallback in states:
            return fallback
    return S.CANCELLED
