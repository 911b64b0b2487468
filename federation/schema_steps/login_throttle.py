"""Frozen step: the `login_throttle` table (`federation.login_throttle` is the runtime).

Called by `login_throttle_0001` of the node and of the hub.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["downgrade_v1", "upgrade_v1"]


def upgrade_v1(op: Any) -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(48), nullable=False),
        sa.Column("user_digest", sa.String(43), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
        sa.Column("locked_until", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttle"),
    )
    op.create_index("ix_login_throttle_user_digest", "login_throttle", ["user_digest"])
    op.create_index("ix_login_throttle_last_ts", "login_throttle", ["last_ts"])


def downgrade_v1(op: Any) -> None:
    op.drop_index("ix_login_throttle_last_ts", table_name="login_throttle")
    op.drop_index("ix_login_throttle_user_digest", table_name="login_throttle")
    op.drop_table("login_throttle")
