"""Running one server (a node or the hub) as its own process.

Both `peernet node serve` and `peernet hub serve` go through `run_server`: uvloop where it
is installed, no access log (request lines would carry record ids), and the heap built at
startup frozen out of the cyclic garbage collector (`freeze_heap`). A server keeps what it
loads at startup (SQLAlchemy metadata and compiled statements, pydantic schemas, the roster)
for its whole life; without the freeze every full collection walks those hundreds of
thousands of objects again (measured on the fan-out benchmark's requester: 10 ms of
collection per round, 2 ms frozen).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Literal

from aiohttp import web

from federation.observe.logs import configure_logging

__all__ = ["freeze_heap", "run_server"]


def freeze_heap() -> None:
    """Move every object tracked now to the collector's permanent generation. No collection
    first: that would run the finalizers of whatever garbage the process holds on the
    server's loop (in a process that made servers before, such as a test run, it stalled
    startup for minutes). `gc.unfreeze()` gives the objects back."""
    gc.freeze()


async def _freeze_on_startup(_app: web.Application) -> None:
    freeze_heap()


def event_loop() -> asyncio.AbstractEventLoop:
    """A new uvloop loop where uvloop is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_server(app: web.Application, *, host: str, port: int, echo: Callable[[str], None],
               log_format: Literal["text", "json"] = "text", log_level: str = "INFO") -> None:
    """Serve `app` until interrupted; `echo` gets aiohttp's one-line startup notice. Logs go
    to stderr as `log_format` (`federation.observe.logs`)."""
    configure_logging(log_format, log_level)
    app.on_startup.append(_freeze_on_startup)  # after the app's own startup (its database)
    try:
        web.run_app(app, host=host, port=port, loop=event_loop(), access_log=None,
                    print=lambda m: echo(m.splitlines()[0]))
    finally:
        gc.unfreeze()  # served or refused (a port in use): the caller's heap as it was
