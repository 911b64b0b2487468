"""One OpenID provider as peernet sees it: discovery, its keys, the code exchange and the
checks of an ID token, for the sign-in flow in `federation.webkit.oidc`.

Why each check (all before anything is stored):
- discovery is read from `<issuer>/.well-known/openid-configuration` and its `issuer` must
  equal the configured one exactly (OpenID Discovery 4.3), so a document served for another
  tenant or a look-alike host is refused (`oidc_wrong_issuer`);
- the ID token is verified with the provider's published keys (JWKS) by joserfc, Authlib's
  JOSE library: only asymmetric algorithms the provider lists, never `none` or an HMAC
  keyed with a public key (`oidc_bad_signature`); an unknown key id fetches the JWKS again
  once (the provider rotated), at most every `JWKS_REFETCH_S`;
- claims (joserfc's claims registry, on the server's clock with the configured leeway):
  `iss` exact (`oidc_wrong_issuer`), `aud` holds our client id and `azp` is ours when
  present (`oidc_bad_token`), `exp` in the future (`oidc_token_expired`), `nonce` the one
  this browser's flow sent (`oidc_nonce`, replayed or injected tokens), `sub` present;
- the code exchange carries the PKCE verifier; a provider refusing it (a code used twice,
  expired, or issued to another flow) is `oidc_code_refused`.

Discovery and JWKS are kept for `CACHE_S`. Provider answers are read up to `MAX_BODY` bytes
under `TIMEOUT_S`; a provider that cannot be reached or answers nonsense is
`oidc_unreachable` (502). Nothing here logs a token or a claim.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet

from federation.webkit.oidc_config import OidcSettings

__all__ = ["ASYMMETRIC", "OidcCode", "OidcError", "Provider"]

CACHE_S = 3600
JWKS_REFETCH_S = 30
TIMEOUT_S = 10.0
MAX_BODY = 1 << 20
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                        "ES384", "ES512", "EdDSA"})


class OidcCode(StrEnum):
    STATE = "oidc_state"  # no flow, an expired one, or a state that is not this browser's
    PROVIDER_ERROR = "oidc_provider_error"  # the provider answered with an error
    UNREACHABLE = "oidc_unreachable"
    WRONG_ISSUER = "oidc_wrong_issuer"
    BAD_SIGNATURE = "oidc_bad_signature"
    TOKEN_EXPIRED = "oidc_token_expired"  # noqa: S105 (a code, not a secret)
    NONCE = "oidc_nonce"
    BAD_TOKEN = "oidc_bad_token"  # noqa: S105
    CODE_REFUSED = "oidc_code_refused"
    NO_GROUPS = "oidc_no_groups"
    NO_ROLE = "oidc_no_role"
    NO_USERNAME = "oidc_no_username"
    ACCOUNT_DISABLED = "oidc_account_disabled"
    USERNAME_TAKEN = "oidc_username_taken"
    REQUIRED = "oidc_required"  # password login refused: this server signs in through OIDC


_STATUS: dict[OidcCode, int] = {
    OidcCode.STATE: 400, OidcCode.PROVIDER_ERROR: 400, OidcCode.UNREACHABLE: 502,
    OidcCode.WRONG_ISSUER: 401, OidcCode.BAD_SIGNATURE: 401, OidcCode.TOKEN_EXPIRED: 401,
    OidcCode.NONCE: 401, OidcCode.BAD_TOKEN: 401, OidcCode.CODE_REFUSED: 401,
    OidcCode.NO_GROUPS: 403, OidcCode.NO_ROLE: 403, OidcCode.NO_USERNAME: 403,
    OidcCode.ACCOUNT_DISABLED: 403, OidcCode.USERNAME_TAKEN: 409, OidcCode.REQUIRED: 403,
}


class OidcError(Exception):
    """A refused sign-in: stable `code`, plain-words `message`, HTTP `status` (the kit's
    `ShownError`, so it renders like the servers' own errors)."""

    def __init__(self, code: OidcCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field: str | None = None

    @property
    def status(self) -> int:
        return _STATUS[self.code]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code.value, "message": self.message, "field": None}}


@dataclass
class _Cached:
    value: dict[str, Any]
    at_s: int


class Provider:
    """Discovery, JWKS and the token endpoint of the configured issuer."""

    def __init__(self, settings: OidcSettings, client_secret: str | None,
                 now_s: Callable[[], int]) -> None:
        self.settings = settings
        self.client_secret = client_secret
        self.now_s = now_s
        self._meta: _Cached | None = None
        self._jwks: _Cached | None = None
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        return self._session

    async def _json(self, method: str, url: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        try:
            async with self._http().request(method, url, allow_redirects=False, **kw) as r:
                raw = await r.content.read(MAX_BODY + 1)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise OidcError(OidcCode.UNREACHABLE,
                            "the identity provider could not be reached") from None
        try:
            data = json.loads(raw) if len(raw) <= MAX_BODY else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OidcError(OidcCode.UNREACHABLE, "the identity provider answered nonsense")
        return status, data

    async def metadata(self) -> dict[str, Any]:
        now = self.now_s()
        if self._meta is not None and now - self._meta.at_s < CACHE_S:
            return self._meta.value
        issuer = self.settings.issuer
        status, meta = await self._json(
            "GET", issuer.rstrip("/") + "/.well-known/openid-configuration")
        if status != 200:
            raise OidcError(OidcCode.UNREACHABLE, "the identity provider has no discovery")
        if meta.get("issuer") != issuer:
            raise OidcError(OidcCode.WRONG_ISSUER,
                            "the identity provider is not the configured issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(key), str) or not meta[key].startswith(("https://",
                                                                               "http://")):
                raise OidcError(OidcCode.UNREACHABLE, f"the provider's discovery lacks {key}")
        self._meta = _Cached(meta, now)
        return meta

    async def _keys(self, *, fresh: bool = False) -> KeySet:
        now = self.now_s()
        if fresh or self._jwks is None or now - self._jwks.at_s >= CACHE_S:
            meta = await self.metadata()
            status, jwks = await self._json("GET", meta["jwks_uri"])
            if status != 200:
                raise OidcError(OidcCode.UNREACHABLE, "the provider's keys could not be read")
            self._jwks = _Cached(jwks, now)
        try:
            return KeySet.import_key_set(self._jwks.value)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise OidcError(OidcCode.UNREACHABLE, "the provider's keys are unreadable") from None

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token endpoint's answer to an authorization code (with the PKCE verifier)."""
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, "code_verifier": verifier}
        headers = {"Accept": "application/json"}
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if self.client_secret is None:
            form["client_id"] = self.settings.client_id
        elif "client_secret_basic" in methods:
            headers["Authorization"] = aiohttp.encode_basic_auth(
                _form_quote(self.settings.client_id), _form_quote(self.client_secret))
        else:
            form |= {"client_id": self.settings.client_id, "client_secret": self.client_secret}
        status, answer = await self._json("POST", meta["token_endpoint"], data=form,
                                          headers=headers)
        if status != 200:
            raise OidcError(OidcCode.CODE_REFUSED,
                            "the identity provider refused the sign-in code; start again")
        if not isinstance(answer.get("id_token"), str):
            raise OidcError(OidcCode.BAD_TOKEN, "the identity provider sent no ID token")
        return answer

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims after every check of the module docstring."""
        meta = await self.metadata()
        listed = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in listed if a in ASYMMETRIC] or ["RS256"]
        try:
            token = await self._decode(id_token, algorithms, fresh=False)
        except InvalidKeyIdError:
            if self._jwks is not None and self.now_s() - self._jwks.at_s < JWKS_REFETCH_S:
                raise OidcError(OidcCode.BAD_SIGNATURE,
                                "the ID token is signed with an unknown key") from None
            try:
                token = await self._decode(id_token, algorithms, fresh=True)
            except InvalidKeyIdError:
                raise OidcError(OidcCode.BAD_SIGNATURE,
                                "the ID token is signed with an unknown key") from None
        claims: dict[str, Any] = dict(token.claims)
        s = self.settings
        registry = jwt.JWTClaimsRegistry(
            now=self.now_s, leeway=s.leeway_s,
            iss={"essential": True, "value": s.issuer},
            aud={"essential": True, "value": s.client_id},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise OidcError(OidcCode.TOKEN_EXPIRED, "the ID token has expired") from None
        except ClaimError as exc:
            if exc.claim == "iss":
                raise OidcError(OidcCode.WRONG_ISSUER,
                                "the ID token comes from another issuer") from None
            if exc.claim == "nonce":
                raise OidcError(OidcCode.NONCE,
                                "the ID token was not issued for this sign-in") from None
            raise OidcError(OidcCode.BAD_TOKEN,
                            f"the ID token's {exc.claim} claim is not acceptable") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != s.client_id:
            raise OidcError(OidcCode.BAD_TOKEN, "the ID token was issued to another client")
        if "azp" in claims and claims["azp"] != s.client_id:
            raise OidcError(OidcCode.BAD_TOKEN, "the ID token was issued to another client")
        if not isinstance(claims["sub"], str):
            raise OidcError(OidcCode.BAD_TOKEN, "the ID token's sub claim is not a string")
        return claims

    async def _decode(self, id_token: str, algorithms: list[str], *, fresh: bool) -> jwt.Token:
        keys = await self._keys(fresh=fresh)
        try:
            return jwt.decode(id_token, keys, algorithms=algorithms)
        except InvalidKeyIdError:
            raise
        except BadSignatureError:
            raise OidcError(OidcCode.BAD_SIGNATURE,
                            "the ID token's signature does not verify") from None
        except (JoseError, ValueError, TypeError):
            raise OidcError(OidcCode.BAD_SIGNATURE,
                            "the ID token is not a token signed by the provider") from None


def _form_quote(value: str) -> str:
    """RFC 6749 2.3.1: client id and secret are form-urlencoded inside Basic auth."""
    return quote_plus(value)
