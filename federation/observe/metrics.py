"""Prometheus metrics for node, hub and helper (prometheus-client).

One registry per application, not the process-global one: a test process (and the demo)
runs several servers, each with its own figures. Two kinds of figure:

- counted in this process as requests pass (`middleware`): request latency by route
  template (never the path itself, which carries record ids) and refusals by stable code;
- read from the database when scraped (`samplers`): outbox depth, delivery latency, roster
  age and the like. Read at scrape time they are the same whichever process of a server is
  scraped, and survive restarts.

Access (`setup_metrics`): `/metrics` on the main address answers only to the bearer
`metrics_token`; with `metrics_port` set it is also served on its own listener
(`metrics_host`, loopback by default) where the address is the protection. With neither,
`/metrics` answers 404 like any unknown path, and requests are not counted (only the
samplers' figures would be left, and nobody can read them).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from federation.observe.settings import ObserveSettings

__all__ = ["METRICS", "Sampler", "ServerMetrics", "setup_metrics"]

log = logging.getLogger("peernet.metrics")

Sampler = Callable[["ServerMetrics"], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MAX_ERROR_BODY = 4096  # a refusal's JSON body is small; larger bodies are not parsed


_MAX_CACHED = 2048


class ServerMetrics:
    """The registry of one server and the figures every server has."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.registry = CollectorRegistry()
        reg = self.registry
        self.request_seconds = Histogram(
            "peernet_http_request_duration_seconds",
            "Time to answer a request, by route template and method.",
            ["route", "method"], registry=reg, buckets=_BUCKETS)
        self.responses = Counter(
            "peernet_http_responses", "Responses sent, by route template and status class.",
            ["route", "status"], registry=reg)
        self.refusals = Counter(
            "peernet_http_refusals", "Requests refused, by stable error code.",
            ["code"], registry=reg)
        self.sampler_errors = Counter(
            "peernet_metrics_sampler_errors", "Scrapes where one figure could not be read.",
            ["sampler"], registry=reg)
        self._gauges: dict[str, Gauge] = {}
        # Labelled children by label values: `labels()` takes a lock and checks its
        # arguments on every call, a few microseconds on each request. Bounded by the
        # route table (templates, never paths) times the methods and status classes.
        self._timers: dict[tuple[str, str], Any] = {}
        self._counts: dict[tuple[str, int], Any] = {}
        self.samplers: list[tuple[str, Sampler]] = []
        self.listening: list[Any] = []  # the separate listener's addresses, once started

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        """The gauge `name`, made on first use (samplers refill it at each scrape)."""
        g = self._gauges.get(name)
        if g is None:
            g = Gauge(name, doc, list(labels), registry=self.registry)
            self._gauges[name] = g
        return g

    def add_sampler(self, name: str, sampler: Sampler) -> None:
        self.samplers.append((name, sampler))

    async def render(self) -> bytes:
        """Run every sampler, then the exposition text. A failing sampler is counted and
        logged by name (never its data) and leaves its gauges as they were."""
        for name, sampler in self.samplers:
            try:
                await sampler(self)
            except Exception as exc:
                self.sampler_errors.labels(name).inc()
                log.warning("metrics sampler %s failed: %s", name, type(exc).__name__)
        return bytes(generate_latest(self.registry))

    def middleware(self) -> Any:
        @web.middleware
        async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
            start = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                if status >= 400:
                    self._count_refusal(response)
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                route = _route_label(request)
                key = (route, request.method)
                timer = self._timers.get(key)
                if timer is None:
                    timer = self.request_seconds.labels(*key)
                    if len(self._timers) < _MAX_CACHED:  # a client may send any method
                        self._timers[key] = timer
                timer.observe(time.perf_counter() - start)
                ckey = (route, status // 100)
                count = self._counts.get(ckey)
                if count is None:
                    count = self.responses.labels(route, f"{ckey[1]}xx")
                    if len(self._counts) < _MAX_CACHED:
                        self._counts[ckey] = count
                count.inc()

        return observe

    def _count_refusal(self, response: web.StreamResponse) -> None:
        body = getattr(response, "body", None)
        code = "http_" + str(response.status)
        if isinstance(body, bytes) and len(body) <= _MAX_ERROR_BODY:
            try:
                err = json.loads(body).get("error", {})
                if isinstance(err, dict) and isinstance(err.get("code"), str):
                    code = err["code"][:40]
            except (ValueError, AttributeError):
                pass
        self.refusals.labels(code).inc()


def _route_label(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info is not None else None
    if resource is None:
        return "unmatched"
    return resource.canonical


METRICS: web.AppKey[ServerMetrics] = web.AppKey("peernet_metrics", ServerMetrics)


def _authorized(request: web.Request, token: str | None) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (token is not None and scheme.lower() == "bearer"
            and hmac.compare_digest(given.encode(), token.encode()))


def _handler(metrics: ServerMetrics, token: str | None, *, open_: bool) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        if not open_ and not _authorized(request, token):
            if token is None:
                raise web.HTTPNotFound()
            return web.json_response(
                {"error": {"code": "unauthenticated", "message": "send the metrics token",
                           "field": None}},
                status=401, headers={"WWW-Authenticate": "Bearer"})
        if open_ and token is not None and not _authorized(request, token):
            return web.json_response(
                {"error": {"code": "unauthenticated", "message": "send the metrics token",
                           "field": None}}, status=401)
        body = await metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve


def setup_metrics(app: web.Application, settings: ObserveSettings, server: str) -> ServerMetrics:
    """Give `app` its metrics: the request middleware (outermost, so it sees every
    answer), `/metrics` on the main address behind the token, and the separate listener
    when `metrics_port` is set. Returns the registry for the server's own samplers."""
    metrics = ServerMetrics(server)
    app[METRICS] = metrics
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token is not None or settings.metrics_port is not None:
        # Counted only where they can be read: with neither, nobody scrapes them, and the
        # counting is a layer of every request (2-3 % of the node's loop under load).
        app.middlewares.insert(0, metrics.middleware())
    app.router.add_get("/metrics", _handler(metrics, token, open_=False), name="metrics")
    if settings.metrics_port is not None:
        app.cleanup_ctx.append(_listener(metrics, token, settings.metrics_host,
                                         settings.metrics_port))
    return metrics


def _listener(metrics: ServerMetrics, token: str | None, host: str, port: int
              ) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        side = web.Application()
        side.router.add_get("/metrics", _handler(metrics, token, open_=True))
        runner = web.AppRunner(side, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        metrics.listening = list(runner.addresses)
        try:
            yield
        finally:
            await runner.cleanup()

    return ctx
