"""OpenID Connect sign-in on a real node against the real provider (panva/oidc-provider on
Node 20), over HTTP through the provider's login form: first sign-in creates the user with
the mapped role, the provider's groups rule every later sign-in, refusals carry a stable
code and change nothing stored, local accounts stay (and can be switched off), sign-out
goes on to the provider's end-session endpoint."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.reliability_report import record
from tests.oidc.conftest import (
    LOCAL_PASSWORD,
    USERS,
    MakeOidcNode,
    code_of,
    session_for,
    sign_in,
    to_callback,
)
from tests.oidc.real_provider import client, real_provider

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


async def test_first_sign_in_creates_the_user_with_the_mapped_role(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        node = await make_oidc_node(op.issuer, port=port)
        async with session_for(base) as s:
            status, page = await sign_in(s, base, "alice")
            assert status == 200 and 'data-kit="oidc-done"' in page
            home = await s.get(base + "/", headers={"Accept": "text/html"})
            assert home.status == 200 and "Log out alice" in await home.text()
        async with session_for(base) as s:
            status, _ = await sign_in(s, base, "cora")  # in two mapped groups
            assert status == 200
        users = {r.username: (r.role, r.team) for r in (await node.state())["users"]}
        assert users["alice"] == ("peer_supporter", "north")
        assert users["cora"] == ("coordinator", "north")  # the first matching rule decides
        created = [r for r in await node.audit("user.create") if '"via":"oidc"' in r.detail]
        assert len(created) == 2
        logins = await node.audit("login")
        assert len(logins) == 2 and all('"via":"oidc"' in r.detail for r in logins)


async def test_groups_at_the_provider_rule_every_sign_in(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        node = await make_oidc_node(op.issuer, port=port)
        async with session_for(base) as first:
            assert (await sign_in(first, base, "alice"))[0] == 200
            # Promoted at the provider: the next sign-in carries the new role.
            op.set_users({**USERS, "alice": {**USERS["alice"],
                                             "groups": ["peernet-coordinators"]}})
            async with session_for(base) as second:
                assert (await sign_in(second, base, "alice"))[0] == 200
            users = {r.username: r.role for r in (await node.state())["users"]}
            assert users["alice"] == "coordinator"
            assert len(await node.audit("user.update")) == 1
            # The old session carried the old role: it ended with the change.
            r = await first.get(base + "/api/v1/me", allow_redirects=False)
            assert r.status == 401
            # Removed from every peernet group: refused, and what was open is ended.
            async with session_for(base) as third:
                assert (await sign_in(third, base, "alice"))[0] == 200
                op.set_users({**USERS, "alice": {**USERS["alice"], "groups": ["unrelated"]}})
                async with session_for(base) as fourth:
                    status, page = await sign_in(fourth, base, "alice")
                assert (status, code_of(page)) == (403, "oidc_no_role")
                assert "no access here" in page
                r = await third.get(base + "/api/v1/me", allow_redirects=False)
                assert r.status == 401
        refused = await node.audit("login.oidc.refused")
        assert len(refused) == 1 and '"sessions_ended":2' in refused[0].detail
        assert [u.username for u in (await node.state())["users"]].count("alice") == 1
    record("security-oidc-group-removal", area="security",
           case="a person removed from the peernet groups at the identity provider",
           how="real oidc-provider; sign in, change the person's groups at the provider, "
               "sign in again (promotion), then remove every peernet group",
           result="role follows the provider at the next sign-in; with no group left the "
                  "sign-in is refused oidc_no_role and every open session ends",
           figures={"sessions_ended": 2})


async def test_unmapped_and_missing_groups_are_refused_and_nothing_is_stored(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        node = await make_oidc_node(op.issuer, port=port)
        before = await node.state()
        for login, code in (("nora", "oidc_no_role"), ("ghost", "oidc_no_groups"),
                            ("local", "oidc_username_taken")):
            async with session_for(base) as s:
                status, page = await sign_in(s, base, login)
                assert code_of(page) == code, login
                assert status in (403, 409)
                assert "peernet_session" not in {c.key for c in s.cookie_jar}
        assert await node.state() == before
        refused = await node.audit("login.oidc.refused")
        assert [r.outcome for r in refused] == ["refused"] * 3
        # The local account is untouched and still logs in with its password.
        async with session_for(base) as s:
            page = await (await s.get(base + "/login")).text()
            token = CSRF_RE.search(page)
            assert token is not None and 'data-kit="oidc-start"' in page
            r = await s.post(base + "/login", data={"username": "local",
                                                    "password": LOCAL_PASSWORD,
                                                    "csrf": token.group(1)},
                             allow_redirects=False)
            assert r.status == 303


async def test_oidc_only_refuses_password_login(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        node = await make_oidc_node(op.issuer, port=port, only=True)
        before = await node.state()
        async with session_for(base) as s:
            page = await (await s.get(base + "/login")).text()
            assert 'name="password"' not in page and 'data-kit="oidc-start"' in page
            pre = {c.key: c.value for c in s.cookie_jar}["peernet_pre"]
            from federation.webkit.login import login_csrf
            from node.core.appkeys import LOGIN_SECRET
            token = login_csrf(node.client.app[LOGIN_SECRET], pre)
            r = await s.post(base + "/login", data={"username": "local",
                                                    "password": LOCAL_PASSWORD,
                                                    "csrf": token}, allow_redirects=False)
            assert r.status == 403 and code_of(await r.text()) == "oidc_required"
            assert "peernet_session" not in {c.key for c in s.cookie_jar}
            assert (await sign_in(s, base, "alice"))[0] == 200  # the provider still works
        after = await node.state()
        assert after["users"] != before["users"]  # alice was created by her sign-in
        assert len(after["sessions"]) == 1


async def test_sign_out_ends_the_session_and_goes_to_the_provider(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        node = await make_oidc_node(op.issuer, port=port)
        async with session_for(base) as s:
            assert (await sign_in(s, base, "alice"))[0] == 200
            page = await (await s.get(base + "/", headers={"Accept": "text/html"})).text()
            csrf = CSRF_RE.search(page)
            assert csrf is not None
            r = await s.post(base + "/logout", data={"csrf": csrf.group(1)},
                             allow_redirects=False)
            assert r.status == 200 and 'data-kit="oidc-signed-out"' in await r.text()
            end = re.search(r'content="0;url=([^"]+)"', await r.text())
            assert end is not None
            url = end.group(1).replace("&amp;", "&")
            assert url.startswith(op.issuer + "/session/end?")
            q = parse_qs(urlsplit(url).query)
            assert q["client_id"] == ["peernet-node"]
            assert q["post_logout_redirect_uri"] == [base + "/login"]
            assert q["id_token_hint"][0].count(".") == 2
            assert (await node.state())["sessions"] == []
            r = await s.get(url)  # the provider's own sign-out confirmation
            assert r.status == 200


async def test_a_replayed_code_or_callback_is_refused(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        node = await make_oidc_node(op.issuer, port=port)
        async with session_for(base) as s:
            callback = await to_callback(s, base, "alice")
            assert (await s.get(callback, allow_redirects=False)).status == 200
            before = await node.state()
            # The same callback again: its flow was used up.
            r = await s.get(callback, allow_redirects=False)
            assert (r.status, code_of(await r.text())) == (400, "oidc_state")
            # The old code under a fresh flow's state: the provider refuses the code.
            start = await s.get(base + "/login/oidc", allow_redirects=False)
            state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
            code = parse_qs(urlsplit(callback).query)["code"][0]
            r = await s.get(base + "/login/oidc/callback",
                            params={"code": code, "state": state}, allow_redirects=False)
            assert (r.status, code_of(await r.text())) == (401, "oidc_code_refused")
            assert await node.state() == before
    record("security-oidc-replayed-code", area="security",
           case="an authorization code or callback replayed at the node",
           how="real oidc-provider; a used callback URL visited again, and its code sent "
               "under a fresh flow's state",
           result="oidc_state (flow used up) and oidc_code_refused (provider refuses the "
                  "code); no user, session or token changed")


async def test_an_expired_id_token_is_refused(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        node = await make_oidc_node(op.issuer, port=port)
        before = await node.state()
        async with session_for(base) as s:
            # The node's clock runs two hours ahead of the provider's, whose ID tokens
            # live one hour: the token is expired on arrival.
            node.clock.advance(2 * 3600 * 1000)
            r = await s.get(await to_callback(s, base, "alice"), allow_redirects=False)
            assert (r.status, code_of(await r.text())) == (401, "oidc_token_expired")
        assert await node.state() == before


async def test_a_provider_answering_for_another_issuer_is_refused(
        tmp_path: Path, port: int, make_oidc_node: MakeOidcNode) -> None:
    base = f"http://127.0.0.1:{port}"
    async with real_provider(tmp_path, [client("peernet-node", base)], USERS) as op:
        lookalike = op.issuer.replace("127.0.0.1", "localhost")
        node = await make_oidc_node(lookalike, port=port)
        before = await node.state()
        async with session_for(base) as s:
            r = await s.get(base + "/login/oidc", allow_redirects=False)
            assert (r.status, code_of(await r.text())) == (401, "oidc_wrong_issuer")
        assert await node.state() == before
