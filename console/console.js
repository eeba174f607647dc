// The wsgate console: one page, six views, live updates from
// /api/stream (Server-Sent Events). Plain DOM, no framework.
import { colour, lineChart } from "/charts.js";

const $ = (selector) => document.querySelector(selector);
const VIEWS = ["overview", "connections", "events", "client", "logs", "charts"];
const ROWS_SHOWN = 500;

const state = {
  overview: null,
  view: "overview",
  eventsPaused: false,
  logsPaused: false,
  seconds: [],
  selectedEvent: null,
};

// ---- helpers -------------------------------------------------------------

async function api(path, options = {}) {
  const init = { ...options, headers: { ...(options.headers ?? {}) } };
  // Every change carries this header: another site's page cannot add it.
  if (init.method && init.method !== "GET") init.headers["x-wsgate-console"] = "1";
  const response = await fetch(path, init);
  const text = await response.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* plain text */ }
  if (!response.ok) {
    const message = typeof body === "object" ? body.message : text.trim();
    throw new Error(`${response.status}: ${message || response.statusText}`);
  }
  return body;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const time = (ms) => new Date(ms).toLocaleTimeString();
const ago = (ms) => {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ago`;
};
const pretty = (json) => {
  try { return JSON.stringify(JSON.parse(json), null, 2); } catch { return json; }
};
const apiQuery = (name) => (state.overview?.apis.length > 1 ? `?api=${encodeURIComponent(name)}` : "");

// ---- views ---------------------------------------------------------------

function show(view) {
  if (!VIEWS.includes(view)) view = "overview";
  state.view = view;
  for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  refresh(view);
}

function route() {
  const [view, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query ?? "");
  if (view === "events" && params.has("connection")) {
    $("#event-connection").value = params.get("connection");
  }
  show(view || "overview");
}

async function refresh(view) {
  try {
    if (view === "overview") await loadOverview();
    if (view === "connections") await loadConnections();
    if (view === "events") await loadEvents();
    if (view === "logs") await loadLogs();
    if (view === "charts") await loadSeconds();
  } catch (error) {
    console.error(error);
  }
}

// ---- overview ------------------------------------------------------------

async function loadOverview() {
  const overview = await api("/api/overview");
  state.overview = overview;
  $("#api-title").textContent = overview.apis.map((a) => `${a.name} · ${a.stage}`).join(", ");
  const total = overview.apis.reduce((sum, a) => sum + a.connections, 0);
  $("#connection-count").textContent = total;
  $("#apis").replaceChildren(...overview.apis.map(apiCard));
  const k = overview.kept;
  $("#kept").textContent =
    `The console keeps the newest ${k.events} events (bodies of events and replies up to ${k.bodyBytes / 1024} KiB each), ` +
    `${k.logLines} handler log lines and ${k.seconds / 60} minutes of chart data, in memory.`;
  fillRouteSelects(overview);
  if (!$("#client-url").value && overview.apis[0]) $("#client-url").value = overview.apis[0].url;
}

function apiCard(a) {
  const instances = (i) => (i ? `${i.starting} starting · ${i.idle} idle · ${i.busy} busy` : "—");
  return el("div", { class: "card" },
    el("h2", {}, a.name),
    el("dl", {},
      el("dt", {}, "Stage"), el("dd", {}, a.stage),
      el("dt", {}, "API id"), el("dd", {}, a.apiId),
      el("dt", {}, "url"), el("dd", {}, a.url),
      el("dt", {}, "managementEndpoint"), el("dd", {}, a.managementEndpoint),
      el("dt", {}, "Open connections"), el("dd", { "data-connections": a.name }, a.connections),
      a.node ? [
        el("dt", {}, "This node"), el("dd", {}, `${a.node.name} (slot ${a.node.slot})`),
        el("dt", {}, "Live nodes"),
        el("dd", { class: "nodes" }, a.node.nodes.map((n) => `${n.name} (slot ${n.slot})`).join(", ") || "NATS cannot say now"),
      ] : [],
    ),
    el("div", { class: "scroll" },
      el("table", { class: "routes" },
        el("thead", {}, el("tr", {}, ["Route", "Kind", "Target", "Two-way", "Instances"].map((h) => el("th", {}, h)))),
        el("tbody", {}, a.routes.map((r) =>
          el("tr", { dataset: { route: r.key } },
            el("td", {}, el("code", {}, r.key)),
            el("td", {}, r.kind),
            el("td", { class: "wrap" }, r.target),
            el("td", {}, r.returnResponse ? "yes" : "no"),
            el("td", {}, instances(r.instances)),
          ))),
      ),
    ),
  );
}

function fillRouteSelects(overview) {
  const keys = [...new Set(overview.apis.flatMap((a) => a.routes.map((r) => r.key)))].sort();
  for (const select of [$("#event-route"), $("#log-route")]) {
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "all"), ...keys.map((k) => el("option", { value: k }, k)));
    select.value = keys.includes(chosen) ? chosen : "";
  }
}

// ---- connections ---------------------------------------------------------

async function loadConnections() {
  const q = $("#connection-search").value.trim();
  const list = await api(`/api/connections${q ? `?q=${encodeURIComponent(q)}` : ""}`);
  const shown = list.connections.length;
  $("#connection-matching").textContent =
    list.matching === shown ? `${shown} open` : `${list.matching} match, newest ${shown} shown`;
  if (!q) $("#connection-count").textContent = list.matching;
  $("#connections tbody").replaceChildren(...list.connections.map(connectionRow));
}

function connectionRow(c) {
  // data-label names each cell where a phone shows rows as cards.
  return el("tr", { dataset: { connectionId: c.connectionId } },
    el("td", { "data-label": "Connection id" }, el("code", {}, c.connectionId)),
    el("td", { "data-label": "Source ip" }, c.sourceIp),
    el("td", { class: "wrap", "data-label": "User agent" }, c.userAgent ?? "—"),
    el("td", { title: new Date(c.connectedAt).toISOString(), "data-label": "Connected" }, time(c.connectedAt)),
    el("td", { title: new Date(c.lastActiveAt).toISOString(), "data-label": "Last active" }, ago(c.lastActiveAt)),
    el("td", { class: "wrap", "data-label": "Principal" }, c.principal ?? "—"),
    el("td", { class: "messages-in", "data-label": "Messages in" }, c.messagesIn),
    el("td", { class: "messages-out", "data-label": "Messages out" }, c.messagesOut),
    el("td", { "data-label": "Actions" },
      el("div", { class: "actions" },
        el("button", { type: "button", class: "send", onclick: () => openSend(c) }, "Send"),
        el("button", { type: "button", class: "disconnect danger", onclick: () => disconnect(c) }, "Disconnect"),
        el("a", { href: `#events?connection=${encodeURIComponent(c.connectionId)}`, class: "history" }, "Events"),
      )),
  );
}

let sendTarget = null;
function openSend(c) {
  sendTarget = c;
  $("#send-target").textContent = c.connectionId;
  $("#send-result").textContent = "";
  $("#send-dialog").showModal();
  $("#send-data").focus();
}

async function submitSend(event) {
  event.preventDefault();
  const c = sendTarget;
  try {
    await api(`/api/connections/${encodeURIComponent(c.connectionId)}${apiQuery(c.api)}`, {
      method: "POST",
      body: $("#send-data").value,
    });
    $("#send-result").textContent = "Sent.";
  } catch (error) {
    $("#send-result").textContent = `Not sent: ${error.message}`;
  }
}

async function disconnect(c) {
  if (!confirm(`Disconnect ${c.connectionId}? Its $disconnect handler runs, as after DeleteConnection.`)) return;
  try {
    await api(`/api/connections/${encodeURIComponent(c.connectionId)}${apiQuery(c.api)}`, { method: "DELETE" });
  } catch (error) {
    alert(`Not disconnected: ${error.message}`);
  }
  loadConnections();
}

// ---- events --------------------------------------------------------------

function eventFilter() {
  return {
    route: $("#event-route").value,
    connection: $("#event-connection").value.trim(),
    status: $("#event-status").value,
  };
}

function keeps(filter, e) {
  return (!filter.route || e.routeKey === filter.route)
    && (!filter.connection || e.connectionId === filter.connection)
    && (!filter.status || String(Math.floor(e.status / 100)) === filter.status);
}

async function loadEvents() {
  const f = eventFilter();
  const params = new URLSearchParams({ limit: ROWS_SHOWN });
  if (f.route) params.set("route", f.route);
  if (f.connection) params.set("connection", f.connection);
  if (f.status) params.set("status", f.status);
  const events = await api(`/api/events?${params}`);
  $("#events tbody").replaceChildren(...events.map(eventRow));
}

function eventRow(e) {
  const row = el("tr", {
    tabindex: "0",
    dataset: { seq: e.seq, route: e.routeKey, connectionId: e.connectionId },
    "aria-selected": state.selectedEvent === e.seq ? "true" : "false",
    onclick: () => openEvent(e.seq, row),
    onkeydown: (k) => { if (k.key === "Enter" || k.key === " ") { k.preventDefault(); openEvent(e.seq, row); } },
  },
    el("td", { "data-label": "Time" }, time(e.at)),
    el("td", { "data-label": "Type" }, e.eventType),
    el("td", { "data-label": "Route" }, el("code", {}, e.routeKey)),
    el("td", { class: `status-${Math.floor(e.status / 100)}`, "data-label": "Status" }, e.status),
    el("td", { "data-label": "Latency" }, e.latencyMs === null ? "—" : `${e.latencyMs.toFixed(e.latencyMs < 10 ? 2 : 0)} ms`),
    el("td", { "data-label": "Connection" }, el("code", {}, e.connectionId)),
    el("td", { class: "wrap", "data-label": "Error" }, e.error ?? ""),
  );
  return row;
}

function addLiveEvent(e) {
  if (state.eventsPaused || state.view !== "events" || !keeps(eventFilter(), e)) return;
  const body = $("#events tbody");
  body.prepend(eventRow(e));
  while (body.children.length > ROWS_SHOWN) body.lastChild.remove();
}

async function openEvent(seq, row) {
  state.selectedEvent = seq;
  for (const r of document.querySelectorAll("#events tbody tr")) r.setAttribute("aria-selected", r === row ? "true" : "false");
  const aside = $("#event-detail");
  try {
    const d = await api(`/api/events/${seq}`);
    aside.replaceChildren(
      el("h2", {}, `${d.eventType} ${d.routeKey}`),
      el("dl", {},
        el("dt", {}, "Status"), el("dd", {}, d.status),
        el("dt", {}, "Request id"), el("dd", {}, d.requestId),
        el("dt", {}, "Connection"), el("dd", {}, d.connectionId),
        el("dt", {}, "Time"), el("dd", {}, new Date(d.at).toISOString()),
        d.error ? [el("dt", {}, "Error"), el("dd", {}, d.error)] : [],
      ),
      el("h2", {}, "Event the handler received"),
      d.event ? el("pre", { id: "event-json", tabindex: "0" }, pretty(d.event)) : el("p", { class: "note" }, "No handler ran for this event."),
      el("h2", {}, "Handler's reply"),
      d.reply ? el("pre", { id: "event-reply", tabindex: "0" }, pretty(d.reply)) : el("p", { class: "note" }, "—"),
      el("h2", {}, "Access-log line"),
      d.accessLogLine ? el("pre", { id: "event-log-line" }, d.accessLogLine) : el("p", { class: "note" }, "This API keeps no access log."),
    );
  } catch (error) {
    aside.replaceChildren(el("p", { class: "note" }, error.message));
  }
}

// ---- test client ---------------------------------------------------------

let clientNumber = 0;
function openClient(event) {
  event.preventDefault();
  const query = $("#client-query").value.trim().replace(/^\?/, "");
  const url = $("#client-url").value + (query ? `?${query}` : "");
  const number = ++clientNumber;
  const log = el("ol", { "aria-live": "polite", "aria-label": `client ${number} messages` });
  const status = el("span", { class: "badge client-status" }, "connecting");
  const input = el("input", { "aria-label": `message for client ${number}`, placeholder: '{"action":"sendMessage","data":"hi"}', disabled: true });
  const send = el("button", { type: "submit", disabled: true }, "Send");
  const close = el("button", { type: "button", class: "danger" }, "Close");
  const card = el("div", { class: "card client", dataset: { client: number } },
    el("header", {}, el("strong", {}, `Client ${number}`), status),
    el("code", { class: "note" }, url),
    log,
    el("form", {}, input, send),
    el("div", {}, close),
  );
  const line = (kind, text) => {
    log.append(el("li", { class: kind }, text));
    log.scrollTop = log.scrollHeight;
  };
  let socket;
  try {
    socket = new WebSocket(url);
  } catch (error) {
    status.textContent = "failed";
    line("system", error.message);
  }
  if (socket) {
    socket.onopen = () => {
      status.textContent = "open";
      status.className = "badge client-status on";
      input.disabled = send.disabled = false;
      input.focus();
    };
    socket.onmessage = (m) => line("received", typeof m.data === "string" ? m.data : "(binary frame)");
    socket.onclose = (c) => {
      status.textContent = `closed ${c.code}`;
      status.className = "badge client-status off";
      input.disabled = send.disabled = true;
      line("system", `closed: ${c.code}${c.reason ? ` ${c.reason}` : ""}${c.wasClean ? "" : " (not clean)"}`);
    };
    socket.onerror = () => line("system", "error (the upgrade may have been refused)");
  }
  card.querySelector("form").addEventListener("submit", (s) => {
    s.preventDefault();
    if (!input.value) return;
    socket.send(input.value);
    line("sent", input.value);
    input.value = "";
  });
  close.addEventListener("click", () => {
    if (socket && socket.readyState <= 1) socket.close(1000);
    else card.remove();
  });
  $("#clients").append(card);
}

// ---- logs ----------------------------------------------------------------

function logLine(l) {
  return el("div", { class: l.stream, dataset: { route: l.route } },
    `${time(l.at)} ${l.route} [${l.instance}] ${l.text}`);
}

async function loadLogs() {
  const r = $("#log-route").value;
  const lines = await api(`/api/logs${r ? `?route=${encodeURIComponent(r)}` : ""}`);
  const pre = $("#logs");
  pre.replaceChildren(...lines.map(logLine));
  pre.scrollTop = pre.scrollHeight;
}

function addLiveLog(l) {
  if (state.logsPaused || state.view !== "logs") return;
  const r = $("#log-route").value;
  if (r && l.route !== r) return;
  const pre = $("#logs");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(logLine(l));
  while (pre.children.length > 2000) pre.firstChild.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// ---- charts --------------------------------------------------------------

async function loadSeconds() {
  state.seconds = await api("/api/seconds");
  drawCharts();
}

function drawCharts() {
  if (state.view !== "charts") return;
  const s = state.seconds;
  const range = s.length ? [s[0].t, s[s.length - 1].t] : undefined;
  lineChart($("#chart-connections"), [{ points: s.map((p) => [p.t, p.connections]), colour: colour(0) }], range);
  lineChart($("#chart-messages"), [{ points: s.map((p) => [p.t, p.messages]), colour: colour(1) }], range);
  const routes = [...new Set(s.flatMap((p) => Object.keys(p.latency)))].sort();
  const at = (r, q) => s.map((p) => [p.t, p.latency[r] ? p.latency[r][q] : null]);
  const series = routes.flatMap((r, i) => [
    { points: at(r, 0), colour: colour(i) },
    { points: at(r, 1), colour: colour(i), dashed: true },
  ]);
  lineChart($("#chart-latency"), series, range);
  $("#latency-legend").replaceChildren(
    ...routes.map((r, i) => {
      const entry = el("span", {}, `${r} (p50 solid, p99 dashed)`);
      entry.style.color = colour(i); // CSSOM: the page allows no inline style attributes
      return entry;
    }),
  );
}

// ---- live updates --------------------------------------------------------

function connectStream() {
  const live = $("#live");
  const stream = new EventSource("/api/stream");
  stream.onopen = () => {
    live.textContent = "live";
    live.className = "badge on";
    refresh(state.view);
  };
  stream.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "badge off";
  };
  stream.addEventListener("event", (m) => {
    const e = JSON.parse(m.data);
    addLiveEvent(e);
    if (e.eventType !== "MESSAGE") scheduleConnections();
  });
  stream.addEventListener("log", (m) => addLiveLog(JSON.parse(m.data)));
  stream.addEventListener("second", (m) => {
    const second = JSON.parse(m.data);
    state.seconds.push(second);
    if (state.seconds.length > 300) state.seconds.shift();
    $("#connection-count").textContent = second.connections;
    drawCharts();
  });
  stream.addEventListener("lagged", () => refresh(state.view));
}

let connectionsTimer = null;
function scheduleConnections() {
  if (connectionsTimer) return;
  connectionsTimer = setTimeout(() => {
    connectionsTimer = null;
    if (state.view === "connections") loadConnections();
    if (state.view === "overview") loadOverview();
  }, 150);
}

// ---- wiring --------------------------------------------------------------

function togglePause(button, key) {
  state[key] = !state[key];
  button.setAttribute("aria-pressed", String(state[key]));
  button.textContent = state[key] ? "Resume" : "Pause";
  if (!state[key]) refresh(state.view);
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  $("#connection-search").addEventListener("input", () => loadConnections());
  for (const id of ["#event-route", "#event-status"]) $(id).addEventListener("change", loadEvents);
  $("#event-connection").addEventListener("input", loadEvents);
  $("#event-pause").addEventListener("click", (e) => togglePause(e.currentTarget, "eventsPaused"));
  $("#log-pause").addEventListener("click", (e) => togglePause(e.currentTarget, "logsPaused"));
  $("#log-route").addEventListener("change", loadLogs);
  $("#send-form").addEventListener("submit", submitSend);
  $("#send-cancel").addEventListener("click", () => $("#send-dialog").close());
  $("#client-form").addEventListener("submit", openClient);
  window.addEventListener("resize", drawCharts);
  // Counters (messages in and out, last active) move without events.
  setInterval(() => {
    if (state.view === "connections") loadConnections();
    if (state.view === "overview") loadOverview();
  }, 2000);
  await loadOverview().catch((error) => console.error(error));
  route();
  connectStream();
});
