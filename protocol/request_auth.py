"""Per-hop request signatures (the `Authorization: Peernet ...` header).

Every federation HTTP request is signed by the node that sends it on this hop (a node to
the hub, the hub to a node). The signature (context `request`) covers the canonical bytes
of

    {"body_sha256": b64u(SHA-256(raw body)), "destination": "<receiver>", "method": "PUT",
     "origin": "<sender>", "path": "/fed/v1/send/<txn>", "ts": <ms>}

`path` is the raw path as sent (percent-encoding untouched) without the query string; the
body hash is over the raw body bytes, of the empty string when there is none. The header
is emitted exactly as

    Peernet origin="a", destination="b", ts=1700000000000, key_id="ed25519:1", sig="..."

and parsed per RFC 7235 (scheme case-insensitive, parameters in any order, optional
whitespace around `,` and `=`, values as token or quoted-string), but each of the five
parameters exactly once and no others. Any parsing problem is `bad_request_signature`;
`destination` other than the receiver is `wrong_recipient`; `ts` more than 5 minutes ahead
is `from_future`, more than 5 minutes behind is `expired`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nacl.signing

from protocol.canonical import MAX_SAFE_INT, canonical_bytes
from protocol.encoding import b64u, sha256_b64u, unb64u
from protocol.envelope import SKEW_MS, KeyResolver
from protocol.errors import Code, ProtocolError
from protocol.ids import check_node_id, is_key_id, is_node_id, key_id
from protocol.signing import SIGNATURE_BYTES, Context, sign, verify

__all__ = [
    "MAX_HEADER_LENGTH",
    "RequestAuth",
    "parse_authorization",
    "request_signing_bytes",
    "sign_request",
    "verify_request",
]

MAX_HEADER_LENGTH = 1024
_SCHEME = re.compile(r"[ \t]*peernet[ \t]+(.*)", re.IGNORECASE | re.DOTALL)
_PARAM = re.compile(
    r'[ \t]*([a-z_]+)[ \t]*=[ \t]*(?:"([^"\\\x00-\x1f\x7f]*)"|([!#$%&\'*+.^_`|~0-9A-Za-z-]+))[ \t]*'
)
_PARAMS = frozenset(("origin", "destination", "ts", "key_id", "sig"))
_TS = re.compile(r"0|[1-9][0-9]{0,15}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_PATH = re.compile(r"/[\x21-\x7e]{0,2047}")


@dataclass(frozen=True)
class RequestAuth:
    origin: str
    destination: str
    ts: int
    key_id: str
    sig: bytes


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(Code.BAD_REQUEST_SIGNATURE, detail)


def _strip_query(path: str) -> str:
    return path.split("?", 1)[0]


def request_signing_bytes(
    *, method: str, path: str, origin: str, destination: str, ts: int, body: bytes
) -> bytes:
    """Canonical bytes of the signed request object (query string dropped from `path`)."""
    path = _strip_query(path)
    if type(method) is not str or _METHOD.fullmatch(method) is None:
        raise ProtocolError(Code.MALFORMED, "method must be an upper-case HTTP token")
    if type(path) is not str or _PATH.fullmatch(path) is None:
        raise ProtocolError(Code.MALFORMED, "path must be a raw absolute ASCII path")
    if not isinstance(body, bytes | bytearray):
        raise ProtocolError(Code.MALFORMED, "body must be bytes")
    return canonical_bytes(
        {
            "method": method,
            "path": path,
            "origin": origin,
            "destination": destination,
            "ts": ts,
            "body_sha256": sha256_b64u(bytes(body)),
        }
    )


def sign_request(
    *,
    signing_key: nacl.signing.SigningKey,
    key_version: int,
    method: str,
    path: str,
    origin: str,
    destination: str,
    ts: int,
    body: bytes,
) -> str:
    """The full `Authorization` header value for one request."""
    check_node_id(origin)
    check_node_id(destination)
    if type(ts) is not int or not 0 <= ts <= MAX_SAFE_INT:
        raise ProtocolError(Code.MALFORMED, "ts must be integer milliseconds")
    kid = key_id(key_version)
    data = request_signing_bytes(
        method=method, path=path, origin=origin, destination=destination, ts=ts, body=body
    )
    signature = b64u(sign(signing_key, Context.REQUEST, data))
    return (
        f'Peernet origin="{origin}", destination="{destination}", ts={ts}, '
        f'key_id="{kid}", sig="{signature}"'
    )


def parse_authorization(value: str) -> RequestAuth:
    """Parse a `Peernet` Authorization header; `bad_request_signature` if garbled."""
    if type(value) is not str or len(value) > MAX_HEADER_LENGTH:
        raise _bad("missing or oversized Authorization header")
    scheme = _SCHEME.fullmatch(value)
    if scheme is None:
        raise _bad("not a Peernet Authorization header")
    params: dict[str, str] = {}
    for part in scheme.group(1).split(","):
        match = _PARAM.fullmatch(part)
        if match is None:
            raise _bad("garbled Authorization parameter")
        name, quoted, token = match.groups()
        if name in params or name not in _PARAMS:
            raise _bad("unknown or repeated Authorization parameter")
        params[name] = quoted if quoted is not None else token
    if params.keys() != _PARAMS:
        raise _bad("missing Authorization parameter")
    if not (is_node_id(params["origin"]) and is_node_id(params["destination"])):
        raise _bad("invalid origin or destination")
    if _TS.fullmatch(params["ts"]) is None or int(params["ts"]) > MAX_SAFE_INT:
        raise _bad("invalid ts")
    if not is_key_id(params["key_id"]):
        raise _bad("invalid key_id")
    try:
        sig = unb64u(params["sig"])
    except ProtocolError as exc:
        raise _bad("invalid sig encoding") from exc
    if len(sig) != SIGNATURE_BYTES:
        raise _bad("sig must be 64 bytes")
    return RequestAuth(
        origin=params["origin"],
        destination=params["destination"],
        ts=int(params["ts"]),
        key_id=params["key_id"],
        sig=sig,
    )


def verify_request(
    header: str | None,
    *,
    method: str,
    path: str,
    body: bytes,
    me: str,
    now_ms: int,
    keys: KeyResolver,
) -> str:
    """Check a request's `Authorization` header; return the verified origin node id."""
    if header is None:
        raise _bad("missing Authorization header")
    auth = parse_authorization(header)
    if auth.destination != me:
        raise ProtocolError(Code.WRONG_RECIPIENT, "request is for another node")
    if auth.ts > now_ms + SKEW_MS:
        raise ProtocolError(Code.FROM_FUTURE, "request ts is ahead of the clock skew")
    if auth.ts < now_ms - SKEW_MS:
        raise ProtocolError(Code.EXPIRED, "request ts is too old")
    verify_key = keys.verify_key(auth.origin, auth.key_id, auth.ts)
    try:
        data = request_signing_bytes(
            method=method,
            path=path,
            origin=auth.origin,
            destination=auth.destination,
            ts=auth.ts,
            body=body,
        )
    except ProtocolError as exc:
        raise _bad("request method or path cannot be signed") from exc
    verify(verify_key, Context.REQUEST, data, auth.sig, Code.BAD_REQUEST_SIGNATURE)
    return auth.origin
