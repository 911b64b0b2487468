"""Checks both aggregators make on an `aggregate_share` before storing it (WIRE section 14).

Shared by the hub and the helper so they refuse exactly the same shares with the same codes:

- the body matches the wire model, shares of exactly K uint64 (`bad_body`);
- the network runs shared aggregation and, at the helper, names this helper; the sender is an
  agency of the roster; the share's bounds and measure are the roster policy's; its month
  is over (a share for a month still running could be followed by the real data)
  (`share_mismatch`).

The one-share-per-node-month rule (`conflicting_share`) needs each server's table, so it
lives with the store (`helper.store`, `hub.stats.rounds`): `same_share` compares bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from federation.roster import NodeRole, PrivacyPolicy
from federation.roster_state import RosterState
from protocol.aggregate_bodies import AggregateShareBody
from protocol.canonical import canonical_bytes
from protocol.encoding import sha256_b64u
from protocol.errors import Code, ProtocolError

__all__ = ["body_sha256", "check_share", "month_index", "month_of_ms"]


def month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_of_ms(ms: int) -> int:
    d = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return d.year * 12 + d.month - 1


def body_sha256(body: Mapping[str, Any]) -> str:
    return sha256_b64u(canonical_bytes(dict(body)))


def check_share(
    body: Mapping[str, Any],
    *,
    sender: str,
    state: RosterState,
    now_ms: int,
    helper_id: str | None = None,
) -> AggregateShareBody:
    """The parsed share, or `ProtocolError` (`bad_body`, `share_mismatch`). `helper_id`: the
    checking server when it is the helper (it must be the policy's helper)."""
    try:
        share = AggregateShareBody.model_validate(dict(body))
    except ValidationError:
        raise ProtocolError(Code.BAD_BODY, "not an aggregate_share body") from None
    policy: PrivacyPolicy = state.policy.privacy
    if policy.aggregation != "shared":
        raise ProtocolError(Code.SHARE_MISMATCH, "this network does not aggregate shares")
    if helper_id is not None and policy.helper != helper_id:
        raise ProtocolError(Code.SHARE_MISMATCH, "the policy names another helper")
    if not state.has_node(sender) or NodeRole.AGENCY not in state.node(sender).roles:
        raise ProtocolError(Code.SHARE_MISMATCH, "only agencies send shares")
    if (share.bounds.per_person_month, share.bounds.per_cell) != (
        policy.per_person_month, policy.per_cell
    ) or share.measure != policy.measure:
        raise ProtocolError(Code.SHARE_MISMATCH, "bounds or measure differ from the policy")
    if month_index(share.month) >= month_of_ms(now_ms):
        raise ProtocolError(Code.SHARE_MISMATCH, "the month is not over")
    return share
