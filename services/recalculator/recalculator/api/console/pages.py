"""The console's pages, rendered on the server from the API's own answers (client.py) with
plain string templates: every value goes through `html.escape`, no page holds a script
of its own (the one script is /console/static/console.js) and none ever holds the token.

When reads require the token, the pages ask for it once (sign-in) and keep a session
cookie (HttpOnly, SameSite=Strict) that is good for reads only; actions always send the
bearer token from the tab's session storage (static.py)."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..auth import SESSION_COOKIE, SESSION_SECONDS
from . import chart
from .client import Answer, get
from .static import SCRIPT, STYLE

FILTERS = [("", "any"), ("full", "Full"), ("partial", "Partial"), ("full-or-partial", "Full or Partial"),
           ("none", "Not BackOrder"), ("not-full", "Not Full BackOrder")]
ORDER_SORTS = ["order_date", "-order_date", "order_id", "-order_id", "company_id", "backorder_qty", "-backorder_qty",
               "qty", "-qty"]
PAGES = [("orders", "Orders"), ("products", "Products"), ("operations", "Operations"),
         ("dead-letters", "Dead letters"), ("consistency", "Consistency")]
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def link(path: str, text, **params) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f'<a href="{e(path + ("?" + query if query else ""))}">{e(text)}</a>'


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, here: str, content: str, status: int = 200) -> HTMLResponse:
    nav = "".join(f'<a href="/console/{p}"{" class=here" if p == here else ""}>{e(text)}</a>' for p, text in PAGES)
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)} · backorders</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/console.js" defer></script></head><body>
<header><strong>backorders</strong>{nav}
<span class="token"><label for="token">API token</label><input id="token" type="password" autocomplete="off">
<button id="use-token" type="button">Use</button><button id="forget-token" type="button">Forget</button>
<span id="token-state" class="muted"></span></span></header>
<main><h1>{e(title)}</h1><div id="result" role="status" aria-live="polite"></div>{content}</main></body></html>"""
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def problem(answer: Answer, here: str) -> HTMLResponse:
    status = answer.status if 400 <= answer.status < 600 else 502
    return page(f"{answer.status}", here, f'<p class="problem">{e(answer.detail)}</p>', status)


def pager(path: str, params: dict, total: int, limit: int, offset: int) -> str:
    parts = [f"<p>{total} found; showing {min(total, offset + 1)}–{min(total, offset + limit)}."]
    if offset > 0:
        parts.append(" " + link(path, "previous", **{**params, "offset": max(0, offset - limit)}))
    if offset + limit < total:
        parts.append(" " + link(path, "next", **{**params, "offset": offset + limit}))
    return "".join(parts) + "</p>"


def options(choices, chosen) -> str:
    return "".join(f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(t)}</option>' for v, t in choices)


def action_forms(order_ids: str = "", skus: str = "") -> str:
    return f"""<h2>Actions</h2><p class="muted">Each action is published to the input log as a command event; it needs
the API token (enter it above; it stays in this tab).</p>
<form class="action" data-endpoint="/actions/recalculate" data-kind="recalculate">
<label>Order ids<input name="order_ids" value="{e(order_ids)}"></label><label>SKUs<input name="skus" value="{e(skus)}"></label>
<label>Time (optional)<input name="time" placeholder="now"></label><button type="submit">Recalculate</button></form>
<form class="action" data-endpoint="/actions/mark-backorder" data-kind="orders">
<label>Order ids<input name="order_ids" value="{e(order_ids)}"></label><label>Time (optional)<input name="time" placeholder="now"></label>
<button type="submit">Mark as backorder</button></form>
<form class="action" data-endpoint="/actions/mark-not-backorder" data-kind="orders">
<label>Order ids<input name="order_ids" value="{e(order_ids)}"></label><label>Time (optional)<input name="time" placeholder="now"></label>
<button type="submit">Mark as not backorder</button></form>"""


def console_app(api, services) -> FastAPI:
    """The console, mounted at /console of the API `api` (it reads through it)."""
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    guard = services.guard

    def forwarded(request: Request) -> dict[str, str]:
        cookie = request.headers.get("cookie")
        return {"cookie": cookie} if cookie else {}

    def signed_out(request: Request) -> bool:
        return guard.read_requires_token and not guard.has_session(request)

    async def read(request: Request, path: str, params: dict | None = None) -> Answer:
        return await get(api, path, params, forwarded(request))

    @console.get("/static/console.js", include_in_schema=False)
    async def script():
        return Response(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @console.get("/static/console.css", include_in_schema=False)
    async def style():
        return Response(STYLE, media_type="text/css", headers={"Cache-Control": "no-cache"})

    @console.get("/", include_in_schema=False)
    async def home():
        return RedirectResponse("/console/orders", status_code=303)

    @console.get("/sign-in", include_in_schema=False)
    async def sign_in_form(failed: str | None = None):
        note = '<p class="problem">That is not the API token.</p>' if failed else ""
        return page("Sign in", "", f"""{note}<p>Reading this server's state needs the API token.</p>
<form method="post" action="/console/sign-in"><label>API token <input name="token" type="password" autocomplete="off"></label>
<button type="submit">Sign in</button></form>""")

    @console.post("/sign-in", include_in_schema=False)
    async def sign_in(request: Request):
        body = (await request.body())[:4096].decode("utf-8", "replace")
        token = (parse_qs(body).get("token") or [""])[0]
        if not guard.matches(token):
            return RedirectResponse("/console/sign-in?failed=1", status_code=303)
        response = RedirectResponse("/console/orders", status_code=303)
        response.set_cookie(SESSION_COOKIE, guard.open_session(), httponly=True, samesite="strict", path="/",
                            max_age=SESSION_SECONDS)
        return response

    @console.middleware("http")
    async def signed_in(request: Request, call_next):
        path = request.url.path
        if signed_out(request) and not (path.endswith("/sign-in") or "/static/" in path):
            return RedirectResponse("/console/sign-in", status_code=303)
        return await call_next(request)

    @console.get("/orders", include_in_schema=False)
    async def orders(request: Request):
        q = dict(request.query_params)
        params = {k: q.get(k) for k in ("backorder", "company_id", "sku", "placed_from", "placed_to", "sort", "offset")}
        params["limit"] = 50
        answer = await read(request, "/orders", params)
        form = f"""<form class="filters" method="get" action="/console/orders">
<label>Backorder<select name="backorder">{options(FILTERS, q.get("backorder", ""))}</select></label>
<label>Company<input name="company_id" value="{e(q.get("company_id"))}"></label>
<label>SKU<input name="sku" value="{e(q.get("sku"))}"></label>
<label>Placed from<input name="placed_from" value="{e(q.get("placed_from"))}" placeholder="YYYY-MM-DD"></label>
<label>Placed to<input name="placed_to" value="{e(q.get("placed_to"))}" placeholder="YYYY-MM-DD"></label>
<label>Sort<select name="sort">{options([(s, s) for s in ORDER_SORTS], q.get("sort", "order_date"))}</select></label>
<button type="submit">Filter</button></form>"""
        if answer.status != 200:
            return page("Orders", "orders", form + f'<p class="problem">{answer.status}: {e(answer.detail)}</p>',
                        answer.status)
        found = answer.json()
        rows = [[link(f"/console/orders/{quote(i['order_id'], safe='')}", i["order_id"]), e(i["company_id"]),
                 e(i["order_date"]), f'<span class="{e(i["backorder_status"])}">{e(i["backorder_status"])}</span>',
                 e(i["backorder_qty"]), e(i["qty"])] for i in found["items"]]
        shown = {k: v for k, v in params.items() if k not in ("offset", "limit")}
        return page("Orders", "orders", form + pager("/console/orders", shown, found["total"], found["limit"],
                                                     found["offset"])
                    + table(["order", "company", "placed", "backorder", "backorder qty", "qty"], rows, {4, 5}))

    @console.get("/orders/{order_id}", include_in_schema=False)
    async def order(request: Request, order_id: str):
        answer = await read(request, f"/orders/{quote(order_id, safe='')}")
        if answer.status != 200:
            return problem(answer, "orders")
        o = answer.json()
        facts = table(["status", "payment", "company", "placed", "backorder", "backorder qty", "qty", "as of"], [[
            e(o["order_status"]), e(o["payment_status"]), e(o["company_id"]), e(o["order_date"]),
            f'<span class="{e(o["backorder_status"])}">{e(o["backorder_status"])}</span>', e(o["backorder_qty"]),
            e(o["qty"]), e(o["clock"])]])
        rows, inputs = [], []
        for line in o["lines"]:
            how = line.get("state", "") + (", manual" if line.get("manual") else "")
            place = (f"{line['position']} of {line['queue_length']} in {line.get('pool') or 'the sellable pool'}; "
                     f"{line['ahead_qty']} units ahead; supply {line['supply']}") if line.get("position") else ""
            rows.append([e(line.get("line_id")), link(f"/console/skus/{quote(str(line.get('sku')), safe='')}", line.get("sku")),
                         e(line.get("qty")), e(line.get("published")), e(line.get("allocated")), e(how), e(place),
                         e(line.get("expected_date")), e(line.get("published_expected_date")),
                         "<br>".join(e(r) for r in line.get("reasons") or [])])
            inputs.append(f'<label>{e(line.get("line_id"))} (qty {e(line.get("qty"))})<input data-line="{e(line.get("line_id"))}" '
                          f'type="number" min="0" max="{e(line.get("qty"))}" placeholder="backorder qty"></label>')
        lines = table(["line", "SKU", "qty", "backorder", "allocated", "how", "place in queue", "expected",
                       "expected (published)", "why"], rows, {2, 3, 4})
        reallocate = f"""<form class="action" data-endpoint="/actions/reallocate" data-kind="reallocate">
<input type="hidden" name="order_id" value="{e(o["order_id"])}">{"".join(inputs)}
<label>Time (optional)<input name="time" placeholder="now"></label><button type="submit">Reallocate</button></form>"""
        return page(f"Order {o['order_id']}", "orders", facts + "<h2>Lines</h2>" + lines
                    + action_forms(order_ids=o["order_id"]) + reallocate)

    @console.get("/products", include_in_schema=False)
    async def products(request: Request):
        q = dict(request.query_params)
        params = {"backorder_from": q.get("backorder_from") or 1, "backorder_to": q.get("backorder_to"),
                  "offset": q.get("offset"), "limit": 50}
        answer = await read(request, "/products", params)
        form = f"""<form class="filters" method="get" action="/console/products">
<label>Backorder from<input name="backorder_from" type="number" min="0" value="{e(params["backorder_from"])}"></label>
<label>to<input name="backorder_to" type="number" min="0" value="{e(q.get("backorder_to"))}"></label>
<button type="submit">Filter</button></form>"""
        if answer.status != 200:
            return page("Products", "products", form + f'<p class="problem">{answer.status}: {e(answer.detail)}</p>',
                        answer.status)
        found = answer.json()
        rows = [[link(f"/console/skus/{quote(i['sku'], safe='')}", i["sku"]), e(i["backorder_qty"])] for i in found["items"]]
        shown = {k: v for k, v in params.items() if k not in ("offset", "limit")}
        return page("Products", "products", form + pager("/console/products", shown, found["total"], found["limit"],
                                                         found["offset"]) + table(["SKU", "backorder qty"], rows, {1}))

    @console.get("/skus/{sku}", include_in_schema=False)
    async def sku(request: Request, sku: str):
        answer = await read(request, f"/skus/{quote(sku, safe='')}", {"queue_limit": 200})
        if answer.status != 200:
            return problem(answer, "products")
        s = answer.json()
        supply = await read(request, f"/skus/{quote(sku, safe='')}/supply")
        arrivals = supply.json()["arrivals"] if supply.status == 200 else []
        facts = table(["stock", "available", "backordered", "on order", "earliest", "next available", "as of"], [[
            e(", ".join(f"{w}: {q}" for w, q in s["stock"].items())), e(s["available"]), e(s["backordered"]),
            e(s["on_order"]["qty"]), e(s["on_order"]["earliest_eta"]), e(s["on_order"]["next_available"]),
            e(s["clock"])]])
        parts = [facts]
        for pool in s["pools"]:
            where = pool["warehouse_id"] or "sellable warehouses"
            parts.append(f"<h2>Pool: {e(where)}</h2><p>supply {e(pool['supply'])}, available {e(pool['available'])}, "
                         f"{e(pool['queue_length'])} lines queued</p>")
            parts.append('<figure>' + chart.supply_vs_demand(pool) + '<figcaption>Supply against the demand in queue '
                         'order (green: allocated, red: backordered)</figcaption></figure>')
            rows = [[e(q["place"]), link(f"/console/orders/{quote(q['order_id'], safe='')}", q["order_id"]),
                     e(q["line_id"]), e(q["qty"]), e(q["allocated"]), e(q["backorder"]), e(q["expected_date"])]
                    for q in pool["queue"]]
            parts.append(table(["place", "order", "line", "qty", "allocated", "backorder", "expected"], rows, {0, 3, 4, 5}))
        parts.append("<h2>Incoming by date</h2><figure>" + chart.incoming_by_date(arrivals, s["backordered"])
                     + "</figure>")
        parts.append(table(["kind", "id", "qty", "date"], [[e(a["kind"]), e(a["id"]), e(a["qty"]), e(a["date"])]
                                                            for a in arrivals], {2}))
        parts.append(action_forms(skus=s["sku"]))
        return page(f"SKU {s['sku']}", "products", "".join(parts))

    @console.get("/operations", include_in_schema=False)
    async def operations(request: Request):
        status = await read(request, "/operations/status")
        if status.status != 200:
            return problem(status, "operations")
        st = status.json()
        outbox = (await read(request, "/operations/outbox", {"limit": 20})).json()
        parts = [table(["clock", "outbox events", "not yet relayed", "dead letters", "dead letters not relayed"], [[
            e(st["clock"]), e(st["outbox_events"]), e(st["outbox_backlog"]),
            link("/console/dead-letters", st["dead_letters"]), e(st["dead_letters_not_relayed"])]])]
        parts.append("<h2>Positions and lag</h2>")
        lag = st["lag"]
        keys = sorted(set(st["positions"]) | set(lag or {}))
        parts.append(table(["source", "position", "lag"], [[e(k), e(st["positions"].get(k, "")),
                                                            e("" if lag is None else lag.get(k, ""))] for k in keys], {1, 2}))
        if lag is None:
            parts.append('<p class="muted">No broker configured: positions only.</p>')
        parts.append("<h2>Outbox backlog</h2>" + table(["seq", "event", "type", "subject", "recorded"], [[
            e(r["seq"]), e(r["event_id"]), e(r["event_type"]), e(r["subject"]), e(r["recorded_at"])]
            for r in outbox["items"]], {0}))
        for path, title in (("/operations/notifier/failures", "Notifier failures"),
                            ("/operations/channels/failures", "Channel rows refused")):
            answer = await read(request, path, {"limit": 50})
            if answer.status == 404:
                parts.append(f'<h2>{e(title)}</h2><p class="muted">Not configured for this server.</p>')
                continue
            items = answer.json() if answer.status == 200 else []
            headers = sorted({k for item in items for k in item})[:8]
            parts.append(f"<h2>{e(title)} ({len(items)})</h2>" + table(headers, [[e(i.get(h)) for h in headers]
                                                                              for i in items]))
            if path.startswith("/operations/notifier") and items:
                ids = " ".join(str(i.get("notification_id")) for i in items)
                parts.append(f"""<form class="action" data-endpoint="/operations/notifier/resend" data-kind="json">
<label>Request<textarea name="event" rows="2">{e(json.dumps({"ids": ids.split()}))}</textarea></label>
<button type="submit">Resend</button></form>""")
        return page("Operations", "operations", "".join(parts))

    @console.get("/dead-letters", include_in_schema=False)
    async def dead_letters(request: Request):
        q = dict(request.query_params)
        params = {k: q.get(k) for k in ("reason", "event_type", "offset")}
        answer = await read(request, "/dead-letters", {**params, "limit": 50})
        form = f"""<form class="filters" method="get" action="/console/dead-letters">
<label>Reason contains<input name="reason" value="{e(q.get("reason"))}"></label>
<label>Event type<input name="event_type" value="{e(q.get("event_type"))}"></label><button type="submit">Filter</button></form>"""
        if answer.status != 200:
            return page("Dead letters", "dead-letters", form + f'<p class="problem">{answer.status}: {e(answer.detail)}</p>',
                        answer.status)
        found = answer.json()
        rows = [[link(f"/console/dead-letters/{d['seq']}", d["seq"]), e(d["recorded_at"]), e(d["source"]),
                 e(d["position"]), e(d["event_type"]), e(d["event_id"]), e(d["reason"])] for d in found["items"]]
        shown = {k: v for k, v in params.items() if k != "offset"}
        return page("Dead letters", "dead-letters", form + pager("/console/dead-letters", shown, found["total"],
                                                                 found["limit"], found["offset"])
                    + table(["#", "recorded", "source", "position", "type", "event id", "reason"], rows))

    @console.get("/dead-letters/{seq}", include_in_schema=False)
    async def dead_letter(request: Request, seq: str):
        answer = await read(request, f"/dead-letters/{quote(seq, safe='')}")
        if answer.status != 200:
            return problem(answer, "dead-letters")
        d = answer.json()
        facts = table(["source", "position", "partition", "type", "event id", "recorded"], [[
            e(d["source"]), e(d["position"]), e(d["partition"]), e(d["event_type"]), e(d["event_id"]), e(d["recorded_at"])]])
        note = " (escaped: it held NUL or bytes that are not UTF-8)" if d["raw_escaped"] else ""
        note += f" (cut: {d['raw_size']} bytes in all)" if d["raw_size"] else ""
        return page(f"Dead letter {d['seq']}", "dead-letters", facts + f"""<h2>Reason</h2><p class="problem">{e(d["reason"])}</p>
<h2>Raw input{e(note)}</h2><p><a href="/dead-letters/{e(d["seq"])}/raw" download>Download the raw input</a></p>
<pre>{e(d["raw"])}</pre><h2>Re-submit, corrected</h2><p class="muted">Published to the input log as a new event (a new id);
needs the API token.</p><form class="action" data-endpoint="/dead-letters/{e(d["seq"])}/resubmit" data-kind="json">
<label style="flex:1">Corrected event<textarea name="event" rows="12">{e(d["raw"])}</textarea></label>
<button type="submit">Re-submit</button></form>""")

    @console.get("/consistency", include_in_schema=False)
    async def consistency(request: Request, run: str | None = None):
        intro = """<p>Rebuilds the state from the log (a replay, apart from the live state) and lists the orders whose
status or line backorders differ from the live state.</p><form method="get" action="/console/consistency">
<input type="hidden" name="run" value="1"><button type="submit">Run the replay audit</button></form>"""
        if services.audit is None:
            return page("Consistency", "consistency", '<p class="muted">No audit available on this server.</p>')
        if not run:
            return page("Consistency", "consistency", intro)
        try:
            found = await services.audit()
        except Exception as error:  # noqa: BLE001 - shown on the page, not a 500
            return page("Consistency", "consistency", intro + f'<p class="problem">The audit failed: '
                        f'{e(error.__class__.__name__)}: {e(str(error)[:300])}</p>', 503)
        parts = [intro, f"<p>Replayed from: {e(', '.join(found['replayed_from']) or 'nothing')}</p>"]
        if found["differences"] is None:
            parts.append(f'<p class="problem">Not compared: these logs cannot be read again: '
                         f'{e(", ".join(found["not_replayable"]) or "none recorded")}</p>')
        elif not found["differences"]:
            parts.append('<p id="consistent">No order differs: the live state is the replay of the log.</p>')
        else:
            parts.append(f"<p>{len(found['differences'])} orders differ.</p>" + table(
                ["order", "live status", "replayed status", "live lines", "replayed lines"],
                [[link(f"/console/orders/{quote(d['order_id'], safe='')}", d["order_id"]), e(d["live_status"]),
                  e(d["replayed_status"]), e(d["live_lines"]), e(d["replayed_lines"])] for d in found["differences"]]))
        return page("Consistency", "consistency", "".join(parts))

    return console
