"""The client's address for the login throttle, also behind a reverse proxy.

The README tells operators to put a TLS reverse proxy in front of a node or hub. Then every
connection comes from the proxy, so the throttle's per-address ceiling would count every
client as one and lock them all out together. The `trusted_proxies` setting (IPs or CIDRs,
default empty) names the proxies: only when the connecting peer is one of them is
`X-Forwarded-For` read, and the client is the rightmost address in it that is not itself a
trusted proxy (each proxy appends the address it saw, so everything left of that was written
by the client and proves nothing). From any other peer the header is ignored: a client
cannot pick its own address. An entry that is not an IP address ends the walk at the last
trusted hop (that proxy's address stands for the client).

`client_address(request)` reads the parsed networks from the app (`TRUSTED_PROXIES`, looked
up through sub-apps); an app that never set it trusts no proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import hdrs, web

__all__ = ["TRUSTED_PROXIES", "Network", "client_address", "parse_trusted", "pick_client"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES = web.AppKey("peernet_trusted_proxies", tuple[Network, ...])


def parse_trusted(values: Iterable[str]) -> tuple[Network, ...]:
    """The networks `values` name (`10.0.0.5`, `10.0.0.0/8`, `::1`); ValueError naming the
    first entry that is neither an IP address nor a CIDR."""
    nets: list[Network] = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address or CIDR") from None
    return tuple(nets)


def _trusted(addr: str, nets: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in nets)


def pick_client(peer: str, forwarded_for: list[str], nets: tuple[Network, ...]) -> str:
    """The client address from the connecting `peer` and its `X-Forwarded-For` values."""
    if not nets or not _trusted(peer, nets):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    last = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return last  # not an address: written by someone untrusted
        if not _trusted(hop, nets):
            return hop
        last = hop
    return last


def client_address(request: web.Request) -> str:
    """The address the login throttle counts for `request` (see module docstring)."""
    peer = request.remote or "unknown"
    nets = request.config_dict.get(TRUSTED_PROXIES, ())
    return pick_client(peer, request.headers.getall(hdrs.X_FORWARDED_FOR, []), nets)
