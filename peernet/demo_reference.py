"""The README's configuration reference, generated from the servers' settings models.

`config_reference()` renders one Markdown table per settings model (`node.core.config.
NodeSettings`, `hub.config.HubSettings`, `helper.config.HelperSettings`): each field's TOML
key, environment variable, type, default and meaning. The README holds the output between
the markers `<!-- config-reference:start -->` and `<!-- config-reference:end -->`;
tests/demo/test_readme.py fails when the two differ, and `python -m peernet.demo_reference
--write` rewrites the README section. A field without a line in `MEANINGS` is an error, so a
new setting cannot reach the README undocumented.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_settings import BaseSettings

from helper.config import HelperSettings
from hub.config import HubSettings
from node.core.config import NodeSettings

__all__ = ["END", "MEANINGS", "START", "config_reference", "readme_section", "write_readme"]

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"

# Settings read only from the environment: secrets never go in the TOML file.
SECRETS = {"passphrase", "operator_token", "db_password", "metrics_token", "smtp_password"}

# Metrics and logs (federation.observe.settings), the same on every server.
OBSERVE = {
    "metrics_token": "Bearer token that opens `/metrics` on the main address; empty: not "
                     "served there. Environment only.",
    "metrics_host": "Address of the separate `/metrics` listener (with `metrics_port`).",
    "metrics_port": "Port of a separate `/metrics` listener that needs no token (its address "
                    "is the protection); empty: none.",
    "log_format": "`text` lines or `json` (one object per line) on stderr.",
    "log_level": "Least severe log level written.",
}

MEANINGS: dict[str, dict[str, str]] = {
    "node": {
        "node_id": "Roster id of this agency (`[a-z0-9][a-z0-9-]{2,62}`).",
        "name": "Agency name shown on pages.",
        "disciplines": "Disciplines served (fire, ems, dispatch_911, law_enforcement, "
                       "corrections, other).",
        "region": "Region named in the roster (activation rules and statistics filter by it).",
        "data_dir": "Directory for key files (and the SQLite database by default).",
        "db_url": "`sqlite:///path` or `postgresql://user@host/db` (password from "
                  "`db_password` or `db_password_file`, not the URL); empty: "
                  "`<data_dir>/node.db`.",
        "db_password_file": "File whose first line is the database password (e.g. a "
                            "container secret); read at start, never written back.",
        "db_password": "Database password, merged into `db_url` in memory. Environment "
                       "only.",
        "host": "Listen address.",
        "port": "Listen port.",
        "public_url": "URL peers and the hub reach this node at (listed in the roster); "
                      "https turns on secure cookies.",
        "key_file": "Sealed Ed25519 + X25519 key file; empty: `<data_dir>/node.key`.",
        "pseudonym_key_file": "Sealed pseudonym secret; empty: `<data_dir>/pseudonym.key`.",
        "timezone": "IANA zone (e.g. `America/Chicago`) for due dates, overdue follow-ups "
                    "and every time the pages show (printed with the zone, e.g. "
                    "`Jan 01 10:00 CST`).",
        "retention_days": "Encounters older than this are purged (bounded by the roster "
                          "policy's maximum).",
        "hub_url": "The hub this node fetches rosters from and relays through.",
        "board_keys": "Pinned state board public keys (base64url), from `board.json`.",
        "board_threshold": "Board signatures a roster needs; empty: all pinned keys.",
        "network_id": "This state network's id in an interstate compact (e.g. `tx`); empty: "
                      "no interstate layer. Set the same id as the hub's.",
        "passphrase": "Opens the key files. Environment only.",
        "session_hours": "Absolute lifetime of a browser session.",
        "max_body_bytes": "Largest page/API request body (federation batches have their own "
                          "limit).",
        "audit_sign_interval_s": "How often the node signs its audit log head.",
        "secure_cookies": "Force the cookie `Secure` flag; empty (init does not write it): "
                          "follows `public_url`, on for https.",
        "db_pool_size": "Database connections kept open, at most; a request that finds them "
                        "all busy waits for one.",
        "trusted_proxies": "Reverse proxies (IPs or CIDRs) whose `X-Forwarded-For` names the "
                           "client for the login throttle; from any other peer the header is "
                           "ignored.",
        "identifier_format": "How a typed supported-person identifier is made canonical "
                             "before it is pseudonymised: `alphanumeric` keeps letters, digits "
                             "and leading zeros; `employee_number` takes digits only and drops "
                             "leading zeros. Placeholders such as `unknown` are refused either "
                             "way.",
        "smtp_host": "Mail relay for notifications (`node.notify`); empty: no mail is sent "
                     "(deliveries fail `smtp_not_configured` and are retried).",
        "smtp_port": "Mail relay port (587 for STARTTLS submission).",
        "smtp_user": "Mail relay login; empty: no AUTH.",
        "smtp_password": "Mail relay password. Environment only (`PEERNET_SMTP_PASSWORD`).",
        "smtp_starttls": "Require STARTTLS before AUTH and mail; off only for a relay on the "
                         "same host.",
        "smtp_ca_file": "PEM file of a private CA the relay's certificate is signed by; "
                        "empty: the system's trust store.",
        "notify_from": "Sender address of notification mail.",
        "notify_digest_hour": "Local hour (node `timezone`) the daily follow-up digest goes "
                              "out.",
        "notify_poll_s": "How often the notification sender looks for due deliveries.",
        "notify_allow_http_loopback": "Test/development only: accept `http://` webhook URLs "
                                      "to a loopback host (otherwise https only).",
    },
    "hub": {
        "hub_id": "Roster id of the hub.",
        "name": "Hub name.",
        "region": "Region the hub serves (`state` for a state hub).",
        "data_dir": "Directory for the key file (and the SQLite database by default).",
        "db_url": "`sqlite:///path` or `postgresql://user@host/db` (password from "
                  "`db_password` or `db_password_file`, not the URL); empty: "
                  "`<data_dir>/hub.db`.",
        "db_password_file": "File whose first line is the database password (e.g. a "
                            "container secret); read at start, never written back.",
        "db_password": "Database password, merged into `db_url` in memory. Environment "
                       "only.",
        "host": "Listen address.",
        "port": "Listen port.",
        "public_url": "URL nodes reach the hub at (listed in the roster).",
        "key_file": "Sealed key file; empty: `<data_dir>/hub.key`.",
        "board_keys": "Pinned state board public keys (base64url), from `board.json`.",
        "board_threshold": "Board signatures a roster needs; empty: all pinned keys.",
        "network_id": "This state network's id in an interstate compact (e.g. `tx`); its "
                      "board (`board_keys`) signs compacts; empty: the hub joins none.",
        "passphrase": "Opens the key file. Environment only.",
        "operator_token": "Break-glass operator bearer token for the API. Environment only.",
        "max_body_bytes": "Largest request body.",
        "relay_poll_ms": "How often the relay retries queued envelopes when idle.",
        "session_hours": "Absolute lifetime of a browser session.",
        "secure_cookies": "Force the cookie `Secure` flag; empty: on when `public_url` is "
                          "https.",
        "db_pool_size": "Database connection pool size (PostgreSQL).",
        "trusted_proxies": "Reverse proxies (IPs or CIDRs) whose `X-Forwarded-For` names the "
                           "client for the login throttle; from any other peer the header is "
                           "ignored.",
    },
    "helper": {
        "helper_id": "Roster id of the helper aggregator (role `helper` in the roster).",
        "name": "Helper name.",
        "region": "Region named in the roster for the helper.",
        "data_dir": "Directory for the key file, `helper-info.json` (and the SQLite database "
                    "by default).",
        "db_url": "`sqlite:///path` or `postgresql://user@host/db` (password from "
                  "`db_password` or `db_password_file`, not the URL); empty: "
                  "`<data_dir>/helper.db`.",
        "db_password_file": "File whose first line is the database password (e.g. a "
                            "container secret); read at start, never written back.",
        "host": "Listen address.",
        "port": "Listen port.",
        "public_url": "URL the hub reaches the helper at (listed in the roster).",
        "hub_url": "The hub the helper fetches rosters from; the hub relays every share and "
                   "round to it.",
        "key_file": "Sealed key file; empty: `<data_dir>/helper.key`.",
        "board_keys": "Pinned state board public keys (base64url), from `board.json`.",
        "board_threshold": "Board signatures a roster needs; empty: all pinned keys.",
        "passphrase": "Opens the key file. Environment only.",
        "operator_token": "Operator bearer token for the helper's status API. Environment "
                          "only.",
        "db_password": "Database password, merged into `db_url` in memory. Environment "
                       "only.",
        "max_body_bytes": "Largest request body.",
        "poll_ms": "How often the helper retries queued results when idle.",
    },
}
for _server in MEANINGS.values():
    _server.update(OBSERVE)

# OpenID Connect sign-in (federation.webkit.oidc_config), the same on node and hub.
SECRETS |= {"oidc_client_secret"}
OIDC = {
    "oidc": "The `[oidc]` table: sign-in through the agency's identity provider (`issuer`, "
            "`client_id`, `groups_claim`, `rules` mapping groups to roles and teams, `only` "
            "to refuse password logins); see \"Signing in with the agency's identity "
            "provider\". Empty: local accounts only.",
    "oidc_client_secret": "The OpenID client secret registered at the provider. "
                          "Environment only.",
}
MEANINGS["node"].update(OIDC)
MEANINGS["hub"].update(OIDC)


# A dotted module path before a name (`federation.webkit.oidc_config.OidcSettings`).
_MODULE_PATH = re.compile(r"(?<![\w.'\"])(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")


def _type_name(annotation: Any) -> str:
    """What an operator types: a nested settings model is a TOML table; no module paths."""
    if get_origin(annotation) in (Union, UnionType):
        return " | ".join(_type_name(arg) for arg in get_args(annotation))
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = str(annotation) if "[" in str(annotation) or "|" in str(annotation) else text
    for noise in ("<class '", "'>"):
        text = text.replace(noise, "")
    return _MODULE_PATH.sub("", text)


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None or value == "":
        return "empty"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[]`" if not value else f"`{value}`"
    return f"`{value}`"


def _table(kind: str, model: type[BaseSettings]) -> list[str]:
    prefix = str(model.model_config.get("env_prefix", ""))
    meanings = MEANINGS[kind]
    lines = [
        "| setting | environment | type | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        if name not in meanings:
            raise KeyError(f"{model.__name__}.{name} has no line in MEANINGS")
        key = "(environment only)" if name in SECRETS else f"`{name}`"
        env = f"`{prefix}{name.upper()}`"
        type_name = _type_name(field.annotation).replace("|", "or")
        lines.append(f"| {key} | {env} | {type_name} | {_default(field)} | {meanings[name]} |")
    return lines


def config_reference() -> str:
    """The Markdown of the configuration reference (see module docstring)."""
    out = [
        "Precedence: command-line overrides, then environment variables, then the TOML file "
        "(`--config`). Unknown keys in the TOML file are refused. Lists in the environment "
        "are JSON (e.g. `PEERNET_BOARD_KEYS='[\"k1\",\"k2\"]'`).",
        "",
        "Node (`peernet node ... --config node.toml`, `node.core.config.NodeSettings`):",
        "",
        *_table("node", NodeSettings),
        "",
        "Hub (`peernet hub ... --config hub.toml`, `hub.config.HubSettings`):",
        "",
        *_table("hub", HubSettings),
        "",
        "Helper aggregator (`peernet helper init|serve --config helper.toml`, "
        "`helper.config.HelperSettings`):",
        "",
        *_table("helper", HelperSettings),
    ]
    return "\n".join(out) + "\n"


def readme_section(readme: str) -> str:
    """The text between the markers in `readme` (without them)."""
    try:
        start = readme.index(START) + len(START)
        end = readme.index(END, start)
    except ValueError:
        raise ValueError("the README has no configuration reference markers") from None
    return readme[start:end].strip("\n") + "\n"


def write_readme(path: Path) -> bool:
    """Rewrite the section in the README at `path`; True when it changed."""
    text = path.read_text(encoding="utf-8")
    start = text.index(START) + len(START)
    end = text.index(END, start)
    new = text[:start] + "\n" + config_reference() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    target = Path(__file__).resolve().parent.parent / "README.md"
    if "--write" in sys.argv:
        print("README updated" if write_readme(target) else "README already current")
    else:
        print(config_reference(), end="")
