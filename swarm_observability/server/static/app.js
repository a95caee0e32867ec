// swarm-obs page: the runs list and a run view, fed by the REST API and Server-Sent Events.
// No framework, no build step, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "swarm-obs-token";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const KINDS = ["invocation", "node", "probe", "agent", "plan", "llm", "tool"];
const MAX_LOG = 5000;

const view = { route: null, source: null, runId: null, events: [], types: new Set(), tree: null, state: null, graph: null,
  row: null, refreshTimer: null, mode: "scopes", logDirty: false };

// -- helpers ------------------------------------------------------------------------------------

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function h(tag, attrs = {}, html = "") {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  el.innerHTML = html;
  return el;
}
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m < 60 ? `${m} m ${String(s).padStart(2, "0")} s` : `${Math.floor(m / 60)} h ${m % 60} m`;
}
function fmtTime(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
function fmtNum(n) { return n === null || n === undefined ? "-" : Number(n).toLocaleString(); }
function badge(status, reason) {
  const text = status + (reason && status !== "running" ? ` (${reason})` : "");
  return `<span class="badge s-${esc(status)}">${esc(text)}</span>`;
}
function tokensOf(row) {
  const t = row && row.tokens;
  return t ? t.total_tokens ?? (t.input_tokens || 0) + (t.output_tokens || 0) : null;
}
function toast(message, bad = false) {
  const el = $("toast");
  el.textContent = message;
  el.className = "toast" + (bad ? " bad" : "");
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 4000);
}
async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}
function setLive(on, text) {
  $("live").className = "live " + (on ? "on" : "off");
  $("live-text").textContent = text;
}

// -- token ----------------------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function takeTokenFromHash() {
  const match = location.hash.match(/[#&]token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search + "#/");
  }
  updateTokenButton();
}
function updateTokenButton() {
  const btn = $("token-btn");
  btn.textContent = token() ? "token set" : "set token";
  btn.className = "ghost" + (token() ? " ok" : "");
}
function askToken() {
  const value = prompt("Control token (printed by `swarm-obs serve`, or $SWARM_OBS_TOKEN):", token());
  if (value !== null) { sessionStorage.setItem(TOKEN_KEY, value.trim()); updateTokenButton(); }
}

// -- routing --------------------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/run\/(.+)$/);
  closeStream();
  if (match) showRun(decodeURIComponent(match[1]));
  else showRuns();
}
function closeStream() {
  if (view.source) { view.source.close(); view.source = null; }
  clearTimeout(view.refreshTimer);
}

// -- runs list ------------------------------------------------------------------------------------

const runs = { rows: [], timer: null, seen: new Map() };

async function showRuns() {
  view.route = "runs";
  $("runs-view").hidden = false;
  $("run-view").hidden = true;
  $("crumbs").textContent = "";
  document.title = "swarm-obs: runs";
  await refreshRuns();
  const source = new EventSource("/api/events/stream");
  view.source = source;
  source.onopen = () => setLive(true, "live");
  source.onerror = () => setLive(false, "reconnecting");
  source.onmessage = () => scheduleRuns();
  source.addEventListener("gap", () => scheduleRuns());
  source.addEventListener("reset", () => scheduleRuns());
}
function scheduleRuns() {
  if (runs.timer) return;
  runs.timer = setTimeout(async () => { runs.timer = null; await refreshRuns(); }, 250);
}
async function refreshRuns() {
  try {
    const [table, stats] = await Promise.all([api("/api/runs?limit=200"), api("/api/events/stats")]);
    runs.rows = table.runs;
    renderStoreCards(stats, table.total);
    renderRuns();
  } catch (e) { toast(`cannot read runs: ${e.message}`, true); }
}
function renderStoreCards(stats, total) {
  const s = stats.store;
  $("store-info").textContent = `${s.backend}${s.location ? " · " + s.location : ""}`;
  const running = stats.runs_by_status.running || 0;
  const failed = stats.runs_by_status.failed || 0;
  const lastHour = stats.events_per_minute.reduce((a, m) => a + m.events, 0);
  const cards = [["runs", fmtNum(total)], ["running", fmtNum(running)], ["failed", fmtNum(failed)],
    ["events", fmtNum(s.events)], ["events, last hour", fmtNum(lastHour)],
    ["tokens", stats.tokens ? fmtNum(stats.tokens.total_tokens) : "-"]];
  $("store-cards").innerHTML = cards.map(([k, v]) => `<div class="card"><div class="k">${k}</div><div class="v">${v}</div></div>`).join("");
}
function renderRuns() {
  const text = $("runs-filter").value.toLowerCase();
  const status = $("runs-status").value;
  const body = $("runs-body");
  body.innerHTML = "";
  const rows = runs.rows.filter((r) => (!status || r.status === status) &&
    (!text || `${r.run_id} ${r.graph || ""} ${r.status}`.toLowerCase().includes(text)));
  for (const r of rows) {
    const tr = h("tr", { "data-run-id": r.run_id, "data-status": r.status });
    const progress = r.status === "completed" ? 1 : r.progress || 0;
    const barClass = r.status === "completed" ? "done" : r.status === "failed" ? "bad" : r.status === "cancelled" ? "stop" : "";
    tr.innerHTML = `<td>${badge(r.status, r.status_reason)}</td>
      <td class="mono"><a href="#/run/${encodeURIComponent(r.run_id)}">${esc(r.run_id)}</a></td>
      <td>${esc(r.graph || "-")}</td><td>${esc(fmtTime(r.started_at))}</td><td>${fmtDuration(r.duration_s)}</td>
      <td class="num" data-testid="events">${fmtNum(r.events)}</td><td class="num">${r.errors ? `<span class="s-failed">${r.errors}</span>` : "0"}</td>
      <td class="num">${fmtNum(tokensOf(r))}</td>
      <td><div class="progress"><div class="bar ${barClass}" style="width:${Math.round(progress * 100)}%"></div></div></td>`;
    if (runs.seen.has(r.run_id) && runs.seen.get(r.run_id) !== r.events) tr.classList.add("flash");
    runs.seen.set(r.run_id, r.events);
    tr.onclick = (ev) => { if (ev.target.tagName !== "A") location.hash = `#/run/${encodeURIComponent(r.run_id)}`; };
    body.appendChild(tr);
  }
  $("runs-empty").hidden = runs.rows.length > 0;
}

// -- run view -------------------------------------------------------------------------------------

async function showRun(runId) {
  Object.assign(view, { route: "run", runId, events: [], types: new Set(), tree: null, state: null, row: null, graph: null });
  $("runs-view").hidden = true;
  $("run-view").hidden = false;
  $("crumbs").innerHTML = `/ <a href="#/">runs</a> / ${esc(runId)}`;
  $("run-title").textContent = runId;
  document.title = `swarm-obs: ${runId}`;
  $("log-body").innerHTML = "";
  $("log-type").innerHTML = `<option value="">all types</option>`;
  try { await refreshRun(); } catch (e) { toast(e.status === 404 ? `unknown run ${runId}` : e.message, true); return; }
  const after = Math.max(0, view.state.last_seq - MAX_LOG);
  const source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/stream?after_seq=${after}`);
  view.source = source;
  source.onopen = () => setLive(true, "live");
  source.onerror = () => setLive(false, "reconnecting");
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    view.events.push(event);
    if (view.events.length > MAX_LOG) view.events.splice(0, view.events.length - MAX_LOG);
    if (!view.types.has(event.type)) {
      view.types.add(event.type);
      $("log-type").appendChild(h("option", { value: event.type }, esc(event.type)));
    }
    view.logDirty = true;
    scheduleRun();
  };
}
function scheduleRun() {
  if (view.refreshTimer) return;
  view.refreshTimer = setTimeout(async () => {
    view.refreshTimer = null;
    try { await refreshRun(); } catch (e) { toast(e.message, true); }
  }, 300);
}
async function refreshRun() {
  const id = encodeURIComponent(view.runId);
  const [run, tree, graph] = await Promise.all([api(`/api/runs/${id}`), api(`/api/runs/${id}/tree`),
    view.mode === "graph" ? api(`/api/runs/${id}/graph`) : Promise.resolve(view.graph)]);
  if (view.route !== "run") return;
  view.state = run.state; view.row = run.run; view.tree = tree; view.graph = graph;
  renderHeader(); renderGantt(); renderState();
  if (view.logDirty || !view.events.length) { renderLog(); view.logDirty = false; }
}
function renderHeader() {
  const s = view.state, r = view.row;
  $("run-status").className = `badge s-${s.status}`;
  $("run-status").textContent = s.status + (s.status_reason && s.status !== "running" ? ` (${s.status_reason})` : "");
  $("run-status").dataset.status = s.status;
  $("run-sub").textContent = [s.graph && `graph ${s.graph}`, s.thread_id && `thread ${s.thread_id}`,
    `started ${fmtTime(s.started_at)}`, s.last_message].filter(Boolean).join(" · ");
  const progress = s.status === "completed" ? 1 : s.progress || 0;
  const bar = $("run-progress");
  bar.style.width = `${Math.round(progress * 100)}%`;
  bar.className = "bar " + (s.status === "completed" ? "done" : s.status === "failed" ? "bad" : s.status === "cancelled" ? "stop" : "");
  const tokens = tokensOf(r);
  const cards = [["events", fmtNum(s.last_seq)], ["duration", fmtDuration(s.duration_s)],
    ["progress", s.progress === null ? "-" : `${Math.round(progress * 100)}%`], ["invocations", fmtNum(s.invocations)],
    ["running now", fmtNum(s.current_nodes.length)], ["errors", fmtNum(s.errors.length)],
    ["tokens", tokens === null ? "-" : fmtNum(tokens)]];
  $("run-cards").innerHTML = cards.map(([k, v]) => `<div class="card"><div class="k">${k}</div><div class="v" data-testid="card-${k.replace(" ", "-")}">${v}</div></div>`).join("");
  const errors = $("run-errors");
  errors.hidden = !s.errors.length;
  errors.innerHTML = s.errors.map((e) => `<div class="e"><b>seq ${e.seq}</b> ${esc(e.probe || e.agent || e.node || "scan")}: ${esc(e.error_type || e.event_type)}: ${esc(e.message || "")}</div>`).join("");
  const paused = s.status === "paused", resumable = paused && s.status_reason === "pause";
  const live = s.status === "running" || s.status === "pending";
  $("btn-cancel").disabled = !(live || resumable);
  $("btn-pause").disabled = !live;
  $("btn-resume").disabled = !resumable;
}

// -- timeline (Gantt) -----------------------------------------------------------------------------

function kindClass(kind) { return "k-" + (KINDS.includes(kind) ? kind : "other"); }
function flatten(tree) {
  const rows = [];
  const walk = (scope, depth, label) => {
    rows.push({ scope, depth, label });
    for (const child of scope.children) walk(child, depth + 1);
  };
  tree.invocations.forEach((inv, i) => walk(inv, 0, `invocation ${i + 1} (${inv.name})`));
  return rows;
}
function bounds(rows) {
  let t0 = Infinity, t1 = -Infinity;
  const now = Date.now();
  for (const { scope } of rows) {
    const start = Date.parse(scope.start);
    const end = scope.end ? Date.parse(scope.end) : scope.outcome === "open" ? Math.max(now, start) : start;
    t0 = Math.min(t0, start); t1 = Math.max(t1, end);
  }
  if (!isFinite(t0)) { t0 = now; t1 = now + 1000; }
  if (t1 - t0 < 50) t1 = t0 + 50;
  return [t0, t1];
}
function ticks(t0, t1) {
  const span = t1 - t0, steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 3e4, 6e4, 3e5, 6e5, 18e5, 36e5];
  const step = steps.find((s) => span / s <= 8) || 36e5;
  const out = [];
  for (let t = 0; t <= span; t += step) out.push([t / span * 100, fmtDuration(t / 1000)]);
  return out;
}
function bar(scope, t0, t1) {
  const start = Date.parse(scope.start);
  const end = scope.end ? Date.parse(scope.end) : scope.outcome === "open" ? Date.now() : start;
  const left = (start - t0) / (t1 - t0) * 100;
  const width = Math.max((end - start) / (t1 - t0) * 100, 0.15);
  const classes = ["g-bar", kindClass(scope.kind), scope.outcome === "open" ? "open" : "",
    scope.outcome === "error" ? "error" : "", scope.outcome === "cancelled" ? "cancelled" : ""].join(" ");
  const title = `${scope.kind} ${scope.name}: ${scope.outcome}` +
    (scope.duration_ms !== null && scope.duration_ms !== undefined ? `, ${fmtDuration(scope.duration_ms / 1000)}` : "") +
    (scope.error ? `\n${scope.error}` : "") + (scope.results !== undefined ? `\n${scope.results} result(s)` : "");
  return `<div class="${classes}" style="left:${left.toFixed(3)}%;width:${Math.min(width, 100 - left).toFixed(3)}%" title="${esc(title)}"></div>`;
}
function renderGantt() {
  const el = $("gantt");
  const tree = view.tree;
  if (!tree || !tree.invocations.length) { el.innerHTML = `<p class="muted">no scopes yet</p>`; return; }
  if (view.mode === "graph") { el.innerHTML = graphView(view.graph); $("legend").innerHTML = ""; return; }
  const rows = flatten(tree);
  const [t0, t1] = bounds(rows);
  let html = `<div class="g-axis"><div></div><div class="g-ticks">${ticks(t0, t1).map(([p, t]) => `<span class="g-tick" style="left:${p}%">${t}</span>`).join("")}</div></div>`;
  if (view.mode === "agents") html += agentLanes(rows, t0, t1);
  else html += rows.map(({ scope, depth, label }) => {
    const name = label || `<span class="k">${esc(scope.kind)}</span>${esc(scope.name)}${scope.step !== undefined ? ` <span class="k">#${scope.step}</span>` : ""}`;
    const pauses = (scope.events || []).filter((e) => e.type === "scan_paused").map((e) =>
      `<div class="g-mark" title="paused" style="left:${((Date.parse(e.timestamp) - t0) / (t1 - t0) * 100).toFixed(3)}%"></div>`).join("");
    const cls = scope.kind === "invocation" ? "g-row g-inv" : "g-row";
    return `<div class="${cls}" data-kind="${esc(scope.kind)}"><div class="g-label" style="padding-left:${depth * 14}px" title="${esc(scope.kind + " " + scope.name)}">${name}</div><div class="g-track">${bar(scope, t0, t1)}${pauses}</div></div>`;
  }).join("");
  el.innerHTML = html;
  const kinds = new Set(rows.map((r) => r.scope.kind));
  $("legend").innerHTML = KINDS.filter((k) => kinds.has(k)).map((k) => `<span><i class="${kindClass(k)}"></i>${k}</span>`).join("");
}
function agentLanes(rows, t0, t1) {
  // One lane per agent (and per probe): every execution of it on one row, so a long swarm reads as swimlanes.
  const lanes = new Map();
  for (const { scope } of rows) {
    if (!["agent", "probe", "llm", "tool"].includes(scope.kind)) continue;
    const key = `${scope.kind === "llm" || scope.kind === "tool" ? "agent" : scope.kind}:${scope.kind === "llm" || scope.kind === "tool" ? (scope.agent || scope.name) : scope.name}`;
    if (!lanes.has(key)) lanes.set(key, []);
    lanes.get(key).push(scope);
  }
  if (!lanes.size) return `<p class="muted">no agents or probes in this run</p>`;
  return [...lanes.entries()].map(([key, scopes]) => {
    const [kind, name] = key.split(/:(.*)/s);
    return `<div class="g-row" data-lane="${esc(name)}"><div class="g-label"><span class="k">${esc(kind)}</span>${esc(name)} <span class="k">×${scopes.length}</span></div><div class="g-track">${scopes.map((s) => bar(s, t0, t1)).join("")}</div></div>`;
  }).join("");
}

// -- graph view -----------------------------------------------------------------------------------

function graphView(graph) {
  // The recorded get_graph() shape, left to right by distance from __start__; counts and what runs now.
  if (!graph) return `<p class="muted">loading the graph ...</p>`;
  if (!graph.nodes.length) return `<p class="muted">no graph recorded for this run</p>`;
  const depth = new Map([["__start__", 0]]);
  const queue = ["__start__"];
  while (queue.length) {
    const at = queue.shift();
    for (const e of graph.edges) if (e.source === at && !depth.has(e.target)) { depth.set(e.target, depth.get(at) + 1); queue.push(e.target); }
  }
  let maxDepth = Math.max(0, ...depth.values());
  for (const n of graph.nodes) if (!depth.has(n.id)) depth.set(n.id, ++maxDepth);
  const columns = new Map();
  for (const n of graph.nodes) { const d = depth.get(n.id); if (!columns.has(d)) columns.set(d, []); columns.get(d).push(n); }
  const W = 150, H = 44, GX = 70, GY = 22, pos = new Map();
  const tallest = Math.max(...[...columns.values()].map((c) => c.length));
  for (const [d, col] of columns) col.forEach((n, i) => pos.set(n.id, { x: 10 + d * (W + GX), y: 10 + (tallest - col.length) * (H + GY) / 2 + i * (H + GY) }));
  const width = 20 + (maxDepth + 1) * (W + GX), height = 20 + tallest * (H + GY);
  const edges = graph.edges.filter((e) => pos.has(e.source) && pos.has(e.target)).map((e) => {
    const a = pos.get(e.source), b = pos.get(e.target);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, back = x2 <= x1;
    const down = b.y > a.y;
    const d = a.x === b.x ? `M${a.x + W / 2},${down ? a.y + H : a.y} L${b.x + W / 2},${down ? b.y : b.y + H}`
      : back ? `M${x1 - W / 2},${y1 + H / 2} C${x1 - W / 2},${y1 + H * 1.6} ${x2 + W / 2},${y2 + H * 1.6} ${x2 + W / 2},${y2 + H / 2}`
      : `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`;
    return `<path d="${d}" class="edge${e.conditional ? " cond" : ""}" marker-end="url(#arrow)"/>`;
  }).join("");
  const nodes = graph.nodes.map((n) => {
    const p = pos.get(n.id), special = n.id.startsWith("__");
    const errors = n.outcomes.error || 0;
    const cls = ["gnode", special ? "special" : "", n.running ? "running" : "", errors ? "error" : "", n.executions ? "ran" : ""].join(" ");
    const label = special ? n.id.replace(/__/g, "") : n.id;
    const count = special ? "" : `<text x="${p.x + W / 2}" y="${p.y + 33}" class="count">×${n.executions}${n.running ? " · running" : ""}${errors ? ` · ${errors} error` : ""}</text>`;
    return `<g class="${cls}" data-node="${esc(n.id)}"><rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="${special ? 22 : 6}"/><text x="${p.x + W / 2}" y="${p.y + (special ? 26 : 18)}" class="name">${esc(label)}</text>${count}</g>`;
  }).join("");
  const note = graph.recorded ? "" : `<p class="muted">no shape recorded for this run: the nodes seen in its log</p>`;
  return `${note}<svg class="graph" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6e7681"/></marker></defs>${edges}${nodes}</svg>`;
}

// -- derived state --------------------------------------------------------------------------------

function statsTable(title, group, withResults) {
  const names = Object.keys(group).sort();
  if (!names.length) return "";
  const rows = names.map((n) => {
    const s = group[n];
    const outcomes = Object.entries(s.outcomes).map(([k, v]) => `<span class="s-${esc(k)}">${esc(k)} ${v}</span>`).join(" ") || "-";
    return `<tr><td class="mono">${esc(n || "(graph)")}</td><td class="num">${s.started}</td><td class="num">${s.finished}</td><td>${outcomes}</td><td class="num">${fmtDuration(s.total_duration_ms / 1000)}</td>${withResults ? `<td class="num">${s.results}</td>` : ""}</tr>`;
  }).join("");
  return `<h3>${title}</h3><table class="grid"><thead><tr><th>name</th><th class="num">started</th><th class="num">done</th><th>outcomes</th><th class="num">time</th>${withResults ? `<th class="num">results</th>` : ""}</tr></thead><tbody>${rows}</tbody></table>`;
}
function renderState() {
  const s = view.state;
  $("state-now").textContent = `seq ${s.last_seq} · fold v${s.version}`;
  const now = s.current_nodes.length
    ? `<h3>running now</h3>` + s.current_nodes.map((n) => `<div class="now">▶ ${esc(n.node)} <span class="muted">step ${n.step ?? "-"}${n.progress !== null ? ` · ${Math.round(n.progress * 100)}%` : ""}</span></div>`).join("")
    : "";
  $("state").className = "state";
  $("state").innerHTML = now + statsTable("nodes", s.nodes) + statsTable("probes", s.probes, true) +
    statsTable("agents", s.agents) + statsTable("plans", s.plans);
}

// -- event log ------------------------------------------------------------------------------------

function isError(e) {
  const d = e.data || {};
  return e.type === "scan_error" || d.outcome === "error" || Boolean(d.error_type) || e.type.endsWith("_error");
}
function typeClass(type) {
  const prefix = type.split("_")[0];
  return ["scan", "node", "probe", "agent", "llm", "tool", "log"].includes(prefix) ? `t-${prefix}` : "";
}
function summary(e) {
  const where = ["node", "probe", "agent"].filter((k) => e[k]).map((k) => `${k}=${e[k]}`).join(" ");
  let text = e.message || "";
  if (e.progress !== undefined && e.progress !== null) text = `${Math.round(e.progress * 100)}% ${text}`;
  if (e.data && e.type !== "node_progress") {
    const data = Object.entries(e.data).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
    text += " " + (data.length > 300 ? data.slice(0, 297) + "..." : data);
  }
  return [where, text.trim()];
}
function renderLog() {
  const text = $("log-filter").value.toLowerCase();
  const type = $("log-type").value;
  const errorsOnly = $("log-errors").checked;
  const body = $("log-body");
  const box = $("log");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 30;
  const shown = view.events.filter((e) => (!type || e.type === type) && (!errorsOnly || isError(e)) &&
    (!text || JSON.stringify(e).toLowerCase().includes(text)));
  body.innerHTML = shown.map((e) => {
    const [where, msg] = summary(e);
    const cls = (isError(e) ? "err " : "") + (e.type.startsWith("scan_") ? "term" : "");
    return `<tr class="${cls}" data-seq="${e.seq}"><td class="seq">${e.seq}</td><td class="ts">${esc((e.timestamp || "").slice(11, 23))}</td><td><span class="t ${typeClass(e.type)}">${esc(e.type)}</span></td><td>${esc(where)}</td><td class="msg" title="${esc(msg)}">${esc(msg)}</td></tr>`;
  }).join("");
  $("log-count").textContent = shown.length === view.events.length ? `${view.events.length}` : `${shown.length} of ${view.events.length}`;
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// -- control --------------------------------------------------------------------------------------

async function control(action) {
  if (!token()) askToken();
  if (!token()) return;
  try {
    await api(`/api/runs/${encodeURIComponent(view.runId)}/${action}`, {
      method: "POST",
      headers: { "Authorization": `Bearer ${token()}`, "Content-Type": "application/json" },
      body: JSON.stringify({ reason: `${action} from the swarm-obs page` }),
    });
    toast(`${action} requested: it takes effect at the scan's next safe point`);
  } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem(TOKEN_KEY); updateTokenButton(); }
    toast(`${action} refused: ${e.message}`, true);
  }
}

// -- wiring ---------------------------------------------------------------------------------------

window.addEventListener("hashchange", () => { takeTokenFromHash(); route(); });
$("token-btn").onclick = askToken;
$("runs-filter").oninput = renderRuns;
$("runs-status").onchange = renderRuns;
$("log-filter").oninput = renderLog;
$("log-type").onchange = renderLog;
$("log-errors").onchange = renderLog;
$("btn-cancel").onclick = () => control("cancel");
$("btn-pause").onclick = () => control("pause");
$("btn-resume").onclick = () => control("resume");
for (const tab of document.querySelectorAll("#timeline-tabs .tab")) {
  tab.onclick = () => {
    document.querySelectorAll("#timeline-tabs .tab").forEach((t) => t.classList.toggle("active", t === tab));
    view.mode = tab.dataset.mode;
    if (view.mode === "graph") scheduleRun();
    renderGantt();
  };
}
setInterval(() => {
  // Open bars grow with the clock between events.
  if (view.route === "run" && view.state && !TERMINAL.has(view.state.status)) renderGantt();
}, 1000);
takeTokenFromHash();
route();
