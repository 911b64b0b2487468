"""Page set-up both servers share: the Jinja environment over the server's templates and the
kit's, the kit's static files, the favicon, and the page-versus-JSON error answer.

A server calls `setup_pages(app, "<its package>", Site(...))` once. Its own templates come
first (its `base.html` extends the kit's `kit_base.html` and fills the `nav` block); the
kit's `login.html` and `error.html` extend that `base.html`, so both servers show one login
form and one error page. `Site` says what differs between them (name, stylesheet, where
"back" goes): plain data the kit templates read as the global `site`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp_jinja2
import jinja2
from aiohttp import web

from federation.field_errors import sentence

__all__ = ["KIT_STATIC", "Render", "ShownError", "Site", "error_response", "favicon",
           "setup_pages"]

HERE = Path(__file__).resolve().parent
KIT_STATIC = "/static/kit/"  # kit.css; under /static/, so cached like the servers' files
_ICON = HERE / "static" / "favicon.ico"

Render = Callable[[web.Request, str, Mapping[str, Any], int], web.Response]


@dataclass(frozen=True)
class Site:
    """What the shared templates need to know about the server rendering them."""

    name: str  # header and <title>
    stylesheet: str  # the server's own CSS, after the kit's
    home: str  # the error page's "back" link
    home_label: str
    login_intro: str | None = None  # one line under the login heading
    skip_link: bool = False  # "Skip to content" before the header
    bad_request_heading: bool = False  # a 400 page says "That request was not understood"


class ShownError(Protocol):
    """A server's exception as the error page and the JSON answer read it."""

    @property
    def code(self) -> Any: ...  # an enum: `.value` is the stable code
    @property
    def message(self) -> str: ...
    @property
    def status(self) -> int: ...
    def body(self) -> dict[str, Any]: ...


def setup_pages(app: web.Application, package: str, site: Site,
                filters: Mapping[str, Callable[..., Any]] | None = None) -> None:
    """Jinja2 (autoescape, strict undefined) over `<package>/templates` then the kit's,
    the `sentence` filter plus `filters`, the global `site`, and the kit's static files."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.ChoiceLoader([jinja2.PackageLoader(package, "templates"),
                                    jinja2.PackageLoader("federation.webkit", "templates")]),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        filters={"sentence": sentence, **(filters or {})},
    )
    env.globals["site"] = site
    app.router.add_static(KIT_STATIC, HERE / "static", name="kit_static")


async def favicon(request: web.Request) -> web.StreamResponse:
    """A small icon, so a browser's automatic /favicon.ico request is not a 404."""
    return web.FileResponse(_ICON, headers={"Content-Type": "image/x-icon",
                                            "Cache-Control": "public, max-age=86400"})


def error_response(request: web.Request, error: ShownError, *, as_page: bool,
                   unauthenticated: bool, render: Render) -> web.StreamResponse:
    """A page request gets `error.html` (the stable code in `data-code`), or a redirect to
    /login when nobody is logged in; anything else, or a server whose templates are not set
    up, gets the JSON `{"error": {...}}`."""
    if not as_page:
        return web.json_response(error.body(), status=error.status)
    if unauthenticated:
        raise web.HTTPSeeOther("/login")
    try:
        return render(request, "error.html", {"error": error}, error.status)
    except Exception:  # templates not set up (e.g. an API-only test app)
        return web.json_response(error.body(), status=error.status)
