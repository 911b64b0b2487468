"""The one message a batch of deliveries becomes: fixed words per kind plus a link.

`Outgoing` is built from the kind, the count, the node's name and id and the event's path,
nothing else (see `node.notify.kinds`). Its `webhook_id` is stable for the batch, so a
retried webhook or mail carries the same id and a receiver can drop a repeat
(Standard Webhooks `webhook-id`; the mail's `Message-ID`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from node.notify.kinds import DIGEST_KINDS, TEXT, NotifyKind, digest_text

__all__ = ["Outgoing", "outgoing", "webhook_id_of"]


def webhook_id_of(batch: str) -> str:
    return "msg_" + hashlib.sha256(batch.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Outgoing:
    webhook_id: str
    kind: NotifyKind
    count: int
    subject: str
    sentence: str
    link: str
    node_id: str
    node_name: str

    def email(self, sender: str, to: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[{self.node_name}] {self.subject}"
        msg["From"] = sender
        msg["To"] = to
        msg["Message-ID"] = make_msgid(idstring=self.webhook_id, domain="peernet.invalid")
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(
            f"{self.sentence}\n\nOpen: {self.link}\n\n"
            "Sign in to see the details. This message holds no record content.\n"
        )
        return msg

    def webhook_body(self, wall_ms: int) -> dict[str, Any]:
        """Standard Webhooks payload shape: type, timestamp, data."""
        return {
            "type": f"peernet.{self.kind.value}",
            "timestamp": datetime.fromtimestamp(wall_ms / 1000, UTC).isoformat(),
            "data": {"node": self.node_id, "kind": self.kind.value, "count": self.count,
                     "summary": self.sentence, "link": self.link,
                     "notification_id": self.webhook_id},
        }


def outgoing(batch: str, kind: NotifyKind, count: int, path: str, *, base_url: str,
             node_id: str, node_name: str) -> Outgoing:
    if count > 1 and kind in DIGEST_KINDS:
        subject, sentence = digest_text(count)
        path = "/follow-ups"
    else:
        subject, sentence = TEXT[kind]
    return Outgoing(webhook_id_of(batch), kind, count, subject, sentence,
                    base_url.rstrip("/") + path, node_id, node_name)
