"""Governance alarms on the hub's operator page: rows in words, and the acknowledge form.

- `roster_alarm_rows(app)`: the alarms as the page shows them: active first, then the
  acknowledged ones (kept, with who, when and the note), each with its title and reason in
  words (the template shows times in UTC); never a raw mapping.
- `POST /operator/alarms/{id}/ack` (operator only; the session's CSRF token is checked by
  `app[AUTHORIZE]` before anything is read): fields `csrf` and `note`; the operator's user
  name is recorded as who acknowledged it. Then back to `/operator` (303). Bad input is a 400
  `invalid_input` page, an unknown alarm 404 `not_found`, an alarm already acknowledged 409
  `conflict`; none of them changes anything.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.errors import FedCode, FederationError
from federation.roster_alarms import acknowledge
from hub.appkeys import AUTHORIZE, CLOCK, DB, FEDERATION
from hub.errors import Code, HubError
from hub.users import accounts as users

__all__ = ["ACK_PATH", "ack_alarm", "roster_alarm_rows"]

ACK_PATH = "/operator/alarms/{id}/ack"
_OPERATOR = frozenset({"operator"})
_CODES = {FedCode.BAD_INPUT.value: Code.INVALID_INPUT, FedCode.NOT_FOUND.value: Code.NOT_FOUND,
          FedCode.CONFLICT.value: Code.CONFLICT}


async def roster_alarm_rows(app: web.Application) -> dict[str, list[dict[str, Any]]]:
    rows = await app[FEDERATION].roster.list_alarms()
    for a in rows:
        a["title"] = a["kind"].replace("_", " ").capitalize()
    return {"active": [a for a in rows if a["active"]],
            "acknowledged": [a for a in rows if not a["active"]]}


async def ack_alarm(request: web.Request) -> web.StreamResponse:
    app = request.app
    await app[AUTHORIZE](request, _OPERATOR)
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise HubError(Code.INVALID_INPUT, "the alarm id must be a number", "id")
    form = await request.post()
    unknown = sorted(set(form.keys()) - {"csrf", "note"})
    if unknown:
        raise HubError(Code.INVALID_INPUT, f"unknown field {unknown[0]}", unknown[0])
    note = form.get("note")
    if not isinstance(note, str) or not note.strip():
        raise HubError(Code.INVALID_INPUT, "write a note: what was checked and who was told",
                       "note")
    who = request[users.PRINCIPAL].username
    try:
        async with app[DB].write() as conn:
            await acknowledge(conn, int(raw), by=who, note=note, now_ms=app[CLOCK].now_ms())
    except FederationError as exc:
        code = _CODES.get(exc.code)
        if code is None:
            raise
        raise HubError(code, exc.message, exc.field) from None
    raise web.HTTPSeeOther("/operator")
