"""Who is asking (`Principal`) and the record-level rules of DESIGN section 3.

Route-level gates live in the route table (`node.core.routes`); these functions answer the finer
questions a service asks about one record: may this caller read this encounter, this
follow-up? "Another user's record" means a record created by (or, for follow-ups, owned by)
someone else; every such read is audited by the service that allowed it.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from node.core.vocabulary import Role

__all__ = ["Principal", "can_read_team_records"]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    username: str
    role: Role
    team: str
    via: str  # "session" or "token"
    session_id: str | None = None
    csrf_token: str | None = None
    must_change_password: bool = False  # after an admin's reset (node.accounts.passwords)

    @functools.cached_property
    def actor(self) -> str:  # cached: the token cache hands out one Principal per token
        return str(self.user_id)


def can_read_team_records(p: Principal) -> bool:
    """Coordinators read their team's encounters and follow-ups; nobody else reads others'."""
    return p.role is Role.COORDINATOR
