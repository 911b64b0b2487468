"""`peernet node activation ...`: a thin client of the node's activation API.

    peernet node activation targets [--discipline D] [--region R]
    peernet node activation request --incident-ref INC-1 --incident-type mass_casualty \
        --event 2026-11-26T08:00Z --affected fire=40 --affected ems=12 \
        --intervention defusing --window-start 2026-11-26T10:00Z --window-end ... \
        --peers 6 --location STA-7 --priority urgent --contact-role coordinator \
        --contact-phone "+1 555 0100" --approver deputy_chief --expires +4h \
        --target agency-b --target agency-c [--draft]
    peernet node activation offer AID --discipline fire=2 --discipline ems=1 --eta 45
    peernet node activation accept AID OFFER_MSG_ID
    peernet node activation decline AID --reason no_capacity [--responder NODE]
    peernet node activation update AID mobilized|on_scene|demobilized
    peernet node activation cancel AID --reason no_longer_needed [--responder NODE]
    peernet node activation close AID
    peernet node activation list [--side in|out]
    peernet node activation show AID

It talks to a running node (`--url`, default `PEERNET_NODE_URL` or http://127.0.0.1:8080)
with a coordinator's API token (`--token`, default `PEERNET_TOKEN`; see `peernet node token
create`), so every rule, audit entry and federation message is the server's. Output is text
for a person (tables, local times with their zone: `node.activation.output`); `--json` (on
the group or any command) prints the node's JSON answer unchanged, for scripts. A refusal
prints one line `Error: <code>: <message>` and exits 1.

Times given: ISO 8601 (`2026-11-26T08:00Z`, `2026-11-26T08:00:00+02:00`; without a zone:
UTC), integer epoch milliseconds, or relative to now (`+4h`, `-30m`, `+2d`).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import click

from node.activation.output import render
from protocol.vocabulary import (
    AgencyRole,
    CancelReason,
    DeclineReason,
    Discipline,
    IncidentType,
    Intervention,
    OfferCondition,
    Priority,
    Stage,
)

__all__ = ["activation_group", "parse_time"]

_REL = re.compile(r"^([+-])(\d+)([mhd])$")
_UNIT = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_time(value: str, now_ms: int | None = None) -> int:
    """ISO 8601, integer ms, or `+4h` / `-30m` / `+2d` relative to now."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    value = value.strip()
    m = _REL.match(value)
    if m:
        delta = int(m.group(2)) * _UNIT[m.group(3)]
        return now + delta if m.group(1) == "+" else now - delta
    if value.isdigit():
        return int(value)
    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not a time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return int(dt.timestamp() * 1000)


def _counts(pairs: tuple[str, ...], what: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for pair in pairs:
        name, sep, n = pair.partition("=")
        if not sep or not n.isdigit() or name not in Discipline._value2member_map_:
            raise click.BadParameter(f"{what}: use discipline=count, e.g. fire=2 (got {pair!r})")
        out[name] = int(n)
    return out


def _choice(enum: Any) -> click.Choice[str]:
    return click.Choice([m.value for m in enum])


async def _call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url.rstrip("/") + path, json=body,
                                headers=headers) as resp:
            data = await resp.read()
            try:
                doc = json.loads(data) if data else {}
            except ValueError:
                doc = {"error": {"code": "bad_response", "message": f"HTTP {resp.status}"}}
            if resp.status >= 400:
                err = doc.get("error", {}) if isinstance(doc, dict) else {}
                raise click.ClickException(
                    f"{err.get('code', resp.status)}: {err.get('message', 'request failed')}"
                )
            return doc


class _Api:
    def __init__(self, url: str, token: str | None, as_json: bool = False) -> None:
        if not token:
            raise click.ClickException("set PEERNET_TOKEN or pass --token (a coordinator's)")
        self.url = url
        self.token = token
        self.as_json = as_json

    def __call__(self, method: str, path: str, body: Any = None) -> None:
        try:
            doc = asyncio.run(_call(self.url, self.token, method, path, body))
        except aiohttp.ClientError as exc:
            raise click.ClickException(f"node unreachable at {self.url}: {exc}") from None
        if self.as_json:
            json.dump(doc, sys.stdout, indent=2, sort_keys=True)
            sys.stdout.write("\n")
        else:
            click.echo(render(doc))


_JSON_KEY = "peernet.activation.json"


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_JSON_KEY] = True


def _json_option(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option("--json", is_flag=True, expose_value=False, callback=_set_json,
                        help="Print the node's JSON answer unchanged (epoch-ms times), "
                        "for scripts.")(fn)


P = "/api/v1/activations"
_REQUESTER = click.option(
    "--requester", default=None,
    help="The requesting agency's node id, when this node holds the activation from more "
    "than one side.")
_TIME_FORMAT = ("ISO 8601 (2026-11-26T08:00Z, 2026-11-26T08:00-05:00; no zone means UTC), "
                "epoch milliseconds, or relative to now (-2h, +30m, +1d)")


@click.group("activation")
@click.option("--url", envvar="PEERNET_NODE_URL", default="http://127.0.0.1:8080",
              show_default=True, help="The node's base URL.")
@click.option("--token", envvar="PEERNET_TOKEN", default=None, help="A coordinator's API token.")
@_json_option
@click.pass_context
def activation_group(ctx: click.Context, url: str, token: str | None) -> None:
    """Interagency activation: request, offer, accept, decline, update, cancel, list."""
    ctx.obj = (url, token)


def _api(ctx: click.Context) -> _Api:
    url, token = ctx.find_object(tuple) or ("http://127.0.0.1:8080", None)
    return _Api(url, token, as_json=bool(ctx.meta.get(_JSON_KEY)))


def _q(requester: str | None) -> str:
    return f"?requester={requester}" if requester else ""


@activation_group.command("targets")
@click.option("--discipline", type=_choice(Discipline), default=None,
              help="Only agencies with peers of this discipline.")
@click.option("--region", default=None, help="Only agencies in this region.")
@_json_option
@click.pass_context
def targets_cmd(ctx: click.Context, discipline: str | None, region: str | None) -> None:
    """Agencies this node may ask."""
    q = "&".join(f"{k}={v}" for k, v in (("discipline", discipline), ("region", region)) if v)
    _api(ctx)("GET", f"{P}/targets" + (f"?{q}" if q else ""))


@activation_group.command("request")
@click.option("--incident-ref", required=True,
              help="Your incident number (a reference, not a description).")
@click.option("--incident-type", type=_choice(IncidentType), required=True,
              help="Kind of incident.")
@click.option("--event", "event", required=True,
              help=f"When the incident happened: {_TIME_FORMAT}.")
@click.option("--affected", multiple=True, required=True, help="discipline=count (repeat).")
@click.option("--intervention", multiple=True, required=True, type=_choice(Intervention),
              help="Support asked for (repeat).")
@click.option("--window-start", required=True,
              help=f"Start of the support window: {_TIME_FORMAT}.")
@click.option("--window-end", required=True, help=f"End of the support window: {_TIME_FORMAT}.")
@click.option("--peers", type=int, required=True, help="Number of peer supporters needed.")
@click.option("--location", required=True,
              help="Reporting location as a code, e.g. STA-7 (no names or addresses).")
@click.option("--priority", type=_choice(Priority), default="urgent", show_default=True,
              help="How soon peers are needed.")
@click.option("--contact-role", type=_choice(AgencyRole), required=True,
              help="Who to call: a role, never a name.")
@click.option("--contact-phone", required=True,
              help="Phone number of the contact role (a duty line, not a personal one).")
@click.option("--approver", type=_choice(AgencyRole), required=True,
              help="Role of whoever approved the request, never a name.")
@click.option("--expires", required=True,
              help=f"When the request lapses unanswered: {_TIME_FORMAT}.")
@click.option("--target", multiple=True, required=True, help="Agency node id (repeat).")
@click.option("--draft", is_flag=True, help="Keep as a draft; send later.")
@_json_option
@click.pass_context
def request_cmd(ctx: click.Context, /, **o: Any) -> None:
    """Request peer support from other agencies."""
    body = {
        "incident_ref": o["incident_ref"], "incident_type": o["incident_type"],
        "event_ts": parse_time(o["event"]), "affected": _counts(o["affected"], "--affected"),
        "interventions": list(o["intervention"]),
        "window_start_ts": parse_time(o["window_start"]),
        "window_end_ts": parse_time(o["window_end"]), "peers_needed": o["peers"],
        "reporting_location": o["location"], "priority": o["priority"],
        "contact": {"role": o["contact_role"], "phone": o["contact_phone"]},
        "approver": o["approver"], "expires_ts": parse_time(o["expires"]),
        "targets": list(o["target"]), "draft": o["draft"],
    }
    _api(ctx)("POST", P, body)


@activation_group.command("offer")
@click.argument("activation_id")
@click.option("--discipline", multiple=True, required=True, help="discipline=count (repeat).")
@click.option("--eta", type=int, required=True, help="Minutes until peers can arrive.")
@click.option("--condition", multiple=True, type=_choice(OfferCondition),
              help="A condition of the offer (repeat).")
@_REQUESTER
@_json_option
@click.pass_context
def offer_cmd(ctx: click.Context, activation_id: str, discipline: tuple[str, ...], eta: int,
              condition: tuple[str, ...], requester: str | None) -> None:
    """Offer peers (counts by discipline, never names) to an incoming request."""
    body = {"disciplines": _counts(discipline, "--discipline"), "eta_minutes": eta,
            "conditions": list(condition)}
    _api(ctx)("POST", f"{P}/{activation_id}/offer{_q(requester)}", body)


@activation_group.command("accept")
@click.argument("activation_id")
@click.argument("offer_msg_id")
@_json_option
@click.pass_context
def accept_cmd(ctx: click.Context, activation_id: str, offer_msg_id: str) -> None:
    """Accept an offer (naming its msg_id); repeating returns the first outcome."""
    _api(ctx)("POST", f"{P}/{activation_id}/accept", {"offer_msg_id": offer_msg_id})


@activation_group.command("decline")
@click.argument("activation_id")
@click.option("--reason", type=_choice(DeclineReason), required=True,
              help="Why (a fixed reason).")
@click.option("--responder", default=None, help="Requester: whose offer to decline.")
@_REQUESTER
@_json_option
@click.pass_context
def decline_cmd(ctx: click.Context, activation_id: str, reason: str, responder: str | None,
                requester: str | None) -> None:
    """Decline a request (responder) or an offer (requester, with --responder)."""
    _api(ctx)("POST", f"{P}/{activation_id}/decline{_q(requester)}",
              {"reason": reason, "responder": responder})


@activation_group.command("update")
@click.argument("activation_id")
@click.argument("stage", type=_choice(Stage))
@_REQUESTER
@_json_option
@click.pass_context
def update_cmd(ctx: click.Context, activation_id: str, stage: str,
               requester: str | None) -> None:
    """Report mobilized, on_scene or demobilized (responder)."""
    _api(ctx)("POST", f"{P}/{activation_id}/update{_q(requester)}", {"stage": stage})


@activation_group.command("cancel")
@click.argument("activation_id")
@click.option("--reason", type=_choice(CancelReason), required=True,
              help="Why (a fixed reason).")
@click.option("--responder", default=None, help="Requester: cancel only this agency's leg.")
@_REQUESTER
@_json_option
@click.pass_context
def cancel_cmd(ctx: click.Context, activation_id: str, reason: str, responder: str | None,
               requester: str | None) -> None:
    """Cancel an activation (or one leg of it) from any open state."""
    _api(ctx)("POST", f"{P}/{activation_id}/cancel{_q(requester)}",
              {"reason": reason, "responder": responder})


@activation_group.command("close")
@click.argument("activation_id")
@_REQUESTER
@_json_option
@click.pass_context
def close_cmd(ctx: click.Context, activation_id: str, requester: str | None) -> None:
    """Close after demobilization."""
    _api(ctx)("POST", f"{P}/{activation_id}/close{_q(requester)}")


@activation_group.command("list")
@click.option("--side", type=click.Choice(["in", "out"]), default=None,
              help="out: requested by this node; in: received from others (default both).")
@_json_option
@click.pass_context
def list_cmd(ctx: click.Context, side: str | None) -> None:
    """Activations this node requested (out) or received (in)."""
    _api(ctx)("GET", P + (f"?side={side}" if side else ""))


@activation_group.command("show")
@click.argument("activation_id")
@_REQUESTER
@_json_option
@click.pass_context
def show_cmd(ctx: click.Context, activation_id: str, requester: str | None) -> None:
    """One activation with its legs and timing warnings."""
    _api(ctx)("GET", f"{P}/{activation_id}{_q(requester)}")


@activation_group.command("handoffs")
@_json_option
@click.pass_context
def handoffs_cmd(ctx: click.Context) -> None:
    """Follow-up hand-offs (notes only for the assigned coordinator)."""
    _api(ctx)("GET", f"{P}/handoffs")
