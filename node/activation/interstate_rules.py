"""The interstate rules the activation operations apply (`node.activation.interstate` for the
names and the reasons): which agency of another network may be asked, which sender of
another network may ask this node, and whether a new activation waits for approval.
"""

from __future__ import annotations

import uuid

from node.activation import approval
from node.activation.context import ActivationContext, Db
from node.activation.errors import ActivationCode, ActivationError
from node.activation.interstate import agency_of, is_qualified, network_of, normalize

__all__ = ["check_target", "hold_if_required", "may_ask_us"]


def check_target(ctx: ActivationContext, name: str) -> str:
    """The target as stored (home agencies bare), or `bad_target`."""
    t = normalize(name, ctx.network_id)
    if not is_qualified(t):
        if t == ctx.node_id:
            raise ActivationError(ActivationCode.BAD_TARGET, "an agency cannot ask itself",
                                  "targets")
        if not ctx.directory.has_node(t):
            raise ActivationError(ActivationCode.BAD_TARGET, f"{t} is not in the roster",
                                  "targets")
        if not ctx.directory.may_request(ctx.node_id, t):
            raise ActivationError(ActivationCode.BAD_TARGET,
                                  f"the roster policy does not allow asking {t}", "targets")
        return t
    network = network_of(t)
    assert network is not None
    if ctx.interstate is None:
        raise ActivationError(ActivationCode.BAD_TARGET,
                              "this node cannot reach agencies of other networks", "targets")
    if network not in ctx.interstate.networks():
        raise ActivationError(ActivationCode.BAD_TARGET,
                              f"network {network} is not a member of the compact", "targets")
    if not ctx.interstate.has_agency(network, agency_of(t)):
        raise ActivationError(ActivationCode.BAD_TARGET,
                              f"{t} is not an agency in its network's roster", "targets")
    return t


def may_ask_us(ctx: ActivationContext, sender: str) -> bool:
    """Whether `sender` may send this node a request. A sender of another network reaches
    us only in a v2 envelope the federation layer verified against the compact and that
    network's roster; the home roster's rules speak only of home agencies."""
    if is_qualified(sender):
        return network_of(sender) != ctx.network_id
    return ctx.directory.may_request(sender, ctx.node_id)


async def hold_if_required(db: Db, ctx: ActivationContext, act_key: uuid.UUID,
                           direction: str, interstate: bool) -> bool:
    """Hold a new interstate activation for approval when this node's policy says so;
    answers whether it is held."""
    if not interstate:
        return False
    policy = await approval.read_policy(db)
    needed = policy.require_out if direction == "out" else policy.require_in
    if needed:
        await approval.hold(db, ctx, act_key, direction)
    return needed
