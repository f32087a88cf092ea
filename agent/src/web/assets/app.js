// The dockhand status page. Everything shown comes from /api/status (the read model of
// `dockhand status --json`) and /api/events (that status every 2 s, readings as they happen).
// Values are only ever put into the page as text (textContent), never as markup: a barcode or a
// device message is data, whatever characters it holds.
"use strict";

const state = { status: null, now: null, live: {}, session: { actions: false, logged_in: false, csrf: null } };

const $ = (id) => document.getElementById(id);

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function cell(label, text, cls) {
  const td = el("td", text, { "data-label": label });
  if (cls) td.className = cls;
  return td;
}

function age(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "-";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
}

// Ages against the gateway's clock, not the phone's.
function since(t) {
  if (!t || !state.now) return "-";
  return age(Date.parse(state.now) - Date.parse(t));
}

function until(t) {
  if (!t || !state.now) return "-";
  return "in " + age(Date.parse(t) - Date.parse(state.now));
}

function replaceRows(table, rows) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...rows);
  $(table).hidden = rows.length === 0;
  const empty = $(table + "-empty");
  if (empty) empty.hidden = rows.length !== 0;
}

function liveText(body) {
  if (!body) return "";
  if (body.reading) {
    const r = body.reading;
    if (r.weight) return r.weight.value + " " + r.weight.unit + (r.weight.stable ? "" : " (moving)");
    if (r.condition) return typeof r.condition === "string" ? r.condition : JSON.stringify(r.condition);
  }
  if (body.scan) {
    const text = "last scan " + (body.scan.raw !== undefined ? body.scan.raw : JSON.stringify(body.scan));
    return body.problem ? text + " (" + body.problem + ")" : text;
  }
  return JSON.stringify(body);
}

function renderLive(device) {
  const row = document.querySelector('#devices tr[data-device="' + CSS.escape(device) + '"] .live-value');
  if (row) row.textContent = liveText(state.live["reading/" + device]);
}

function render() {
  const page = state.status;
  if (!page) return;
  const s = page.status;
  state.now = page.now;
  $("gateway").textContent = "dockhand " + page.gateway.id + " (" + page.gateway.site + ")";
  $("version").textContent = "v" + page.gateway.version;
  document.title = (s.verdict === "ok" ? "OK" : "ATTENTION") + " — dockhand " + page.gateway.id;

  const verdict = $("verdict");
  verdict.className = "verdict " + s.verdict;
  verdict.textContent = s.verdict === "ok" ? "OK: dockhand is running and nothing is stuck."
    : "ATTENTION: " + s.problems.length + " problem(s)";
  $("problems").replaceChildren(...s.problems.map((p) => el("li", p)));
  const d = s.daemon;
  $("daemon").textContent = "Daemon: " + (d.state === "running" ? "running (pid " + d.pid + ")" : d.state);
  const st = s.store;
  $("store").textContent = "Store: " + st.events + " events kept, " + Math.round(st.used_bytes * 100 / Math.max(1, st.max_bytes)) + "% of its limit used";

  replaceRows("devices", s.devices.map((dev) => {
    const tr = el("tr", null, { "data-device": dev.name });
    tr.append(cell("Device", dev.name, "name"), cell("State", dev.state, "state state-" + dev.state),
      cell("Since", since(dev.since), "since"));
    const live = cell("Live", liveText(state.live["reading/" + dev.name]), "live-value");
    tr.append(live, cell("Detail", dev.detail || "", "detail"));
    return tr;
  }));

  replaceRows("sinks", s.sinks.map((k) => {
    const tr = el("tr", null, { "data-sink": k.name });
    const pending = k.redeliveries ? k.pending + " (+" + k.redeliveries + " again)" : String(k.pending);
    tr.append(cell("Sink", k.name, "name"), cell("State", k.state, "state state-" + k.state),
      cell("Pending", pending, "pending"), cell("Oldest", since(k.oldest_pending_at), "oldest"),
      cell("Last error", k.last_error || k.paused || "", "last-error"),
      cell("Next attempt", k.next_attempt_at ? until(k.next_attempt_at) : "", "next-attempt"));
    return tr;
  }));

  const loggedIn = state.session.logged_in;
  const dead = page.dead_letters;
  $("dead-letters-empty").hidden = dead.length !== 0;
  $("dead-letters").replaceChildren(...dead.map((x) => {
    const li = el("li", null, { "data-dead-letter": String(x.id) });
    const where = x.sink ? "sink " + x.sink : "refused at ingest";
    li.append(el("strong", "#" + x.id), document.createTextNode(" " + since(x.created_at) + " ago, " + where + ": "),
      el("span", x.reason, { class: "reason" }), document.createTextNode(" "));
    const show = el("button", "Show", { type: "button", class: "show" });
    show.addEventListener("click", () => showDeadLetter(x.id));
    li.append(show);
    if (loggedIn && x.sink) {
      const retry = el("button", "Retry", { type: "button", class: "retry" });
      retry.addEventListener("click", () => act("dlq-retry", { ids: [x.id] }, retry));
      li.append(retry);
    }
    return li;
  }));

  replaceRows("print-queue", s.print_queue.map((j) => {
    const tr = el("tr", null, { "data-job": j.id });
    tr.append(cell("Job", j.id, "name"), cell("Printer", j.printer), cell("State", j.state, "state state-" + j.state),
      cell("Age", since(j.created_at)), cell("Error", j.last_error || ""));
    const td = cell("", "");
    if (loggedIn) {
      const again = el("button", "Reprint", { type: "button", class: "reprint" });
      again.addEventListener("click", () => act("reprint", { id: j.id }, again));
      td.append(again);
    }
    tr.append(td);
    return tr;
  }));

  replaceRows("stations", s.stations.map((x) => {
    const tr = el("tr", null, { "data-station": x.name });
    tr.append(cell("Station", x.name, "name"), cell("Workflow", x.workflow), cell("Waiting for", x.waiting_for, "waiting-for"),
      cell("Scans waiting", x.scans_waiting), cell("Last step", since(x.updated_at) + " ago"));
    return tr;
  }));

  const printers = s.devices.filter((x) => x.name && page.printers && page.printers.includes(x.name));
  renderActions(printers.map((x) => x.name));
}

function renderActions(printers) {
  const sess = state.session;
  $("actions-off").hidden = sess.actions;
  if (sess.actions_off_reason) {
    $("actions-off").textContent = "Actions are off: " + sess.actions_off_reason +
      ". Fix [web] token_file, then restart dockhand.";
  }
  $("login").hidden = !sess.actions || sess.logged_in;
  $("controls").hidden = !sess.logged_in;
  const select = $("printer");
  const current = [...select.options].map((o) => o.value).join("\n");
  if (current !== printers.join("\n")) select.replaceChildren(...printers.map((p) => el("option", p, { value: p })));
  $("print-test").parentElement.hidden = printers.length === 0;
}

async function showDeadLetter(id) {
  const answer = await fetch("/api/dead-letters/" + id, { headers: { accept: "application/json" } });
  const x = await answer.json();
  const box = $("dead-letter");
  box.hidden = false;
  $("dead-letter-title").textContent = answer.ok ? "Dead letter #" + x.id : "Dead letter #" + id;
  const fields = answer.ok ? [["Recorded", x.created_at], ["Sink", x.sink || "(refused at ingest)"], ["Origin", x.origin],
    ["Event", x.event_id ? x.event_id + " (seq " + x.event_seq + ")" : "-"], ["Reason", x.reason],
    ["Retried", x.retried_at || "no"], ["Size", x.body_bytes + " bytes"]] : [["Error", x.error]];
  $("dead-letter-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  $("dead-letter-body").textContent = answer.ok ? (x.body !== undefined ? x.body : x.body_hex) : "";
}

function showResult(lines, ok) {
  const out = $("action-result");
  out.hidden = false;
  out.className = ok ? "ok" : "failed";
  out.textContent = lines.join("\n");
}

async function act(name, body, button) {
  if (button) button.disabled = true;
  try {
    const answer = await fetch("/api/actions/" + name, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": state.session.csrf || "" },
      body: JSON.stringify(body),
    });
    const result = await answer.json();
    if (answer.status === 403) await loadSession();
    showResult(result.said ? result.said.map((l) => l.text) : [result.error], answer.ok);
    await refresh();
  } catch (e) {
    showResult(["The gateway did not answer: " + e], false);
  } finally {
    if (button) button.disabled = false;
  }
}

async function loadSession() {
  const answer = await fetch("/api/session");
  state.session = await answer.json();
  render();
}

async function refresh() {
  const answer = await fetch("/api/status");
  if (answer.ok) {
    take(await answer.json());
  }
}

function take(page) {
  state.status = page;
  Object.assign(state.live, page.live);
  render();
}

function connect() {
  const events = new EventSource("/api/events");
  const badge = $("connection");
  events.onopen = () => { badge.textContent = "live"; badge.className = "badge live"; };
  events.onerror = () => { badge.textContent = "reconnecting…"; badge.className = "badge"; };
  events.addEventListener("status", (e) => take(JSON.parse(e.data)));
  events.addEventListener("reading", (e) => {
    const r = JSON.parse(e.data);
    state.live[r.leaf] = r.body;
    if (r.leaf.startsWith("reading/")) renderLive(r.leaf.slice("reading/".length));
  });
}

function wire() {
  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const answer = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: $("token").value }),
    });
    $("token").value = "";
    if (!answer.ok) {
      showResult([(await answer.json()).error], false);
      return;
    }
    $("action-result").hidden = true;
    await loadSession();
  });
  $("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", headers: { "content-type": "application/json" } });
    await loadSession();
  });
  $("clear-alarms").addEventListener("click", (e) => act("clear-alarms", {}, e.target));
  $("retry-all").addEventListener("click", (e) => act("dlq-retry", { all: true }, e.target));
  $("print-test").addEventListener("click", (e) => act("print-test", { printer: $("printer").value }, e.target));
  $("dead-letter-close").addEventListener("click", () => { $("dead-letter").hidden = true; });
}

document.addEventListener("DOMContentLoaded", async () => {
  wire();
  await loadSession();
  await refresh();
  connect();
});
