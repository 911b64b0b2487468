"""The login throttle behind a reverse proxy, through real servers (node and hub) on SQLite and
PostgreSQL.

- `trusted_proxies = ["127.0.0.1"]`: two clients behind the proxy (both connecting from
  127.0.0.1, told apart only by `X-Forwarded-For`) are throttled separately: one guessing
  does not hold back the other (before: every client shared the proxy's address, so the
  per-address counters locked everyone out together);
- no trusted proxy (the default): a client's own `X-Forwarded-For` is ignored, so changing
  it on every guess does not escape the throttle;
- a setting that is not an IP or CIDR is refused with `config`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from bench.reliability_report import record
from federation.client_address import parse_trusted, pick_client
from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.passwords import MIN, PasswordHasher
from hub.app import create_app as create_hub_app
from hub.appkeys import DB as HUB_DB
from hub.config import HubSettings
from hub.errors import HubError
from hub.users import accounts as hub_users
from node.accounts.users import create_user
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.errors import NodeError
from node.core.pseudonym import Pseudonymizer
from node.core.schemas import UserIn
from node.core.vocabulary import Role
from node.web.app import create_app as create_node_app
from tests.security.test_login_throttle import (
    PASSWORD,
    START_MS,
    Server,
    _login_form,
)

MakeServer = Callable[[str, list[str]], Awaitable[Server]]


@pytest.fixture
async def make_server(tmp_path: Path, db_url: str) -> AsyncIterator[MakeServer]:
    made: list[TestServer] = []

    async def factory(kind: str, trusted: list[str]) -> Server:
        d = tmp_path / f"{kind}{len(made)}"
        d.mkdir()
        clock, hasher = FakeClock(START_MS), PasswordHasher(MIN)
        if kind == "node":
            settings = NodeSettings.load(None, node_id="sec-node", name="Security Node",
                                         data_dir=d, db_url=db_url, trusted_proxies=trusted)
            app = create_node_app(settings, clock=clock, keys=NodeKeys.generate(),
                                  pseudonyms=Pseudonymizer(b"s" * 32), hasher=hasher)
        else:
            hub_settings = HubSettings(hub_id="sec-hub", name="Security Hub", data_dir=d,
                                       db_url=db_url, operator_token=SecretStr("o" * 40),
                                       trusted_proxies=trusted)
            app = create_hub_app(hub_settings, clock=clock, keys=NodeKeys.generate())
            app[hub_users.HASHER] = hasher
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        made.append(server)
        if kind == "node":
            await create_user(NodeContext.of(app), None, UserIn(
                username="sup", password=PASSWORD, role=Role.PEER_SUPPORTER, team="main"))
        else:
            await hub_users.create_user(app[HUB_DB], hasher, username="sup",
                                        password=PASSWORD, role="board_analyst",
                                        now_ms=START_MS)
        return Server(kind, server, app, clock)

    yield factory
    for s in made:
        await s.close()


async def _login(srv: Server, browser: aiohttp.ClientSession, csrf: str, password: str,
                 forwarded_for: str) -> int:
    async with browser.post(srv.url("/login"),
                            data={"csrf": csrf, "username": "sup", "password": password},
                            headers={"Accept": "text/html", "X-Forwarded-For": forwarded_for},
                            allow_redirects=False) as r:
        await r.read()
        return r.status


@pytest.mark.parametrize("kind", ["node", "hub"])
async def test_clients_behind_a_trusted_proxy_are_throttled_separately(
        make_server: MakeServer, kind: str) -> None:
    srv = await make_server(kind, ["127.0.0.1"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as guesser, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as supporter:
        csrf = await _login_form(srv, guesser)
        got = [await _login(srv, guesser, csrf, "wrong guess", "203.0.113.7")
               for _ in range(6)]
        assert got == [401] * 5 + [429]
        # The same proxy forwards the supporter from another address: not held back.
        status = await _login(srv, supporter, await _login_form(srv, supporter), PASSWORD,
                              "198.51.100.20")
        assert status == 303
        # The guesser is still held back, whatever it writes left of the proxy's entry.
        assert await _login(srv, guesser, csrf, PASSWORD, "198.51.100.20, 203.0.113.7") == 429
    record(f"security-login-throttle-proxy-{kind}", area="security",
           case=f"clients behind a trusted reverse proxy on the {kind} login",
           how="a real server with trusted_proxies = 127.0.0.1; one forwarded client guesses "
               "6 times, another forwarded client logs in",
           result="the guesser is throttled (429), the other client logs in (303)",
           figures={"guesses": 6})


@pytest.mark.parametrize("kind", ["node", "hub"])
async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
        make_server: MakeServer, kind: str) -> None:
    srv = await make_server(kind, [])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as attacker:
        csrf = await _login_form(srv, attacker)
        got = [await _login(srv, attacker, csrf, "wrong guess", f"10.9.0.{i}")
               for i in range(6)]
        assert got == [401] * 5 + [429]  # a fresh header per guess changes nothing
        assert await _login(srv, attacker, csrf, PASSWORD, "10.9.0.200") == 429
    record(f"security-login-throttle-spoofed-xff-{kind}", area="security",
           case=f"a client sets its own X-Forwarded-For on the {kind} login",
           how="a real server trusting no proxy; 6 guesses, each with another forged "
               "X-Forwarded-For",
           result="the header is ignored: the 6th attempt is throttled (429)",
           figures={"guesses": 6})


def test_a_bad_trusted_proxy_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NodeError) as e:
        NodeSettings.load(None, node_id="sec-node", name="N", data_dir=tmp_path,
                          trusted_proxies=["10.0.0.0/8", "proxy.example"])
    assert e.value.code == "config" and "trusted_proxies" in e.value.message
    with pytest.raises(HubError) as h:
        HubSettings.load(None, hub_id="sec-hub", name="H", data_dir=tmp_path,
                         trusted_proxies=["10.0.0.300"])
    assert h.value.code == "config"


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    nets = parse_trusted(["127.0.0.1", "10.0.0.0/8", "::1"])
    assert pick_client("127.0.0.1", ["1.2.3.4, 5.6.7.8"], nets) == "5.6.7.8"
    assert pick_client("127.0.0.1", ["1.2.3.4", "5.6.7.8, 10.1.1.1"], nets) == "5.6.7.8"
    assert pick_client("127.0.0.1", [], nets) == "127.0.0.1"
    assert pick_client("127.0.0.1", ["10.2.2.2"], nets) == "10.2.2.2"  # all trusted
    assert pick_client("127.0.0.1", ["bogus, 10.2.2.2"], nets) == "10.2.2.2"
    assert pick_client("192.0.2.1", ["5.6.7.8"], nets) == "192.0.2.1"  # untrusted peer
    assert pick_client("::1", ["2001:db8::5"], nets) == "2001:db8::5"
    assert pick_client("127.0.0.1", ["5.6.7.8"], ()) == "127.0.0.1"
