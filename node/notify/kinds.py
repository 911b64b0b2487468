"""What a notification can be about, where it goes, and what it says.

Content rule (DESIGN section 12): a notification says *what kind of thing* needs attention
and links to the page where a signed-in user sees it. It never carries a record's fields,
a pseudonym, a peer agency's sealed text (request body, hand-off note) or even a due date:
the texts below are fixed per kind, the link is the node's public URL plus a path built
from ids only. Mail and webhook bodies are built from these and nothing else.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ACTIVATION_KINDS", "DIGEST_KINDS", "Channel", "Kind", "State", "TEXT", "digest_text"]


class Kind(StrEnum):
    ACTIVATION_REQUEST = "activation_request"
    ACTIVATION_UPDATE = "activation_update"
    OFFER_ACCEPTED = "offer_accepted"
    HANDOFF_RECEIVED = "handoff_received"
    FOLLOW_UP_DUE = "follow_up_due"
    FOLLOW_UP_OVERDUE = "follow_up_overdue"


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class State(StrEnum):
    PENDING = "pending"  # queued (or held: quiet hours, digest)
    FAILING = "failing"  # an attempt failed; retried at next_at
    SENT = "sent"
    DEAD = "dead"  # gave up after MAX_ATTEMPTS; an admin can retry it
    CANCELLED = "cancelled"  # nothing left to say (follow-up done, recipient gone)


ACTIVATION_KINDS = frozenset({Kind.ACTIVATION_REQUEST, Kind.ACTIVATION_UPDATE,
                              Kind.OFFER_ACCEPTED})
DIGEST_KINDS = frozenset({Kind.FOLLOW_UP_DUE, Kind.FOLLOW_UP_OVERDUE})

# (subject, sentence) per kind: fixed words, no record content.
TEXT: dict[Kind, tuple[str, str]] = {
    Kind.ACTIVATION_REQUEST: ("Activation request needs attention",
                              "Another agency asked this agency for peer support."),
    Kind.ACTIVATION_UPDATE: ("Activation update",
                             "An activation of this agency changed."),
    Kind.OFFER_ACCEPTED: ("Offer accepted",
                          "An agency accepted this agency's offer of peers."),
    Kind.HANDOFF_RECEIVED: ("Follow-up handed to you",
                            "Another agency handed a follow-up to this agency."),
    Kind.FOLLOW_UP_DUE: ("Follow-up due", "A follow-up assigned to you is due today."),
    Kind.FOLLOW_UP_OVERDUE: ("Follow-up overdue", "A follow-up assigned to you is overdue."),
}


def digest_text(n: int) -> tuple[str, str]:
    word = "follow-up" if n == 1 else "follow-ups"
    return (f"Daily digest: {n} {word} need attention",
            f"{n} {word} assigned to you are due or overdue.")
