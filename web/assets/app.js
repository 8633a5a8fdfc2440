// meshlab's dashboard: one page, five views, no framework. Everything comes from the
// control API on the same origin; the API token travels in an HttpOnly cookie.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// === API ===

function showBanner(text) {
  const banner = $("#banner");
  banner.textContent = text;
  banner.hidden = !text;
}

async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    showBanner("This dashboard needs the lab's API token: open it with `meshlab dashboard`.");
  }
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { errors: [text] }; }
  return { ok: response.ok, status: response.status, data };
}

function failureText(data) {
  if (!data) return "no answer";
  const lines = (data.errors || []).slice();
  if (data.hint) lines.push("hint: " + data.hint);
  return lines.join("\n");
}

// === Pages ===

const pages = {};
let currentPage = null;

function route() {
  const name = (location.hash || "#graph").slice(1).split("/")[0];
  const page = pages[name] ? name : "graph";
  for (const section of $$(".page")) section.hidden = section.id !== "page-" + page;
  for (const link of $$("header nav a")) link.classList.toggle("active", link.dataset.page === page);
  if (currentPage !== page) {
    if (currentPage && pages[currentPage].leave) pages[currentPage].leave();
    currentPage = page;
    pages[page].enter();
  }
}

function setConnection(state, text) {
  const pill = $("#connection");
  pill.className = "pill " + state;
  pill.textContent = text;
}

// === Traffic generator ===

function trafficForm(container) {
  const count = el("input", { type: "number", min: "1", max: "2000", value: "50", "aria-label": "requests", name: "requests" });
  const user = el("input", { type: "text", placeholder: "user (jason)", "aria-label": "user", name: "user" });
  const result = el("span", { class: "result" });
  const send = el("button", { type: "button", class: "primary", name: "send" }, "Send");
  send.addEventListener("click", async () => {
    send.disabled = true;
    result.textContent = "sending…";
    const body = { requests: Number(count.value) || 1, user: user.value.trim() || null };
    const { ok, data } = await api("POST", "/api/v1/traffic", body);
    send.disabled = false;
    if (!ok) { result.textContent = failureText(data); return; }
    const codes = Object.entries(data.codes).map(([code, n]) => `${code === "0" ? "no answer" : code}×${n}`).join(", ");
    result.textContent = `${data.sent} sent in ${(data.millis / 1000).toFixed(1)} s: ${codes}`;
  });
  container.replaceChildren(
    el("span", {}, "GET /productpage ×"), count, el("span", {}, "as"), user, send, result);
}

// === Graph ===

const graphState = {
  source: null,
  graph: { nodes: [], edges: [] },
  structure: "",
  nodeEls: new Map(),
  edgeEls: new Map(),
  selected: null,
};

const KIND_ICON = { workload: "", gateway: "GW", service: "S", external: "EXT", blocked: "✕" };
const BADGE_TEXT = { "virtualservice": "VS", "fault": "FI", "traffic-shifting": "%", "circuit-breaker": "CB" };

function edgeKey(edge) { return edge.source + "→" + edge.target; }

function dotCount(rps) {
  if (!rps) return 0;
  return Math.max(1, Math.min(10, Math.round(Math.log2(1 + rps * 2) * 2)));
}

function layout(graph, width, height) {
  const incoming = new Map(graph.nodes.map((n) => [n.id, []]));
  const outgoing = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const e of graph.edges) {
    if (incoming.has(e.target) && outgoing.has(e.source) && e.source !== e.target) {
      incoming.get(e.target).push(e.source);
      outgoing.get(e.source).push(e.target);
    }
  }
  const layer = new Map();
  for (const n of graph.nodes) {
    layer.set(n.id, n.kind === "gateway" || incoming.get(n.id).length === 0 ? 0 : 1);
  }
  // Longest path from the roots, bounded so that cycles end.
  for (let round = 0; round < graph.nodes.length; round++) {
    let changed = false;
    for (const e of graph.edges) {
      if (!layer.has(e.source) || !layer.has(e.target) || e.source === e.target) continue;
      const want = Math.min(layer.get(e.source) + 1, 8);
      if (layer.get(e.target) < want) { layer.set(e.target, want); changed = true; }
    }
    if (!changed) break;
  }
  // Idle workloads with no edges sit with the apps of the same name, or in column 1.
  const appLayer = new Map();
  for (const n of graph.nodes) {
    const connected = incoming.get(n.id).length || outgoing.get(n.id).length;
    if (connected && n.app) appLayer.set(n.app, Math.max(appLayer.get(n.app) || 0, layer.get(n.id)));
  }
  for (const n of graph.nodes) {
    const connected = incoming.get(n.id).length || outgoing.get(n.id).length;
    if (!connected && n.kind !== "gateway") {
      // Clients without traffic (sleep) start on the left with the gateway.
      layer.set(n.id, appLayer.has(n.app) ? appLayer.get(n.app) : 0);
    }
  }
  const columns = new Map();
  for (const n of graph.nodes) {
    const l = layer.get(n.id);
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l).push(n);
  }
  const order = [...columns.keys()].sort((a, b) => a - b);
  const positions = new Map();
  const marginX = 100;
  const stepX = order.length > 1 ? Math.min(340, (width - 2 * marginX) / (order.length - 1)) : 0;
  const startX = order.length > 1 ? (width - stepX * (order.length - 1)) / 2 : width / 2;
  order.forEach((l, i) => {
    const nodes = columns.get(l).sort((a, b) => a.id.localeCompare(b.id));
    const stepY = Math.min(130, (height - 120) / Math.max(1, nodes.length));
    const startY = height / 2 - (stepY * (nodes.length - 1)) / 2;
    nodes.forEach((n, j) => positions.set(n.id, { x: startX + i * stepX, y: startY + j * stepY }));
  });
  return positions;
}

function edgePath(a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const length = Math.hypot(dx, dy) || 1;
  const r = 24;
  const sx = a.x + (dx / length) * r;
  const sy = a.y + (dy / length) * r;
  const tx = b.x - (dx / length) * (r + 4);
  const ty = b.y - (dy / length) * (r + 4);
  const bend = 0.12;
  const cx = (sx + tx) / 2 - dy * bend;
  const cy = (sy + ty) / 2 + dx * bend;
  // The label sits beside the curve's middle, on its upper side, not across it.
  let nx = -dy / length;
  let ny = dx / length;
  if (ny > 0) { nx = -nx; ny = -ny; }
  const mx = (sx + 2 * cx + tx) / 4;
  const my = (sy + 2 * cy + ty) / 4;
  return { d: `M${sx.toFixed(1)},${sy.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${tx.toFixed(1)},${ty.toFixed(1)}`,
    mid: { x: mx + nx * 8, y: my + ny * 8 } };
}

function edgeLabel(edge) {
  if (!edge.requests) return "idle";
  const parts = [`${edge.rps.toFixed(edge.rps < 10 ? 1 : 0)} rps`, `${(edge.errorRate * 100).toFixed(edge.errorRate > 0 && edge.errorRate < 0.01 ? 2 : 0)}%`];
  if (edge.p50Ms !== null && edge.p50Ms !== undefined) parts.push(`p50 ${edge.p50Ms} · p99 ${edge.p99Ms} ms`);
  return parts.join(" · ");
}

function nodeShape(node) {
  switch (node.kind) {
    case "gateway": return svg("path", { class: "shape", d: "M0,-26 L26,0 L0,26 L-26,0 Z" });
    case "service": return svg("path", { class: "shape", d: "M0,-24 L24,18 L-24,18 Z" });
    case "external": return svg("rect", { class: "shape", x: -22, y: -22, width: 44, height: 44, rx: 6 });
    case "blocked": return svg("rect", { class: "shape", x: -22, y: -22, width: 44, height: 44, rx: 6 });
    default: return svg("circle", { class: "shape", r: 22 });
  }
}

function renderGraph(graph) {
  const root = $("#graph");
  const width = root.clientWidth || 900;
  const height = root.clientHeight || 600;
  $("#graph-empty").hidden = graph.nodes.length > 0;
  $("#window").textContent = graph.windowSeconds;
  const structure = JSON.stringify([width, height,
    graph.nodes.map((n) => [n.id, n.badges]),
    graph.edges.map((e) => [edgeKey(e), dotCount(e.rps)])]);
  if (structure !== graphState.structure) {
    graphState.structure = structure;
    drawGraph(root, graph, width, height);
  }
  updateGraph(graph);
}

function drawGraph(root, graph, width, height) {
  const positions = layout(graph, width, height);
  graphState.nodeEls.clear();
  graphState.edgeEls.clear();
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const edgesLayer = svg("g", { class: "edges" });
  const nodesLayer = svg("g", { class: "nodes" });
  for (const edge of graph.edges) {
    const a = positions.get(edge.source);
    const b = positions.get(edge.target);
    if (!a || !b) continue;
    const { d, mid } = edgePath(a, b);
    const group = svg("g", { class: "edge", "data-source": edge.source, "data-target": edge.target });
    const line = svg("path", { class: "line", d });
    const hit = svg("path", { class: "hit", d });
    group.append(line, hit);
    const dots = dotCount(edge.rps);
    for (let i = 0; i < dots; i++) {
      const duration = 1.6;
      const dot = svg("circle", { class: "dot", r: 3 });
      dot.append(svg("animateMotion", {
        dur: `${duration}s`, repeatCount: "indefinite", path: d,
        begin: `${((i * duration) / dots).toFixed(2)}s`,
      }));
      group.append(dot);
    }
    const lock = svg("use", { href: "#lock-icon", x: (mid.x - 7).toFixed(1), y: (mid.y - 26).toFixed(1), width: 14, height: 14, class: "lock" });
    const label = svg("text", { x: mid.x.toFixed(1), y: (mid.y - 4).toFixed(1), class: "edge-label" });
    group.append(lock, label);
    group.addEventListener("click", () => select({ edge: edgeKey(edge) }));
    edgesLayer.append(group);
    graphState.edgeEls.set(edgeKey(edge), { group, label, lock });
  }
  for (const node of graph.nodes) {
    const p = positions.get(node.id);
    const group = svg("g", { class: "node", transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`, "data-id": node.id, "data-kind": node.kind });
    group.append(nodeShape(node));
    group.append(svg("text", { class: "icon", y: node.kind === "service" ? 6 : 0 }, document.createTextNode(KIND_ICON[node.kind] || "")));
    const name = node.kind === "workload" || node.kind === "gateway" ? (node.app || node.label) : node.label;
    group.append(svg("text", { class: "label", y: 40 }, document.createTextNode(name)));
    const sub = node.version ? node.version : (node.kind === "gateway" ? "gateway" : node.kind === "workload" ? "" : node.kind);
    if (sub) group.append(svg("text", { class: "sublabel", y: 54 }, document.createTextNode(sub)));
    const badges = node.badges || [];
    badges.forEach((badge, i) => {
      const x = -((badges.length - 1) * 24) / 2 + i * 24;
      const b = svg("g", { class: "badge-svg b-" + badge, transform: `translate(${x},-38)` });
      b.append(svg("rect", { class: "badge-bg", x: -11, y: -7, width: 22, height: 14, rx: 3, fill: badgeColour(badge) }));
      b.append(svg("text", { class: "badge-text" }, document.createTextNode(BADGE_TEXT[badge] || badge)));
      b.append(svg("title", {}, document.createTextNode(badge)));
      group.append(b);
    });
    group.addEventListener("click", () => select({ node: node.id }));
    nodesLayer.append(group);
    graphState.nodeEls.set(node.id, group);
  }
  root.replaceChildren(edgesLayer, nodesLayer);
}

function badgeColour(badge) {
  return { "virtualservice": "#5a49b5", "fault": "#c0392b", "traffic-shifting": "#1f8a9e", "circuit-breaker": "#b8741a" }[badge] || "#555";
}

function updateGraph(graph) {
  for (const node of graph.nodes) {
    const group = graphState.nodeEls.get(node.id);
    if (!group) continue;
    group.setAttribute("class", ["node", node.health, node.ready === false ? "not-ready" : "",
      graphState.selected && graphState.selected.node === node.id ? "selected" : ""].join(" ").trim());
  }
  for (const edge of graph.edges) {
    const parts = graphState.edgeEls.get(edgeKey(edge));
    if (!parts) continue;
    parts.group.setAttribute("class", ["edge", edge.health, edge.mtls ? "mtls" : "",
      graphState.selected && graphState.selected.edge === edgeKey(edge) ? "selected" : ""].join(" ").trim());
    parts.group.dataset.rps = String(edge.rps);
    parts.label.textContent = edgeLabel(edge);
    parts.lock.style.display = edge.mtls ? "" : "none";
  }
  showSelection();
}

function select(what) {
  graphState.selected = what;
  updateGraph(graphState.graph);
}

function showSelection() {
  const box = $("#selection");
  const selected = graphState.selected;
  if (!selected) return;
  const graph = graphState.graph;
  if (selected.node) {
    const node = graph.nodes.find((n) => n.id === selected.node);
    if (!node) { box.textContent = "Gone."; return; }
    const inbound = graph.edges.filter((e) => e.target === node.id);
    const rps = inbound.reduce((s, e) => s + e.rps, 0);
    box.replaceChildren(el("dl", { class: "kv" },
      el("dt", {}, "node"), el("dd", {}, node.label),
      el("dt", {}, "kind"), el("dd", {}, node.kind),
      node.namespace ? [el("dt", {}, "namespace"), el("dd", {}, node.namespace)] : null,
      node.ready !== null && node.ready !== undefined ? [el("dt", {}, "ready"), el("dd", {}, node.ready ? "yes" : "no")] : null,
      el("dt", {}, "health"), el("dd", {}, node.health),
      el("dt", {}, "inbound"), el("dd", {}, `${rps.toFixed(1)} rps`),
      el("dt", {}, "config"), el("dd", {}, (node.badges || []).join(", ") || "—")));
  } else if (selected.edge) {
    const edge = graph.edges.find((e) => edgeKey(e) === selected.edge);
    if (!edge) { box.textContent = "No traffic any more."; return; }
    const name = (id) => (graph.nodes.find((n) => n.id === id) || { label: id }).label;
    box.replaceChildren(el("dl", { class: "kv" },
      el("dt", {}, "from"), el("dd", {}, name(edge.source)),
      el("dt", {}, "to"), el("dd", {}, name(edge.target)),
      el("dt", {}, "rate"), el("dd", {}, `${edge.rps.toFixed(2)} rps (${edge.requests} requests)`),
      el("dt", {}, "errors"), el("dd", {}, `${(edge.errorRate * 100).toFixed(2)} % 5xx`),
      el("dt", {}, "p50 / p99"), el("dd", {}, edge.p50Ms === null ? "—" : `${edge.p50Ms} / ${edge.p99Ms} ms`),
      el("dt", {}, "mTLS"), el("dd", {}, edge.mtls ? "yes" : "no"),
      el("dt", {}, "flags"), el("dd", {}, edge.flags.join(" ") || "—")));
  }
}

pages.graph = {
  enter() {
    for (const container of $$("[data-traffic]")) if (!container.childElementCount) trafficForm(container);
    if (graphState.source) return;
    const source = new EventSource("/api/v1/graph/stream");
    graphState.source = source;
    source.addEventListener("open", () => setConnection("live", "live"));
    source.addEventListener("error", () => setConnection("down", "reconnecting…"));
    source.addEventListener("graph", (event) => {
      graphState.graph = JSON.parse(event.data);
      if (currentPage === "graph") renderGraph(graphState.graph);
    });
  },
};
window.addEventListener("resize", () => { graphState.structure = ""; if (currentPage === "graph") renderGraph(graphState.graph); });

// === Workloads and proxies ===

const workloads = { selected: null, kind: "listeners", timer: null, shown: "" };

function syncCell(value) {
  return el("td", {}, value ? el("span", { class: "sync " + value.replace(" ", "-") }, value) : "—");
}

async function loadWorkloads() {
  const [pods, proxies] = await Promise.all([api("GET", "/api/v1/pods"), api("GET", "/api/v1/proxies")]);
  if (!pods.ok) return;
  const byPod = new Map();
  for (const p of proxies.ok ? proxies.data : []) byPod.set(p.namespace + "/" + p.pod, p);
  // Rows are rebuilt only when something changed, so a click never lands on a row
  // that is being replaced.
  const shown = JSON.stringify([pods.data, proxies.data, workloads.selected]);
  if (shown === workloads.shown) return;
  workloads.shown = shown;
  const rows = pods.data
    .slice()
    .sort((a, b) => (a.namespace + a.name).localeCompare(b.namespace + b.name))
    .map((pod) => {
      const proxy = byPod.get(pod.namespace + "/" + pod.name);
      const ready = pod.containers.filter((c) => c.ready).length + "/" + pod.containers.length;
      const cert = proxy && proxy.certificate ? `${proxy.certificate.spiffeId} (expires ${proxy.certificate.expires})` : "—";
      const row = el("tr", { "data-pod": pod.name, "data-namespace": pod.namespace,
        class: workloads.selected && workloads.selected.pod === pod.name ? "selected" : "" },
        el("td", {}, pod.name), el("td", {}, pod.namespace),
        el("td", {}, pod.labels.app || "—"), el("td", {}, pod.labels.version || "—"),
        el("td", { class: pod.containers.every((c) => c.ready) ? "ok" : "bad" }, ready),
        el("td", {}, pod.status),
        syncCell(proxy && proxy.sync.CDS), syncCell(proxy && proxy.sync.LDS),
        syncCell(proxy && proxy.sync.EDS), syncCell(proxy && proxy.sync.RDS),
        el("td", { class: "cert" }, cert));
      if (proxy) row.addEventListener("click", () => { workloads.selected = { pod: pod.name, namespace: pod.namespace }; loadWorkloads(); showProxy(); });
      return row;
    });
  $("#workloads tbody").replaceChildren(...rows);
}

// Every `origin` in a proxy's configuration, with the path of names leading to it
// (`routes / 9080 / reviews.default.svc.cluster.local:9080 / reviews#0`).
function collectOrigins(value, path, out) {
  if (Array.isArray(value)) { for (const v of value) collectOrigins(v, path, out); return; }
  if (!value || typeof value !== "object") return;
  const here = typeof value.name === "string" && value.name ? [...path, value.name] : path;
  if (value.origin) {
    const origins = Array.isArray(value.origin) ? value.origin : [value.origin];
    for (const origin of origins) if (origin) out.push([here.join(" / "), origin]);
  }
  for (const [key, v] of Object.entries(value)) if (key !== "origin") collectOrigins(v, here, out);
}

// Each call of showProxy takes a number; an answer renders only if no later call
// was made meanwhile (a slow answer for another tab or pod must not overwrite).
let proxyShown = 0;

async function showProxy() {
  const selected = workloads.selected;
  if (!selected) return;
  const call = ++proxyShown;
  $("#proxy-detail").hidden = false;
  $("#proxy-title").textContent = `${selected.pod}.${selected.namespace}`;
  for (const b of $$("#proxy-tabs button")) b.classList.toggle("active", b.dataset.kind === workloads.kind);
  const target = $("#proxy-config");
  const query = `pod=${encodeURIComponent(selected.pod)}&namespace=${encodeURIComponent(selected.namespace)}`;
  if (workloads.kind === "origins") {
    const { ok, data } = await api("GET", `/api/v1/proxy-config?kind=all&output=json&${query}`);
    if (call !== proxyShown) return;
    if (!ok) { target.textContent = failureText(data); return; }
    const out = [];
    for (const [kind, value] of Object.entries(JSON.parse(data.text))) collectOrigins(value, [kind], out);
    const seen = new Set();
    const lines = out.filter(([n, o]) => { const k = n + o; if (seen.has(k)) return false; seen.add(k); return true; })
      .map(([name, origin]) => `${name.padEnd(72)} ← ${origin}`);
    target.textContent = lines.length ? "RESOURCE".padEnd(72) + "   PRODUCED BY\n" + lines.join("\n") : "This proxy's configuration records no origins.";
    return;
  }
  const { ok, data } = await api("GET", `/api/v1/proxy-config?kind=${workloads.kind}&${query}`);
  if (call !== proxyShown) return;
  target.textContent = ok ? data.text : failureText(data);
}

pages.workloads = {
  enter() {
    loadWorkloads();
    workloads.timer = setInterval(loadWorkloads, 3000);
  },
  leave() { clearInterval(workloads.timer); },
};
for (const button of $$("#proxy-tabs button")) {
  button.addEventListener("click", () => { workloads.kind = button.dataset.kind; showProxy(); });
}

// === Istio config ===

const config = { current: null };

function updateGutter(errorLines = new Set()) {
  const count = $("#yaml").value.split("\n").length;
  const gutter = $("#gutter");
  gutter.replaceChildren(...Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    return el("div", { class: errorLines.has(n) ? "err" : "" }, String(n));
  }));
  gutter.scrollTop = $("#yaml").scrollTop;
}

async function loadObjects() {
  const { ok, data } = await api("GET", "/api/v1/resources");
  if (!ok) return;
  const showAll = $("#show-k8s").checked;
  const rows = data
    .filter((o) => showAll || o.group.endsWith("istio.io"))
    .map((o) => {
      const del = el("button", { type: "button", class: "danger", name: "delete" }, "Delete");
      del.addEventListener("click", async (event) => {
        event.stopPropagation();
        if (!del.classList.contains("armed")) {
          del.classList.add("armed");
          del.textContent = "Confirm";
          setTimeout(() => { del.classList.remove("armed"); del.textContent = "Delete"; }, 4000);
          return;
        }
        const { ok, data } = await api("POST", "/api/v1/delete", { kind: o.kind, name: o.name, namespace: o.namespace || null });
        $("#apply-result").replaceChildren(el("pre", { class: ok ? "applied" : "bad" }, ok ? data.lines.join("\n") : failureText(data)));
        loadObjects();
      });
      const row = el("tr", { "data-kind": o.kind, "data-name": o.name },
        el("td", {}, o.kind), el("td", {}, o.namespace || "—"), el("td", {}, o.name), el("td", {}, del));
      row.addEventListener("click", () => viewObject(o));
      return row;
    });
  $("#objects tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No Istio configuration yet: apply a document on the right."))]));
}

// As with proxies: only the answer for the latest object clicked is shown.
let objectViewed = 0;

async function viewObject(o) {
  const call = ++objectViewed;
  const query = new URLSearchParams({ kind: o.kind, name: o.name, output: "yaml" });
  if (o.namespace) query.set("namespace", o.namespace);
  const { ok, data } = await api("GET", "/api/v1/get?" + query);
  if (call !== objectViewed) return;
  if (!ok) { $("#apply-result").textContent = failureText(data); return; }
  config.current = o;
  $("#editor-title").textContent = `${o.kind} ${o.namespace ? o.namespace + "/" : ""}${o.name}`;
  $("#yaml").value = data.text;
  $("#apply-result").replaceChildren();
  updateGutter();
}

function showDiagnostics(text, data) {
  const diagnostics = (data && data.diagnostics) || [];
  const byLine = new Map();
  const unplaced = [];
  for (const d of diagnostics) {
    if (d.severity && d.severity !== "error") continue;
    const line = d.position && d.position.line;
    const message = (d.resource && d.resource.name ? `${d.resource.kind || ""} ${d.resource.name}: ` : "") +
      (d.field ? d.field + ": " : "") + d.message + (d.hint ? ` (hint: ${d.hint})` : "");
    if (line) {
      if (!byLine.has(line)) byLine.set(line, []);
      byLine.get(line).push({ message, column: d.position.column });
    } else unplaced.push(message);
  }
  updateGutter(new Set(byLine.keys()));
  const doc = el("div", { class: "doc" });
  text.split("\n").forEach((content, i) => {
    const n = i + 1;
    const errors = byLine.get(n);
    doc.append(el("div", { class: "ln" + (errors ? " error-line" : ""), "data-line": String(n) },
      el("span", { class: "n" }, String(n)), el("span", {}, content || " ")));
    for (const e of errors || []) {
      doc.append(el("div", { class: "inline-error", "data-line": String(n) }, `line ${n}, column ${e.column}: ${e.message}`));
    }
  });
  const summary = el("pre", { class: "bad" }, [...unplaced, ...(byLine.size ? [] : (data.errors || []))].join("\n") || `${diagnostics.length} problem(s): nothing was applied`);
  $("#apply-result").replaceChildren(summary, doc);
  const first = doc.querySelector(".error-line");
  if (first) first.scrollIntoView({ block: "center" });
}

async function applyDocument() {
  const text = $("#yaml").value;
  const { ok, data } = await api("POST", "/api/v1/apply", { manifests: [{ file: "dashboard.yaml", yaml: text }], namespace: null });
  if (ok) {
    updateGutter();
    $("#apply-result").replaceChildren(el("pre", { class: "applied" }, [...data.lines, ...data.warnings].join("\n")));
    loadObjects();
  } else {
    showDiagnostics(text, data);
  }
}

pages.config = {
  enter() { loadObjects(); updateGutter(); },
};
$("#yaml").addEventListener("input", () => updateGutter());
$("#yaml").addEventListener("scroll", () => { $("#gutter").scrollTop = $("#yaml").scrollTop; });
$("#apply").addEventListener("click", applyDocument);
$("#show-k8s").addEventListener("change", loadObjects);
$("#editor-new").addEventListener("click", () => {
  config.current = null;
  $("#editor-title").textContent = "New document";
  $("#yaml").value = "";
  $("#apply-result").replaceChildren();
  updateGutter();
});

// === Labs ===

async function loadLabs() {
  const { ok, status, data } = await api("GET", "/api/v1/labs");
  const list = $("#labs");
  if (!ok) {
    list.replaceChildren(el("p", { class: "muted" }, status === 404 ? "This control plane serves no labs." : failureText(data)));
    return;
  }
  list.replaceChildren(...data.map((lab) => {
    const run = el("button", { type: "button", class: "primary", name: "run" }, "Run");
    const reset = el("button", { type: "button", name: "reset" }, "Reset");
    run.addEventListener("click", () => runLab(lab));
    reset.addEventListener("click", async () => {
      const { ok, data } = await api("POST", `/api/v1/labs/${encodeURIComponent(lab.name)}/reset`);
      $("#lab-done").className = "";
      $("#lab-done").textContent = ok ? `Lab ${lab.name} reset.` : failureText(data);
    });
    return el("div", { class: "lab-card", "data-lab": lab.name },
      el("div", {}, el("h3", {}, lab.title), el("div", { class: "muted" }, lab.summary), el("div", { class: "small muted" }, `${lab.steps} steps · ${lab.name}`)),
      el("div", {}, run, " ", reset));
  }));
}

function labEvent(event, state) {
  const steps = $("#lab-steps");
  switch (event.event) {
    case "lab":
      $("#lab-title").textContent = event.title || event.name || "";
      break;
    case "step": {
      const item = el("li", { "data-step": String(event.index) }, el("strong", {}, event.title), event.summary ? el("div", { class: "muted" }, event.summary) : null);
      steps.append(item);
      state.step = item;
      break;
    }
    case "applied":
      if (state.step) state.step.append(el("div", { class: "small muted" }, "applied " + event.what));
      break;
    case "progress":
      $("#lab-progress").style.width = `${Math.round((100 * event.done) / Math.max(1, event.total))}%`;
      break;
    case "check": {
      const target = state.step || steps;
      target.append(el("div", { class: "check " + (event.passed ? "ok" : "bad"), "data-passed": String(event.passed) },
        `${event.passed ? "✔" : "✘"} ${event.name}: observed ${event.observed}, expected ${event.expected}`,
        !event.passed && event.hint ? el("div", { class: "muted" }, "hint: " + event.hint) : null));
      break;
    }
    case "done": {
      const done = $("#lab-done");
      done.className = event.passed ? "passed" : "failed";
      done.textContent = event.passed ? "Lab passed." : "Lab failed: see the checks above.";
      $("#lab-progress").style.width = "100%";
      break;
    }
    default:
      break;
  }
}

async function runLab(lab) {
  $("#lab-run").hidden = false;
  $("#lab-title").textContent = lab.title;
  $("#lab-steps").replaceChildren();
  $("#lab-done").className = "";
  $("#lab-done").textContent = "running…";
  $("#lab-progress").style.width = "0";
  const response = await fetch(`/api/v1/labs/${encodeURIComponent(lab.name)}/run`, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json" }, body: JSON.stringify({ step: null }),
  });
  if (!response.ok) {
    $("#lab-done").className = "failed";
    $("#lab-done").textContent = failureText(JSON.parse((await response.text()) || "null"));
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const state = { step: null };
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) labEvent(JSON.parse(line), state);
    }
    if (done) break;
  }
  if (buffer.trim()) labEvent(JSON.parse(buffer), state);
}

pages.labs = { enter: loadLabs };

// === Access log ===

const accessLog = { source: null, max: 500 };

function logQuery() {
  const query = new URLSearchParams();
  for (const [name, id] of [["workload", "#filter-workload"], ["flag", "#filter-flag"], ["status", "#filter-status"]]) {
    const value = $(id).value.trim();
    if (value) query.set(name, value);
  }
  return query.toString();
}

function connectLog() {
  if (accessLog.source) accessLog.source.close();
  const source = new EventSource("/api/v1/access-log/stream?" + logQuery());
  accessLog.source = source;
  source.addEventListener("open", () => setConnection("live", "live"));
  source.addEventListener("error", () => setConnection("down", "reconnecting…"));
  source.addEventListener("log", (event) => {
    const e = JSON.parse(event.data);
    const row = el("tr", { class: "s" + String(e.code).charAt(0), title: e.text },
      el("td", {}, e.start.slice(11, 23)), el("td", {}, e.workload), el("td", {}, e.direction === "inbound" ? "in" : "out"),
      el("td", { class: "req" }, `${e.method} ${e.authority || ""}${e.path === "-" ? "" : e.path}`),
      el("td", { class: "status" }, String(e.code)), el("td", {}, e.flags), el("td", {}, String(e.durationMs)),
      el("td", {}, e.upstreamCluster || "-"));
    const body = $("#log tbody");
    body.prepend(row);
    while (body.childElementCount > accessLog.max) body.lastElementChild.remove();
  });
}

pages.log = {
  enter() {
    for (const container of $$("[data-traffic]")) if (!container.childElementCount) trafficForm(container);
    connectLog();
  },
  leave() { if (accessLog.source) { accessLog.source.close(); accessLog.source = null; } },
};
let filterTimer = null;
for (const id of ["#filter-workload", "#filter-flag", "#filter-status"]) {
  $(id).addEventListener("input", () => { clearTimeout(filterTimer); filterTimer = setTimeout(connectLog, 300); });
}
$("#log-clear").addEventListener("click", () => $("#log tbody").replaceChildren());

window.addEventListener("hashchange", route);
route();
