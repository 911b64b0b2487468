"""The auditor's audit-log page and its export.

    GET /audit          entries newest first, 50 a page with the count, filtered by date
                        range, actor and action; above them the verify result
    GET /audit/export   ?format=csv|json and the same filters: a download (chain order)

Verify runs the checks of `peernet node audit verify --offline`
(`node.core.audit_verify.verify`): the hash chain, the head, its signature and the
stale-tail rule, the tail judged as the JSON API's verify judges it (unsigned although the
running node's signer has passed since). Truncation (entries cut from the end and the
head re-signed by someone holding the key) is caught only against the signed head the hub
anchored, which the page does not ask for: it says so next to the result, and the CLI
without `--offline` does it.

Auditor only (route table; other roles 403 `forbidden`, audited). Viewing is not audited
(reading the audit log is the auditor's job and would only grow it); an export is, with its
format and count, since it carries the log off the node.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from node.auditlog import export, query
from node.core import audit
from node.core.audit_verify import SIGNER_PASSES, verify
from node.core.context import NodeContext
from node.core.routes import NavItem, Route, add_nav, add_routes
from node.core.times import to_dt
from node.core.vocabulary import Role
from node.records.encounter_paging import page_of
from node.records.list_filters import query_string
from node.records.list_pages import query_model
from node.web.plumbing import principal, render

__all__ = ["TRUNCATION_NOTE", "setup"]

AUDITOR = frozenset({Role.AUDITOR})
TRUNCATION_NOTE = ("Checked here: the hash chain, the head and its signature (offline). "
                   "Truncation (entries cut from the end and the head signed again) is "
                   "checked only against the hub's anchor: run `peernet node audit verify` "
                   "without --offline.")


class ExportQuery(query.AuditFilter):
    format: Literal["csv", "json"] = Field(default="csv", description="csv or json")


async def audit_page(request: web.Request) -> web.Response:
    ctx = NodeContext.of(request.app)
    f = query_model(request, query.AuditFilter)
    where = await query.condition(ctx, f)
    page = page_of(f.page, await query.count(ctx, where))
    rows = await query.newest_first(ctx, where, page.size, page.offset)
    async with ctx.db.read() as conn:
        # As the JSON API's verify: stale means unsigned although the signer ran since.
        passed = request.app[SIGNER_PASSES].last_ms
        report = await verify(conn, ctx.keys, ctx.settings.node_id,
                              now_ms=ctx.now() if passed is None else passed,
                              sign_interval_ms=0)
    names = await query.usernames(ctx)
    return render(request, "audit_log.html", {
        "f": f, "page": page, "names": names, "actions": await query.actions(ctx),
        "rows": [{**r, "time": to_dt(r["ts"]).strftime("%Y-%m-%d %H:%M:%S")} for r in rows],
        "report": report, "note": TRUNCATION_NOTE,
        "qs": lambda **kw: query_string(f, **kw),
        "export_qs": query_string(f, page=None),
    })


async def audit_export(request: web.Request) -> web.StreamResponse:
    ctx, p = NodeContext.of(request.app), principal(request)
    q = query_model(request, ExportQuery)
    where = await query.condition(ctx, q)
    total = await query.count(ctx, where)
    async with ctx.db.write() as conn:
        await audit.append(conn, ts=ctx.now(), action="audit.export", actor=p,
                           target_type="audit_log", detail={"format": q.format,
                                                            "count": total})
    names = await query.usernames(ctx)
    day = ctx.today().isoformat()
    kind = "text/csv" if q.format == "csv" else "application/json"
    resp = web.StreamResponse(headers={
        "Content-Type": f"{kind}; charset=utf-8",
        "Content-Disposition": f'attachment; filename="peernet-audit-'
                               f'{ctx.settings.node_id}-{day}.{q.format}"',
        "Cache-Control": "no-store"})
    await resp.prepare(request)
    first = True
    if q.format == "json":
        await resp.write(b'{"node_id":' + export.json_entry(ctx.settings.node_id)
                         + b',"entries":[')
    async for batch in query.oldest_first(ctx, where):
        entries = [export.entry_dict(r, names) for r in batch]
        if q.format == "csv":
            await resp.write(export.csv_rows(entries, header=first))
        else:
            await resp.write(b"".join((b"" if first and i == 0 else b",") + export.json_entry(e)
                                      for i, e in enumerate(entries)))
        first = False
    if q.format == "csv" and first:
        await resp.write(export.csv_rows([], header=True))
    if q.format == "json":
        await resp.write(b"]}")
    await resp.write_eof()
    return resp


def setup(app: web.Application) -> None:
    add_routes(app, [
        Route("GET", "/audit", audit_page, "page.audit", AUDITOR, "Audit log"),
        Route("GET", "/audit/export", audit_export, "page.audit.export", AUDITOR,
              "Download the audit log (CSV or JSON)"),
    ])
    add_nav(app, NavItem("Audit log", "/audit", AUDITOR, 65))
