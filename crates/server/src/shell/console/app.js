// rzk console: the page's whole logic, plain JS (no framework, no build step).
// The tree, data, Stat and ACLs come from /console/api/* (a ZooKeeper session of this
// server, logged in as the user gave); sessions, watches and metrics from the
// AdminServer's commands; the ensemble from /console/api/ensemble.
"use strict";

const PAGE = 200;          // children per page
const SAMPLES_MAX = 120;   // points kept per chart (two minutes at 1 s)
let commandUrl = "/commands";
let selected = null;       // the path shown in the node pane

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function banner(msg) {
  const b = $("#banner");
  b.textContent = msg || "";
  b.hidden = !msg;
}

// JSON whose long integers (session ids) are kept exact, as their source text (the
// reviver's source access; a browser without it shows them rounded).
function parseExact(text) {
  return JSON.parse(text, (k, v, ctx) => (typeof v === "number" && !Number.isSafeInteger(v) && ctx && ctx.source) ? ctx.source : v);
}

function hexId(v) {
  try { return "0x" + BigInt.asUintN(64, BigInt(v)).toString(16); } catch (e) { return String(v); }
}

async function api(name, params, body) {
  const q = params ? "?" + new URLSearchParams(params).toString() : "";
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json", "X-Rzk-Console": "1" }, body: JSON.stringify(body),
  };
  let r = await fetch("api/" + name + q, opts);
  if (r.status === 401 && name !== "login") {
    await login(null, null);
    r = await fetch("api/" + name + q, opts);
  }
  const j = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (!r.ok) { const e = new Error(j.error || ("HTTP " + r.status)); e.status = r.status; throw e; }
  return j;
}

async function command(name) {
  const r = await fetch(commandUrl + "/" + name);
  return parseExact(await r.text());
}

// ---- login ----------------------------------------------------------------------------
async function login(user, password) {
  const body = user ? { user, password } : {};
  const r = await fetch("api/login", {
    method: "POST", headers: { "Content-Type": "application/json", "X-Rzk-Console": "1" }, body: JSON.stringify(body),
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) { banner("login failed: " + (j.error || r.status)); throw new Error(j.error); }
  banner("");
  $("#whoami").textContent = (j.user ? "digest:" + j.user : "anonymous") + " (session " + j.session + ")";
  $("#whoami").dataset.user = j.user || "";
  return j;
}

// ---- tree -----------------------------------------------------------------------------
function childPath(parent, name) { return parent === "/" ? "/" + name : parent + "/" + name; }

function treeItem(path, name) {
  const li = el("li", { "data-path": path });
  const toggle = el("span", { class: "toggle", title: "expand" }, "▸");
  const label = el("span", { class: "name" }, name);
  const kids = el("ul", { class: "tree" });
  kids.hidden = true;
  toggle.onclick = () => toggleNode(li);
  label.onclick = () => { showNode(path); if (kids.hidden) toggleNode(li); };
  li.append(toggle, label, kids);
  return li;
}

async function toggleNode(li) {
  const kids = li.querySelector(":scope > ul");
  const toggle = li.querySelector(":scope > .toggle");
  if (!kids.hidden) { kids.hidden = true; toggle.textContent = "▸"; return; }
  kids.replaceChildren();
  kids.hidden = false;
  toggle.textContent = "▾";
  await loadPage(li.dataset.path, kids, 0);
}

async function loadPage(path, ul, offset) {
  let page;
  try {
    page = await api("children", { path, offset, limit: PAGE });
  } catch (e) {
    ul.append(el("li", { class: "error" }, e.message));
    return;
  }
  for (const name of page.children) ul.append(treeItem(childPath(path, name), name));
  const next = offset + page.children.length;
  if (next < page.total) {
    const more = el("li", { class: "more" }, "… " + (page.total - next) + " more");
    more.onclick = () => { more.remove(); loadPage(path, ul, next); };
    ul.append(more);
  }
  if (page.total === 0) ul.closest("li").querySelector(":scope > .toggle").textContent = " ";
}

function nodeMessage(msg, ok) {
  const m = $("#node-message");
  m.textContent = msg || "";
  m.className = "message " + (ok ? "ok" : "error");
}

async function showNode(path) {
  selected = path;
  $("#node-path").textContent = path;
  for (const n of document.querySelectorAll("#tree .name.selected")) n.classList.remove("selected");
  const li = document.querySelector('#tree li[data-path="' + CSS.escape(path) + '"] > .name');
  if (li) li.classList.add("selected");
  nodeMessage("");
  $("#node-stat").replaceChildren();
  $("#node-acl tbody").replaceChildren();
  $("#node-data").value = "";
  $("#node-version").value = "";
  let n;
  try {
    n = await api("node", { path });
  } catch (e) {
    nodeMessage(e.message);
    return;
  }
  if (selected !== path) return;
  // Binary data (not UTF-8) is shown and edited as base64, never replaced by its text.
  const binary = n.data === null;
  $("#node-base64").checked = binary;
  $("#node-data").value = binary ? n.dataBase64 : n.data;
  if (binary) nodeMessage("binary data (" + n.stat.dataLength + " bytes), shown as base64", true);
  $("#node-version").value = n.stat.version;
  for (const [k, v] of Object.entries(n.stat)) $("#node-stat").append(el("tr", {}, el("td", {}, k), el("td", {}, v)));
  if (Array.isArray(n.acl)) {
    for (const a of n.acl) $("#node-acl tbody").append(el("tr", {}, el("td", {}, a.scheme), el("td", {}, a.id), el("td", {}, a.perms)));
  } else {
    $("#node-acl tbody").append(el("tr", {}, el("td", { class: "error", colSpan: 3 }, n.acl.error)));
  }
}

async function save() {
  if (selected === null) return;
  const v = parseInt($("#node-version").value, 10);
  try {
    const body = { path: selected, version: isNaN(v) ? -1 : v };
    if ($("#node-base64").checked) body.dataBase64 = $("#node-data").value.trim(); else body.data = $("#node-data").value;
    const r = await api("set", null, body);
    const path = selected;
    await showNode(path);
    nodeMessage("saved: version " + r.stat.version, true);
  } catch (e) {
    nodeMessage(e.message);
  }
}

async function createChild() {
  const name = $("#child-name").value.trim();
  if (!name || selected === null) return;
  try {
    const r = await api("create", null, { path: childPath(selected, name), data: "" });
    $("#child-name").value = "";
    await refreshChildren(selected);
    nodeMessage("created " + r.path, true);
  } catch (e) {
    nodeMessage(e.message);
  }
}

async function deleteNode() {
  if (selected === null || selected === "/") return;
  const v = parseInt($("#node-version").value, 10);
  const path = selected;
  try {
    await api("delete", null, { path, version: isNaN(v) ? -1 : v });
    const parent = path.substring(0, path.lastIndexOf("/")) || "/";
    await refreshChildren(parent);
    await showNode(parent);
    nodeMessage("deleted " + path, true);
  } catch (e) {
    nodeMessage(e.message);
  }
}

async function refreshChildren(path) {
  const li = document.querySelector('#tree li[data-path="' + CSS.escape(path) + '"]');
  if (!li) return;
  const kids = li.querySelector(":scope > ul");
  kids.replaceChildren();
  kids.hidden = false;
  li.querySelector(":scope > .toggle").textContent = "▾";
  await loadPage(path, kids, 0);
}

async function resetTree() {
  const root = treeItem("/", "/");
  $("#tree").replaceChildren(root);
  await toggleNode(root);
  await showNode("/");
}

// ---- sessions, watches, ensemble ------------------------------------------------------
async function refreshSessions() {
  const d = await command("dump");
  const tbody = $("#sessions-table tbody");
  const rows = new Map();
  for (const [at, ids] of Object.entries(d.expiry_time_to_session_ids || {})) for (const id of ids) rows.set(String(id), { at, eph: [] });
  for (const [id, paths] of Object.entries(d.session_id_to_ephemeral_paths || {})) {
    if (!rows.has(id)) rows.set(id, { at: "", eph: [] });
    rows.get(id).eph = paths;
  }
  tbody.replaceChildren(...[...rows].map(([id, r]) =>
    el("tr", { "data-session": hexId(id) }, el("td", {}, hexId(id)), el("td", {}, r.at), el("td", {}, r.eph.join(" ")))));
}

async function refreshWatches() {
  const s = await command("watch_summary");
  $("#watch-summary").textContent =
    (s.num_total_watches ?? 0) + " watches on " + (s.num_paths ?? 0) + " paths by " + (s.num_connections ?? 0) + " connections";
  const d = await command("watches_by_path");
  $("#watches-table tbody").replaceChildren(...Object.entries(d.path_to_session_ids || {}).map(([path, ids]) =>
    el("tr", { "data-path": path }, el("td", {}, path), el("td", {}, ids.map(hexId).join(" ")))));
}

async function refreshEnsemble() {
  const e = await api("ensemble");
  $("#ensemble-table tbody").replaceChildren(...e.members.map((m) => {
    const cls = (m.reachable === false ? "down " : "") + (m.mode === "leader" ? "leader" : "");
    const reach = m.reachable === null ? "unknown" : (m.reachable ? "yes" : "no");
    return el("tr", { "data-member-id": m.id, "data-mode": m.mode || "", class: cls },
      el("td", {}, m.id + (m.me ? " (this server)" : "")),
      el("td", {}, m.client || "-"),
      el("td", {}, m.mode || (m.participant ? "?" : "observer?")),
      el("td", {}, m.zxid || "-"),
      el("td", {}, m.lag === null ? "-" : m.lag),
      el("td", { title: m.error || "" }, reach + (m.error ? " (" + m.error + ")" : "")));
  }));
}

// ---- charts ---------------------------------------------------------------------------
const series = { throughput: [], latency: [], fsync: [] };
let lastMonitor = null;

function draw(name) {
  const canvas = document.getElementById("chart-" + name);
  const pts = series[name];
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 28;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...pts);
  ctx.strokeStyle = "#d6dae2";
  ctx.fillStyle = "#556";
  ctx.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = pad / 2 + (h - pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w, y); ctx.stroke();
    ctx.fillText((max * (4 - i) / 4).toFixed(max < 10 ? 1 : 0), 0, y + 4);
  }
  ctx.strokeStyle = "#2a5bd7";
  ctx.lineWidth = 2;
  ctx.beginPath();
  pts.forEach((v, i) => {
    const x = pad + (w - pad) * i / (SAMPLES_MAX - 1);
    const y = pad / 2 + (h - pad) * (1 - v / max);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  canvas.dataset.samples = pts.length;
  canvas.dataset.last = pts.length ? pts[pts.length - 1] : "";
}

function push(name, v) {
  const s = series[name];
  s.push(v);
  if (s.length > SAMPLES_MAX) s.shift();
  draw(name);
}

async function sampleMetrics() {
  let m;
  try { m = await command("monitor"); } catch (e) { return; }
  const now = performance.now();
  if (lastMonitor) {
    const [p, t] = lastMonitor;
    const dt = Math.max(0.001, (now - t) / 1000);
    const d = (k) => (m[k] ?? 0) - (p[k] ?? 0);
    push("throughput", Math.max(0, d("packets_received")) / dt);
    const n = d("cnt_readlatency") + d("cnt_updatelatency");
    push("latency", n > 0 ? (d("sum_readlatency") + d("sum_updatelatency")) / n : 0);
    const f = d("cnt_fsynctime");
    push("fsync", f > 0 ? d("sum_fsynctime") / f : 0);
  }
  lastMonitor = [m, now];
  if (!$("#tab-metrics").hidden) {
    const keys = ["server_state", "znode_count", "watch_count", "ephemerals_count", "num_alive_connections",
      "outstanding_requests", "avg_latency", "max_latency", "packets_received", "packets_sent", "last_zxid"];
    $("#monitor-table").replaceChildren(...keys.filter((k) => k in m).map((k) => el("tr", {}, el("td", {}, k), el("td", {}, m[k]))));
  }
}

// ---- tabs -----------------------------------------------------------------------------
const refreshers = { sessions: refreshSessions, watches: refreshWatches, ensemble: refreshEnsemble };
let current = "tree";

function refreshCurrent() {
  const f = refreshers[current];
  if (f) f().then(() => banner(""), (e) => banner(current + ": " + e.message));
}

function showTab(name) {
  current = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + name;
  refreshCurrent();
}

async function start() {
  for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => showTab(b.dataset.tab);
  $("#login").onsubmit = async (ev) => {
    ev.preventDefault();
    await login($("#login-user").value, $("#login-password").value).catch(() => {});
    $("#login-password").value = "";
    await resetTree();
  };
  $("#logout-button").onclick = async () => { await login(null, null).catch(() => {}); await resetTree(); };
  $("#node-save").onclick = save;
  $("#node-reload").onclick = () => selected !== null && showNode(selected);
  $("#child-create").onclick = createChild;
  $("#node-delete").onclick = deleteNode;
  try {
    const info = await api("info");
    commandUrl = info.commandUrl;
    $("#whoami").textContent = (info.user ? "digest:" + info.user : "anonymous") + " (session " + info.session + ")";
  } catch (e) {
    banner(e.message);
  }
  for (const n of Object.keys(series)) draw(n);
  setInterval(sampleMetrics, 1000);
  setInterval(refreshCurrent, 3000);
  sampleMetrics();
  await resetTree();
  document.body.dataset.ready = "1";
}

start();
