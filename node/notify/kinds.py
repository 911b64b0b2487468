"""What a notification can be about, where it goes, and what it says.

Content rule (DESIGN section 12): a notification says *what kind of thing* needs attention
and links to the page where a signed-in user sees it. It never carries a record's fields,
a pseudonym, a peer agency's sealed text (request body, hand-off note) or even a due date:
the texts below are fixed per kind, the link is the node's public URL plus a path built
from ids only. Mail and webhook bodies are built from these and nothing else.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ACTIVATION_KINDS", "DIGEST_KINDS", "TEXT", "DeliveryState", "NotifyChannel",
           "NotifyKind", "digest_text"]

# The enums' names are their schema names in the published OpenAPI document, where every
# room's models share one namespace: hence NotifyKind, not Kind.


class NotifyKind(StrEnum):
    ACTIVATION_REQUEST = "activation_request"
    ACTIVATION_UPDATE = "activation_update"
    OFFER_ACCEPTED = "offer_accepted"
    HANDOFF_RECEIVED = "handoff_received"
    FOLLOW_UP_DUE = "follow_up_due"
    FOLLOW_UP_OVERDUE = "follow_up_overdue"


class NotifyChannel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryState(StrEnum):
    PENDING = "pending"  # queued (or held: quiet hours, digest)
    FAILING = "failing"  # an attempt failed; retried at next_at
    SENT = "sent"
    DEAD = "dead"  # gave up after MAX_ATTEMPTS; an admin can retry it
    CANCELLED = "cancelled"  # nothing left to say (follow-up done, recipient gone)


ACTIVATION_KINDS = frozenset({NotifyKind.ACTIVATION_REQUEST, NotifyKind.ACTIVATION_UPDATE,
                              NotifyKind.OFFER_ACCEPTED})
DIGEST_KINDS = frozenset({NotifyKind.FOLLOW_UP_DUE, NotifyKind.FOLLOW_UP_OVERDUE})

# (subject, sentence) per kind: fixed words, no record content.
TEXT: dict[NotifyKind, tuple[str, str]] = {
    NotifyKind.ACTIVATION_REQUEST: ("Activation request needs attention",
                              "Another agency asked this agency for peer support."),
    NotifyKind.ACTIVATION_UPDATE: ("Activation update",
                             "An activation of this agency changed."),
    NotifyKind.OFFER_ACCEPTED: ("Offer accepted",
                          "An agency accepted this agency's offer of peers."),
    NotifyKind.HANDOFF_RECEIVED: ("Follow-up handed to you",
                            "Another agency handed a follow-up to this agency."),
    NotifyKind.FOLLOW_UP_DUE: ("Follow-up due", "A follow-up assigned to you is due today."),
    NotifyKind.FOLLOW_UP_OVERDUE: ("Follow-up overdue", "A follow-up assigned to you is overdue."),
}


def digest_text(n: int) -> tuple[str, str]:
    word = "follow-up" if n == 1 else "follow-ups"
    return (f"Daily digest: {n} {word} need attention",
            f"{n} {word} assigned to you are due or overdue.")
