from __future__ import annotations

from federation.passwords import MIN, PasswordHasher
from federation.websecurity import csrf_equal, login_csrf, new_token, token_hash
from tests.node.conftest import MakeNode


def test_passwords_hash_verify_and_dummy() -> None:
    h = PasswordHasher(MIN)
    stored = h.hash("a good long password")
    assert stored.startswith("$argon2id$")
    assert h.verify(stored, "a good long password")
    assert not h.verify(stored, "a good long passwore")
    assert not h.verify(None, "anything")  # unknown user: same work, always False
    assert not h.verify(stored, "x" * 5000)
    assert not h.needs_rehash(stored)


def test_unknown_user_is_checked_against_a_dummy_of_the_same_cost() -> None:
    # Timing on a shared machine is too noisy to assert; check the work done instead.
    h = PasswordHasher(MIN)
    stored = h.hash("pw one two three")
    assert not h.verify(None, "wrong password")
    assert h._dummy is not None
    cost = lambda hashed: hashed.split("$")[3]  # noqa: E731 - "m=...,t=...,p=..."
    assert cost(h._dummy.decode()) == cost(stored)


def test_tokens_and_csrf() -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) == 43
    assert token_hash(a) != a and len(token_hash(a)) == 43
    assert csrf_equal(a, a) and not csrf_equal(a, b)
    assert not csrf_equal(None, None) and not csrf_equal(a, "")
    assert login_csrf(b"k" * 32, a) != login_csrf(b"k" * 32, b)


async def test_headers_on_every_response_and_errors_in_one_shape(make_node: MakeNode) -> None:
    node = await make_node(seed=False)
    for path in ("/healthz", "/api/v1/nope", "/api/v1/me"):
        r = await node.client.get(path)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Cache-Control"] == "no-store"
    r = await node.client.get("/api/v1/me")
    assert r.status == 401
    assert await r.json() == {"error": {"code": "unauthenticated", "field": None,
                                        "message": "log in or send a valid API token"}}
    r = await node.client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await node.client.get("/static/style.css")
    assert r.status == 200 and "Cache-Control" not in r.headers
