"""The node's route table: every page and API route, with who may call it.

A `Route` declares its method, path, handler, the roles allowed (`roles`; `None` means a
public route with no login), and for API routes the pydantic models of its query, body and
response. The table drives three things, so they cannot drift apart:

- the auth middleware (`node.web.plumbing`): unknown caller -> 401, caller outside `roles` -> 403
  `forbidden` (audited), before the handler runs and before the body is read;
- the OpenAPI document at `/api/v1/openapi.json` (`federation.openapi`);
- the role-matrix test, which fails for any route it has no expectation for.

Adding routes (other features): in your module write `def setup(app: web.Application) ->
None: add_routes(app, [Route(...), ...])` and append `setup` to `FEATURES` in `node/web/app.py`.
Record-level rules (own vs team) are the services' job; `roles` is only the first gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from node.core.vocabulary import Role

__all__ = [
    "ALL_ROLES",
    "NavItem",
    "Route",
    "RouteTable",
    "add_nav",
    "add_routes",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALL_ROLES: frozenset[Role] = frozenset(Role)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    roles: frozenset[Role] | None  # None: public (no login needed)
    summary: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None  # JSON body (API) model
    response: type[BaseModel] | None = None
    status: int = 200
    tags: tuple[str, ...] = ()
    # Unsafe methods authenticated by the session cookie must carry the CSRF token.
    csrf: bool = True

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def is_unsafe(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")


@dataclass
class RouteTable:
    _routes: dict[str, Route] = field(default_factory=dict)

    def add(self, route: Route) -> None:
        if route.name in self._routes:
            raise ValueError(f"duplicate route name {route.name}")
        self._routes[route.name] = route

    def get(self, name: str | None) -> Route | None:
        return self._routes.get(name) if name else None

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)


@dataclass(frozen=True)
class NavItem:
    """A link in the page header, shown to the given roles."""

    label: str
    path: str
    roles: frozenset[Role]
    order: int = 50


ROUTES = web.AppKey("peernet_routes", RouteTable)
NAV = web.AppKey("peernet_nav", list[NavItem])


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register routes on the app's router and in its route table."""
    table = app[ROUTES]
    for r in routes:
        table.add(r)
        app.router.add_route(r.method, r.path, r.handler, name=r.name)


def add_nav(app: web.Application, item: NavItem) -> None:
    app[NAV].append(item)
    app[NAV].sort(key=lambda i: (i.order, i.label))
