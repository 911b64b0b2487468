"""Approval of interstate activations: each network's own say over what crosses the line.

Decision (issue 19 item 4). The policy is a node setting kept in the node's database
(`activation_interstate_policy`, one row), set by an admin through
`PUT /api/v1/activations/interstate/policy`; it is not a roster field, so a board need not
re-sign its roster for an agency to change who signs off, and another network's roster can
never impose it. Two independent switches, both off by default (no row):

- `require_out`: a request that names an agency of another network is stored as a draft
  with a *pending* approval; `submit` is refused with `approval_required` (409) until an
  approver approves it, and approving sends it (the approval and the fan-out commit
  together). A request to home agencies only is never held.
- `require_in`: a request received from another network is stored `requested` as usual
  (the requester's copy and the hubs' logs must not wait on us) with a *pending*
  approval; `offer` is refused with `approval_required` until approved. Declining needs no
  approval (saying no never commits anyone).

Who approves: an admin, or a coordinator the policy names in `approvers` (a
"coordinator with approval"). Anyone else is refused with `forbidden` (403) and nothing is
stored; approving what is not pending is `illegal_transition` (409); the route itself is
only open to coordinators and admins. The policy applies to what happens after it is set:
an activation stored while the switch was off needs no approval later. Every approval
is one row in `activation_approvals` (who, when) plus an audit entry by the API.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from node.activation.approval_db import ActivationApproval, InterstatePolicy
from node.activation.context import ActivationContext, Db
from node.activation.errors import ActivationCode, ActivationError
from node.activation.rows import ActRow
from node.core.access import Principal
from node.core.db import User, table_of
from node.core.vocabulary import Role

__all__ = [
    "APPROVED",
    "PENDING",
    "Policy",
    "approval_of",
    "approve",
    "hold",
    "read_policy",
    "require_approved",
    "write_policy",
]

PENDING = "pending"
APPROVED = "approved"
POLICY = table_of(InterstatePolicy)
APPROVALS = table_of(ActivationApproval)


@dataclass(frozen=True)
class Policy:
    require_out: bool = False
    require_in: bool = False
    approvers: tuple[uuid.UUID, ...] = ()
    updated_at: int | None = None


async def read_policy(db: Db) -> Policy:
    row = (await db.execute(select(POLICY).where(POLICY.c.id == 1))).first()
    if row is None:
        return Policy()
    return Policy(row.require_out, row.require_in,
                  tuple(uuid.UUID(u) for u in json.loads(row.approvers)), row.updated_at)


async def write_policy(db: Db, ctx: ActivationContext, policy: Policy,
                       user_id: uuid.UUID | None) -> Policy:
    """Replace the policy (one row). The approvers must be active coordinators."""
    users = table_of(User)
    if policy.approvers:
        found = (await db.execute(
            select(users.c.id).where(users.c.id.in_(policy.approvers),
                                     users.c.role == Role.COORDINATOR.value,
                                     users.c.active.is_(True))
        )).scalars().all()
        if len(set(found)) != len(set(policy.approvers)):
            raise ActivationError(ActivationCode.INVALID_INPUT,
                                  "approvers must be active coordinators of this node",
                                  "approvers")
    now = ctx.now()
    await db.execute(delete(POLICY).where(POLICY.c.id == 1))
    await db.execute(insert(POLICY).values(
        id=1, require_out=policy.require_out, require_in=policy.require_in,
        approvers=json.dumps(sorted(str(u) for u in set(policy.approvers))),
        updated_at=now, updated_by=user_id,
    ))
    return Policy(policy.require_out, policy.require_in,
                  tuple(sorted(set(policy.approvers), key=str)), now)


async def hold(db: Db, ctx: ActivationContext, act_key: uuid.UUID, direction: str) -> None:
    """Mark an activation as waiting for approval (`direction` out or in)."""
    await db.execute(insert(APPROVALS).values(
        activation_key=act_key, direction=direction, state=PENDING, requested_at=ctx.now(),
    ))


async def approval_of(db: Db, act_key: uuid.UUID) -> str | None:
    """`pending`, `approved`, or None when the activation never needed approval."""
    row = (await db.execute(
        select(APPROVALS.c.state).where(APPROVALS.c.activation_key == act_key)
    )).first()
    return None if row is None else str(row.state)


async def require_approved(db: Db, act: ActRow, what: str) -> None:
    if await approval_of(db, act.key) == PENDING:
        raise ActivationError(ActivationCode.APPROVAL_REQUIRED,
                              f"this interstate activation needs approval before {what}",
                              "approval")


async def approve(db: Db, ctx: ActivationContext, act: ActRow, p: Principal) -> None:
    """Approve a pending interstate activation (module notes for who may). The caller
    sends an outgoing request afterwards, in the same transaction."""
    if p.role is not Role.ADMIN:
        policy = await read_policy(db)
        if p.role is not Role.COORDINATOR or p.user_id not in policy.approvers:
            raise ActivationError(ActivationCode.FORBIDDEN,
                                  "only an admin or a coordinator with approval may approve",
                                  "approval")
    res = await db.execute(
        update(APPROVALS)
        .where(APPROVALS.c.activation_key == act.key, APPROVALS.c.state == PENDING)
        .values(state=APPROVED, decided_by=p.user_id, decided_at=ctx.now())
    )
    if getattr(res, "rowcount", 0) != 1:
        raise ActivationError(ActivationCode.ILLEGAL_TRANSITION,
                              "this activation is not waiting for approval", "approval")
