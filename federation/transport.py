"""HTTP transport: `PUT /fed/v1/send/{txn_id}` on the receiving side, and the hop client.

Receiving (`send_handler`, used by the node and the hub):

1. the body is read with its own limit (`MAX_BATCH_BYTES`; the node's page/API limit does
   not apply to this route) -> 413 `too_large`;
2. the per-hop request signature (`protocol.request_auth.verify_request`) is checked first,
   before any envelope is looked at: `destination` must be this server, the signer a roster
   member, `ts` within the skew window -> 401/403/421 with the protocol code;
3. the batch is parsed (`protocol.batch.parse_batch`): not `{"envelopes": [...]}` ->
   400 `malformed`; more than 50 -> 413 `batch_too_large` (the whole request);
4. the `BatchReceiver` (the inbox, or the hub's relay + inbox) returns one result per
   envelope, in batch order: `{"results": [{"msg_id", "status", "code"}, ...]}`.

Whole-request refusals answer the JSON error shape with the protocol's HTTP status table.
The `txn_id` is the sender's retry key for the HTTP request only (idempotency comes from the
inbox's `UNIQUE(from, msg_id)`), so it is only checked for shape: 1..64 of `[A-Za-z0-9_-]`
as sent (percent-encoding is not decoded first), else 400 `malformed` before the body is
read. Senders use a fresh ULID.

Sending (`HopClient.send_batch`): signs the request as this server for the hop's
destination (the final recipient when direct, the hub when relayed), never follows a
redirect (a 3xx is a peer error: the hop is tried through the hub), reads at most 1 MiB of
answer, and parses the positional results strictly. Transport failures and error answers
are wrapped as `FederationError` (`peer_unreachable`, `peer_error`), never passed through.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import aiohttp
from aiohttp import web
from nacl.signing import SigningKey

from federation.clock import Clock
from federation.errors import FedCode, FederationError, error_body
from federation.keystore import NodeKeys
from federation.websecurity import BODY_READ_TIMEOUT_S
from protocol.batch import (
    MAX_BATCH_BYTES,
    build_batch,
    build_batch_response,
    parse_batch,
    parse_batch_response,
)
from protocol.envelope import KeyResolver
from protocol.errors import HTTP_STATUS, Code, ProtocolError
from protocol.ids import new_ulid
from protocol.messages import BatchResult
from protocol.request_auth import sign_request, verify_request

__all__ = [
    "SEND_PATH",
    "BatchReceiver",
    "HopClient",
    "PeerError",
    "read_bounded",
    "send_handler",
    "send_route",
]

log = logging.getLogger("peernet.federation.transport")

SEND_PATH = "/fed/v1/send/{txn_id}"
_TXN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A batch response: at most 50 results of about 100 bytes; anything near this is not one.
_MAX_RESPONSE_BYTES = 1 << 20


class BatchReceiver(Protocol):
    async def receive(self, origin: str, items: list[object]) -> list[BatchResult]:
        """One result per item, in order. `origin` is the verified per-hop signer."""
        ...


def _refuse(code: str, message: str) -> web.Response:
    status = HTTP_STATUS.get(Code(code), 400) if code in Code._value2member_map_ else 400
    return web.json_response(error_body(code, message), status=status)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def send_handler(
    *,
    me: str,
    keys: Callable[[], KeyResolver],
    clock: Clock,
    receiver: BatchReceiver,
    on_verified: Callable[[str], Awaitable[None]] | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of `PUT /fed/v1/send/{txn_id}` (see module docstring)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        # The grammar holds for the path as sent: "%41" is not "A" (the per-hop signature
        # covers the raw path, and a txn_id has one spelling).
        raw_txn = request.raw_path.split("?", 1)[0].rsplit("/", 1)[-1]
        if _TXN.fullmatch(raw_txn) is None:
            return _refuse(Code.MALFORMED, "txn_id must be 1-64 base64url characters")
        try:  # a slow body must not hold the handler (slowloris)
            async with asyncio.timeout(BODY_READ_TIMEOUT_S):
                body = await _read_limited(request, MAX_BATCH_BYTES)
        except TimeoutError:
            return web.json_response(error_body(FedCode.REQUEST_TIMEOUT, "body not received in "
                                                "time"), status=408)
        except ConnectionResetError:
            # The sender hung up mid-body (its own timeout, or it stopped): nothing was read,
            # nothing is stored, and no one is left to answer; not a server error.
            return _refuse(Code.MALFORMED, "connection lost before the whole body arrived")
        if body is None:
            return _refuse(Code.TOO_LARGE, "batch body too large")
        try:
            origin = verify_request(
                request.headers.get("Authorization"),
                method=request.method,
                path=request.raw_path,
                body=body,
                me=me,
                now_ms=clock.now_ms(),
                keys=keys(),
            )
            items = parse_batch(body)
        except ProtocolError as exc:
            return _refuse(exc.code.value, exc.detail or exc.code.value)
        if on_verified is not None:
            await on_verified(origin)
        results = await receiver.receive(origin, items)
        return web.Response(body=build_batch_response(results), content_type="application/json")

    return handler


def send_route(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.RouteDef:
    return web.put(SEND_PATH, handler)


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """A response's whole body, or None as soon as it is known to exceed `limit` bytes
    (`StreamReader.read(n)` returns what has arrived so far, not n bytes)."""
    if resp.content_length is not None and resp.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class PeerError(FederationError):
    """A peer's error answer, wrapped: its HTTP status and stable code are kept for retry
    decisions, its message is not passed on."""

    def __init__(self, peer: str, status: int, peer_code: str) -> None:
        super().__init__(FedCode.PEER_ERROR, f"{peer} answered {status} {peer_code}")
        self.peer_status = status
        self.peer_code = peer_code


class HopClient:
    """Signs and sends batches for this server (one per-hop signature per request)."""

    def __init__(
        self,
        me: str,
        keys: NodeKeys,
        clock: Clock,
        http: aiohttp.ClientSession,
        timeout_s: float = 15,
        signer: Callable[[], tuple[int, SigningKey]] | None = None,
    ) -> None:
        self.me = me
        self.keys = keys
        # (key version, key) to sign each request with; the service passes the key the
        # roster lists (`FederationService.sender`), so a rotation takes effect here too.
        self.signer = signer or (lambda: (keys.key_version, keys.signing_key))
        self.clock = clock
        self.http = http
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(5.0, timeout_s))

    async def send_batch(
        self, base_url: str, hop_destination: str, envelopes: Sequence[bytes]
    ) -> list[BatchResult]:
        now = self.clock.now_ms()
        txn = new_ulid(now, os.urandom(10))
        path = SEND_PATH.format(txn_id=txn)
        body = build_batch(list(envelopes))
        key_version, signing_key = self.signer()
        auth = sign_request(
            signing_key=signing_key,
            key_version=key_version,
            method="PUT",
            path=path,
            origin=self.me,
            destination=hop_destination,
            ts=now,
            body=body,
        )
        url = base_url.rstrip("/") + path
        try:
            async with self.http.put(
                url,
                data=body,
                headers={"Authorization": auth, "Content-Type": "application/json"},
                timeout=self.timeout,
                # A peer's redirect is never followed: the signed request is for this hop
                # only, and a peer must not point this server at another host.
                allow_redirects=False,
            ) as resp:
                status = resp.status
                data = await read_bounded(resp, _MAX_RESPONSE_BYTES)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise FederationError(
                FedCode.PEER_UNREACHABLE, f"{hop_destination}: {type(exc).__name__}"
            ) from None
        if data is None:
            raise FederationError(FedCode.PEER_ERROR, f"{hop_destination} answered too much")
        if status != 200:
            raise PeerError(hop_destination, status, _error_code(data))
        try:
            return parse_batch_response(data, expected=len(envelopes))
        except ProtocolError:
            raise FederationError(
                FedCode.PEER_ERROR, f"{hop_destination} sent a malformed batch response"
            ) from None


def _error_code(data: bytes) -> str:
    """The stable code of a peer's error body (for logs and retry decisions), or `unknown`."""
    try:
        doc = json.loads(data)
        code = doc["error"]["code"]
        if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code):
            return code
    except (ValueError, KeyError, TypeError):
        pass
    return "unknown"
