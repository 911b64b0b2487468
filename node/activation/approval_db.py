"""Tables of interstate approval (revision branch `activation_interstate`).

- `activation_interstate_policy`: this node's one policy row (id 1): whether requests to
  agencies of another network wait for approval before they are sent (`require_out`),
  whether requests from another network wait for approval before anyone may offer
  (`require_in`), and which coordinators may approve besides admins (`approvers`, a JSON
  list of user ids). No row: nothing needs approval.
- `activation_approvals`: one row per interstate activation that needed approval, keyed by
  the activation; `state` is `pending` until a permitted user approves it (`approved`,
  with who and when). Metadata only.

See `node.activation.approval` for the rules.
"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base

__all__ = ["ActivationApproval", "InterstatePolicy"]


class InterstatePolicy(Base):
    __tablename__ = "activation_interstate_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    require_out: Mapped[bool] = mapped_column(Boolean)
    require_in: Mapped[bool] = mapped_column(Boolean)
    approvers: Mapped[str] = mapped_column(Text)  # JSON list of user ids
    updated_at: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )


class ActivationApproval(Base):
    __tablename__ = "activation_approvals"

    activation_key: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("activations.key", ondelete="CASCADE"), primary_key=True
    )
    direction: Mapped[str] = mapped_column(String(3))  # out | in
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | approved
    requested_at: Mapped[int] = mapped_column(BigInteger)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )
    decided_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
