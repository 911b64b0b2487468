"""Coordinator pages of the consented follow-up transfer (issue 21), made for a phone.

    /follow-ups/{id}/transfer     the sending coordinator records the responder's consent
                                  and sends: agency by name, due date and consent are fixed
                                  choices, the contact note is bounded (callback details only)
    /transfers                    both sides: sent transfers and their outcome; received
                                  ones with the sealed note (for the assigned coordinator,
                                  each read audited), accept with an owner on my team or
                                  decline with a fixed reason

Consent and sending are one form and one write transaction: the consent row (who asked,
when) is written first, so a refused send (bad note, unknown agency) leaves no consent
behind and nothing else stored. An unticked consent box is refused with `no_consent` as a
sentence and nothing is written. Forms post to the same services and write the same audit
entries as the JSON API (`transfer_api`); success redirects (303), a refusal re-renders
the page with the stable code and a plain sentence.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from node.accounts import users as accounts
from node.activation import transfer
from node.activation.api import activation_context
from node.activation.errors import ActivationCode, ActivationError
from node.activation.pages import label
from node.activation.transfer_api import audit_note_reads
from node.activation.transfer_models import TransferIn
from node.core import audit
from node.core.appkeys import DB, SETTINGS
from node.core.context import NodeContext
from node.core.errors import NodeError
from node.core.routes import NavItem, Route, add_nav, add_routes
from node.core.vocabulary import Role
from node.records import followups
from node.web.plumbing import principal, render, validation_error
from protocol.transfer_bodies import TransferDeclineReason

__all__ = ["DECLINE_LABELS", "STATE_LABELS", "setup_transfer_pages", "transfer_page_routes"]

COORDINATOR = frozenset({Role.COORDINATOR})
_SUPPORTERS = (Role.PEER_SUPPORTER, Role.COORDINATOR)
DECLINE_LABELS: dict[str, str] = {
    "not_a_member": "The person is not with our agency",
    "no_capacity": "Our team has no capacity now",
    "outside_discipline": "Outside the disciplines we support",
    "already_supported": "Already supported by our team",
    "policy": "Our agency's policy does not allow it",
    "other": "Another reason",
}
STATE_LABELS: dict[str, str] = {
    "pending": "Waiting for an answer", "accepted": "Accepted", "declined": "Declined",
    "expired": "Expired without an answer",
}
_NOTICES = {
    "sent": "Transfer sent. The follow-up stays open here until the agency accepts.",
    "accepted": "Transfer accepted. The new owner sees it in their follow-ups.",
    "declined": "Transfer declined. The sending agency has been told.",
}


def _fid(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such follow-up", "id") from None


def _agencies(request: web.Request) -> list[tuple[str, str]]:
    """Member agencies one may transfer to, by name: not us, not a hub, not revoked."""
    ctx = activation_context(request.app)
    d = ctx.directory
    revoked = getattr(d, "is_revoked", lambda _n: False)
    return sorted(((n.node_id, n.name) for n in d.nodes()
                   if not n.is_hub and n.node_id != ctx.node_id and not revoked(n.node_id)),
                  key=lambda x: x[1])


def _names(request: web.Request) -> dict[str, str]:
    return {n.node_id: n.name for n in activation_context(request.app).directory.nodes()}


async def _follow_up(request: web.Request, fid: uuid.UUID) -> Any:
    """The follow-up as the team list shows it (the coordinator's own team only)."""
    p = principal(request)
    items = await followups.list_follow_ups(NodeContext.of(request.app), p, "team")
    fu = next((f for f in items if f.id == fid), None)
    if fu is None:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such follow-up on your team", "id")
    return fu


def _due_choices(fu: Any, today: date) -> list[tuple[str, str]]:
    keep = fu.due.isoformat()
    out = [(keep, f"Keep {keep}")]
    for days, words in ((1, "Tomorrow"), (3, "In 3 days"), (7, "In a week")):
        d = (today + timedelta(days=days)).isoformat()
        if d != keep:
            out.append((d, f"{words} ({d})"))
    return out


async def send_page(request: web.Request, values: dict[str, str] | None = None,
                    error: NodeError | None = None) -> web.Response:
    fu = await _follow_up(request, _fid(request))
    today = NodeContext.of(request.app).today()
    return render(request, "transfer_send.html", {
        "f": fu, "label": label, "agencies": _agencies(request),
        "dues": _due_choices(fu, today), "v": values or {}, "error": error,
    }, status=error.status if error else 200)


async def send_post(request: web.Request) -> web.Response:
    ctx, p, fid = activation_context(request.app), principal(request), _fid(request)
    form = await request.post()
    v = {k: str(form.get(k, "")) for k in ("to", "due", "contact_note", "consent")}
    try:
        await _follow_up(request, fid)
        if v["consent"] != "yes":
            raise ActivationError(
                ActivationCode.NO_CONSENT, "Consent: ask the responder first. Without their "
                "consent nothing is sent.", "consent")
        try:
            data = TransferIn.model_validate({"to": v["to"], "contact_note": v["contact_note"],
                                              "due": v["due"] or None})
        except ValidationError as exc:
            raise validation_error(exc) from None
        async with request.app[DB].write() as conn:
            await transfer.record_consent(conn, ctx, fid, data.to, user_id=p.user_id,
                                          team=p.team)
            await audit.append(conn, ts=ctx.now(), action="transfer.consent", actor=p,
                               target_type="follow_up", target_id=fid, detail={"to": data.to})
            out = await transfer.send_transfer(conn, ctx, fid, data, user_id=p.user_id,
                                               team=p.team)
            await audit.append(conn, ts=ctx.now(), action="transfer.send", actor=p,
                               target_type="follow_up", target_id=fid,
                               detail={"to": data.to, "transfer": out.id})
    except NodeError as exc:
        if exc.status in (404, 409, 422):
            return await send_page(request, v, exc)
        raise
    raise web.HTTPSeeOther("/transfers?done=sent")


async def list_page(request: web.Request, error: NodeError | None = None) -> web.Response:
    ctx, p = activation_context(request.app), principal(request)
    async with request.app[DB].write() as conn:
        items = await transfer.list_transfers(conn, ctx, p.user_id)
        await audit_note_reads(conn, ctx.now(), p, items)
    people = [u for u in await accounts.list_users(NodeContext.of(request.app))
              if u.team == p.team and u.active and u.role in _SUPPORTERS]
    names = _names(request)
    zone = request.app[SETTINGS].zone
    return render(request, "transfers.html", {
        "sent": [t for t in items if t.direction == "out"],
        "received": [t for t in items if t.direction == "in"],
        "people": people, "owners": {str(u.id): u.username for u in people},
        "reasons": list(DECLINE_LABELS.items()), "reason_label": DECLINE_LABELS,
        "state_label": STATE_LABELS, "label": label,
        "agency": lambda node_id: names.get(node_id, node_id),
        "fmt": lambda ms: _fmt(ms, zone), "now": ctx.now(), "error": error,
        "notice": _NOTICES.get(request.query.get("done", "")),
    }, status=error.status if error else 200)


def _fmt(ms: int, zone: Any) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%b %d %H:%M %Z")


async def _answer(request: web.Request, *, accept: bool) -> web.Response:
    ctx, p = activation_context(request.app), principal(request)
    form = await request.post()
    try:
        tid = _fid(request)
        owner: uuid.UUID | None = None
        reason: TransferDeclineReason | None = None
        if accept:
            try:
                owner = uuid.UUID(str(form.get("owner", "")))
            except ValueError:
                raise ActivationError(ActivationCode.INVALID_INPUT,
                                      "New owner: choose someone on your team.", "owner") from None
        else:
            try:
                reason = TransferDeclineReason(str(form.get("reason", "")))
            except ValueError:
                raise ActivationError(ActivationCode.INVALID_INPUT,
                                      "Reason: choose one of the offered reasons.",
                                      "reason") from None
        async with request.app[DB].write() as conn:
            await transfer.answer(conn, ctx, tid, p.user_id, owner=owner, reason=reason)
            detail = {"owner": str(owner)} if accept else {"reason": str(form.get("reason"))}
            await audit.append(conn, ts=ctx.now(), actor=p, target_type="transfer",
                               action="transfer.accept" if accept else "transfer.decline",
                               target_id=tid, detail=detail)
    except NodeError as exc:
        if exc.status in (403, 404, 409, 422):
            return await list_page(request, exc)
        raise
    raise web.HTTPSeeOther(f"/transfers?done={'accepted' if accept else 'declined'}")


async def accept_post(request: web.Request) -> web.Response:
    return await _answer(request, accept=True)


async def decline_post(request: web.Request) -> web.Response:
    return await _answer(request, accept=False)


def transfer_page_routes() -> list[Route]:
    c = COORDINATOR
    return [
        Route("GET", "/follow-ups/{id}/transfer", send_page, "page.transfers.new", c,
              "Transfer a follow-up to another agency"),
        Route("POST", "/follow-ups/{id}/transfer", send_post, "page.transfers.send", c,
              "Record consent and transfer a follow-up"),
        Route("GET", "/transfers", list_page, "page.transfers", c, "Follow-up transfers"),
        Route("POST", "/transfers/{id}/accept", accept_post, "page.transfers.accept", c,
              "Accept a received transfer"),
        Route("POST", "/transfers/{id}/decline", decline_post, "page.transfers.decline", c,
              "Decline a received transfer"),
    ]


def setup_transfer_pages(app: web.Application) -> None:
    add_routes(app, transfer_page_routes())
    add_nav(app, NavItem("Transfers", "/transfers", COORDINATOR, 47))
