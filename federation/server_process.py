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
import contextlib
import gc
import os
import signal
import traceback
from collections.abc import Callable
from typing import Literal

import click
from aiohttp import web

from federation.cli_errors import guard
from federation.observe.logs import configure_logging

__all__ = ["freeze_heap", "run_server", "run_workers"]


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
               log_format: Literal["text", "json"] = "text", log_level: str = "INFO",
               reuse_port: bool = False) -> None:
    """Serve `app` until interrupted; `echo` gets aiohttp's one-line startup notice. Logs go
    to stderr as `log_format` (`federation.observe.logs`)."""
    configure_logging(log_format, log_level)
    app.on_startup.append(_freeze_on_startup)  # after the app's own startup (its database)
    try:
        web.run_app(app, host=host, port=port, loop=event_loop(), access_log=None,
                    reuse_port=reuse_port or None, print=lambda m: echo(m.splitlines()[0]))
    finally:
        gc.unfreeze()  # served or refused (a port in use): the caller's heap as it was


def run_workers(make_app: Callable[[], web.Application], *, workers: int, host: str, port: int,
                echo: Callable[[str], None], log_format: Literal["text", "json"] = "text",
                log_level: str = "INFO") -> int:
    """Serve one address from `workers` processes; the exit status.

    Each worker is forked from this process after it loaded the configuration and unlocked
    the key files (no passphrase or key travels to the workers, and none is asked twice),
    then builds its own app, database pool and event loop, and listens with SO_REUSEPORT:
    the kernel spreads new connections over the workers' sockets. Everything the workers
    share lives in the database (`docs/TEAM.md`, several processes). This process only
    watches: SIGTERM or SIGINT goes on to every worker; when one worker ends, the others
    are stopped and its status is this process's, so a supervisor restarts the whole."""
    if workers <= 1:
        run_server(make_app(), host=host, port=port, echo=echo, log_format=log_format,
                   log_level=log_level)
        return 0
    pids: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: serve, then leave without the parent's exit handlers
            status = 1
            try:
                guard(lambda: run_server(make_app(), host=host, port=port, echo=echo,
                                         log_format=log_format, log_level=log_level,
                                         reuse_port=True))
                status = 0
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
            except click.ClickException as exc:  # an expected failure: one line, as without
                exc.show()  # --workers (the CLI's guard made it; a port in use is one too)
                status = exc.exit_code
            except BaseException:  # noqa: BLE001 - reported, then this worker ends
                traceback.print_exc()
            finally:
                os._exit(status)
        pids.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        remaining = set(pids)
        first: int | None = None
        while remaining:
            pid, raw = os.wait()
            remaining.discard(pid)
            if first is None:  # the first to end sets the status and ends the others
                code = os.waitstatus_to_exitcode(raw)
                # Killed by a signal: 128 + its number, as a shell says it; a stop asked for
                # (SIGTERM or SIGINT, from here or the supervisor) is a clean end.
                first = 0 if -code in (signal.SIGTERM, signal.SIGINT) else (
                    128 - code if code < 0 else code)
                forward(signal.SIGTERM, None)
        return first or 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
