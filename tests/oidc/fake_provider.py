"""A tiny in-test OpenID provider whose ID tokens can be tampered with, for the refusals a
real provider never produces: a token signed by another key, from another issuer, for
another sign-in (nonce), expired, or without the groups claim. Everything else behaves like
a provider (discovery, JWKS, the code flow with PKCE checked); tokens are made by joserfc."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

MODES = ("good", "bad_signature", "wrong_issuer", "nonce", "expired", "no_groups",
         "unknown_key", "wrong_audience")


@dataclass
class FakeProvider:
    mode: str = "good"
    groups: list[str] = field(default_factory=lambda: ["peernet-supporters"])
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    other: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    server: TestServer | None = None

    @property
    def issuer(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _discovery(self, _r: web.Request) -> web.Response:
        i = self.issuer
        return web.json_response({
            "issuer": i, "authorization_endpoint": i + "/authorize",
            "token_endpoint": i + "/token", "jwks_uri": i + "/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

    async def _jwks(self, _r: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, r: web.Request) -> web.Response:
        q = r.query
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"],
                            "client_id": q["client_id"]}
        raise web.HTTPSeeOther(q["redirect_uri"] + "?" + urlencode(
            {"code": code, "state": q["state"]}))

    async def _token(self, r: web.Request) -> web.Response:
        form = await r.post()
        grant = self.codes.pop(str(form["code"]), None)
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if grant is None or digest.rstrip(b"=").decode() != grant["challenge"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": "fake-user-1", "aud": grant["client_id"],
            "iat": now, "exp": now + 300, "nonce": grant["nonce"],
            "preferred_username": "fakeuser", "groups": self.groups}
        key = self.key
        header = {"alg": "RS256", "kid": "k1"}
        if self.mode == "bad_signature":
            key = self.other  # same key id, another key
        elif self.mode == "unknown_key":
            header["kid"] = "k9"
        elif self.mode == "wrong_issuer":
            claims["iss"] = "https://login.example.invalid"
        elif self.mode == "nonce":
            claims["nonce"] = "a-nonce-of-another-sign-in"
        elif self.mode == "expired":
            claims |= {"iat": now - 7200, "exp": now - 3600}
        elif self.mode == "no_groups":
            del claims["groups"]
        elif self.mode == "wrong_audience":
            claims["aud"] = "another-client"
        token = jwt.encode(header, claims, key)
        return web.json_response({"access_token": "at", "token_type": "Bearer",
                                  "id_token": token})
