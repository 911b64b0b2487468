"""The `oidc_identities` table: which node user a provider's subject is.

Why a link and not the username: a provider's `preferred_username` is a display value that
can be reassigned; the pair (issuer, `sub`) is what OpenID Connect promises is stable and
unique. A local account whose name happens to equal a provider's user is therefore never
taken over by it (`oidc_username_taken`). Rows go with their user (`ON DELETE CASCADE`).

`oidc_pending_flows` holds the sign-in flows started and not yet finished, so any node
process behind the address finishes them (`federation.webkit.oidc_flows`; migration
`oidc_pending_flows_0001`).
"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from federation.webkit.oidc_flows import pending_flows_table
from node.core.db import Base

__all__ = ["PENDING_FLOWS", "OidcIdentity"]

PENDING_FLOWS = pending_flows_table(Base.metadata, "oidc_pending_flows")


class OidcIdentity(Base):
    __tablename__ = "oidc_identities"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_login_at: Mapped[int] = mapped_column(BigInteger)
