"""The console's style sheet and its one script (served from /console/static/, so the
pages' Content-Security-Policy allows no inline script).

The script keeps the API token the operator enters in the tab's session storage only (it
is never sent to a page, never rendered back) and sends it as `Authorization: Bearer …`
with each action: a header, which a form posted from another site cannot set, so the
actions need no other CSRF token."""

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { background: #24364b; color: #fff; padding: .5em 1em; display: flex; gap: 1.2em; align-items: center; flex-wrap: wrap; }
header a { color: #fff; text-decoration: none; } header a.here { text-decoration: underline; }
header .token { margin-left: auto; display: flex; gap: .4em; align-items: center; }
main { padding: 1em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #eef2f6; } td.num { text-align: right; }
form.filters { display: flex; flex-wrap: wrap; gap: .6em; align-items: end; margin-bottom: .6em; }
form.filters label, form.action label { display: flex; flex-direction: column; font-size: 12px; }
form.action { border: 1px solid #ccd; padding: .5em; margin: .4em 0; display: flex; gap: .6em; align-items: end; flex-wrap: wrap; }
#result { padding: .5em; margin: .5em 0; min-height: 1.2em; }
#result.ok { background: #e5f5e8; } #result.error { background: #fbe4e1; }
.Full { color: #b03a2e; font-weight: bold; } .Partial { color: #b9770e; font-weight: bold; }
.problem { background: #fbe4e1; padding: .5em; }
textarea { width: 100%; font-family: monospace; }
.muted { color: #777; }
"""

SCRIPT = r"""
"use strict";
(function () {
  const KEY = "backorders-token";
  const token = () => sessionStorage.getItem(KEY);
  const state = document.getElementById("token-state");
  const show = () => { if (state) state.textContent = token() ? "token set for this tab" : "no token"; };
  const input = document.getElementById("token");
  const use = document.getElementById("use-token");
  if (use) use.addEventListener("click", () => {
    if (input.value) sessionStorage.setItem(KEY, input.value);
    input.value = ""; show();
  });
  const forget = document.getElementById("forget-token");
  if (forget) forget.addEventListener("click", () => { sessionStorage.removeItem(KEY); show(); });
  show();

  const result = document.getElementById("result");
  const say = (text, ok) => { result.textContent = text; result.className = ok ? "ok" : "error"; };
  const list = (value) => (value || "").split(/[\s,]+/).filter(Boolean);

  function body(form) {
    const kind = form.dataset.kind;
    const field = (name) => { const f = form.elements[name]; return f ? f.value.trim() : ""; };
    const envelope = {};
    if (field("time")) envelope.time = field("time");
    if (kind === "recalculate") return { ...envelope, data: { order_ids: list(field("order_ids")), skus: list(field("skus")) } };
    if (kind === "orders") return { ...envelope, data: { order_ids: list(field("order_ids")) } };
    if (kind === "reallocate") {
      const lines = [];
      for (const el of form.querySelectorAll("input[data-line]")) {
        if (el.value.trim() !== "") lines.push({ line_id: el.dataset.line, backorder_qty: Number(el.value) });
      }
      return { ...envelope, data: { order_id: field("order_id"), lines } };
    }
    return JSON.parse(field("event"));
  }

  for (const form of document.querySelectorAll("form[data-endpoint]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let payload;
      try { payload = body(form); } catch (error) { say("not JSON: " + error.message, false); return; }
      const headers = { "Content-Type": "application/json" };
      if (token()) headers["Authorization"] = "Bearer " + token();
      say("sending…", true);
      try {
        const answer = await fetch(form.dataset.endpoint, { method: "POST", headers, body: JSON.stringify(payload), credentials: "omit" });
        const json = await answer.json().catch(() => ({}));
        if (answer.status === 202) {
          const where = json.log === "kafka" ? `${json.topic} partition ${json.partition} offset ${json.position}`
                                             : `line ${json.position} of the log`;
          say(`accepted: event ${json.event_id} (${json.event_type}) published to ${where}; the state shows it once the runtime applied it`, true);
        } else if (answer.status === 200) {
          say("done: " + JSON.stringify(json), true);
        } else {
          say(`${answer.status}: ${json.detail || answer.statusText}`, false);
        }
      } catch (error) { say("the server did not answer: " + error.message, false); }
    });
  }
})();
"""
