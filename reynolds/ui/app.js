// Reynolds task view. Every value shown comes from the server and is treated as untrusted text: nodes are
// built with createElement and textContent, never parsed as HTML. Two data sources: the browser page fetches
// /ui/api/ with the token kept in sessionStorage; inside an MCP Apps host the page talks JSON-RPC to the
// host over postMessage (tool result in, get_task out).
"use strict";
(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STATES = new Set(["pending", "awaiting_approval", "ready", "queued", "running", "succeeded", "failed", "skipped", "cancelled"]);
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  const POLL_MS = 1000;
  const LIST_POLL_MS = 3000;
  const MAX_BACKOFF_MS = 30000;
  const TOKEN_KEY = "reynolds-token";
  const main = document.getElementById("main");
  const status = document.getElementById("status");
  const login = document.getElementById("login");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    node.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const stateClass = (state) => "s-" + (STATES.has(state) ? state : "pending");
  const badge = (state, id) => el("span", { class: "badge " + stateClass(state), "data-state": state, ...(id ? { id } : {}) }, state);
  const json = (value) => el("pre", {}, JSON.stringify(value, null, 2));
  const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);
  const seconds = (s) => (s === null || s === undefined ? "" : `${Number(s).toFixed(1)} s`);

  // ------------------------------------------------------------------ data sources
  class Refused extends Error {}

  const web = {
    async get(path) {
      const response = await fetch("/ui/api/" + path, {
        headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) },
        cache: "no-store",
      });
      if (response.status === 401) throw new Refused("token refused");
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      return body;
    },
  };

  const host = {
    next: 1,
    pending: new Map(),
    request(method, params) {
      const id = host.next++;
      window.parent.postMessage({ jsonrpc: "2.0", id, method, params }, "*");
      return new Promise((resolve, reject) => host.pending.set(id, { resolve, reject }));
    },
    async task(id) {
      const result = await host.request("tools/call", { name: "get_task", arguments: { task_id: id } });
      if (result.isError || !result.structuredContent) throw new Error("get_task failed");
      return result.structuredContent;
    },
  };

  // ------------------------------------------------------------------ polling (one loop at a time, bounded)
  let generation = 0;

  async function poll(load, render, every) {
    const mine = ++generation;
    let delay = every;
    while (mine === generation) {
      try {
        const data = await load();
        if (mine !== generation) return;
        const done = render(data);
        status.textContent = "updated " + new Date().toLocaleTimeString();
        if (done) return;
        delay = every;
      } catch (err) {
        if (mine !== generation) return;
        if (err instanceof Refused) return showLogin("That token was refused.");
        status.textContent = "error: " + err.message + " (retrying)";
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  // ------------------------------------------------------------------ DAG
  const NODE_W = 170;
  const NODE_H = 38;
  const GAP_X = 50;
  const GAP_Y = 14;

  function depths(subtasks) {
    const byId = new Map(subtasks.map((s) => [s.id, s]));
    const depth = new Map();
    const visit = (s, path) => {
      if (depth.has(s.id)) return depth.get(s.id);
      if (path.has(s.id)) return 0; // a cycle cannot be stored, but never loop on bad data
      path.add(s.id);
      const parents = s.depends_on.filter((d) => byId.has(d)).map((d) => visit(byId.get(d), path));
      const d = parents.length ? Math.max(...parents) + 1 : 0;
      depth.set(s.id, d);
      return d;
    };
    subtasks.forEach((s) => visit(s, new Set()));
    return depth;
  }

  function dag(subtasks) {
    const depth = depths(subtasks);
    const rows = new Map();
    const at = new Map();
    for (const s of subtasks) {
      const col = depth.get(s.id);
      const row = rows.get(col) || 0;
      rows.set(col, row + 1);
      at.set(s.id, { x: 10 + col * (NODE_W + GAP_X), y: 10 + row * (NODE_H + GAP_Y) });
    }
    const width = 20 + Math.max(1, rows.size) * (NODE_W + GAP_X) - GAP_X;
    const height = 20 + Math.max(1, ...rows.values()) * (NODE_H + GAP_Y) - GAP_Y;
    const root = svg("svg", { id: "dag", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
    root.append(svg("title", {}, "Task graph"));
    for (const s of subtasks) {
      for (const d of s.depends_on) {
        const from = at.get(d);
        const to = at.get(s.id);
        if (!from) continue;
        const [x1, y1, x2, y2] = [from.x + NODE_W, from.y + NODE_H / 2, to.x, to.y + NODE_H / 2];
        const mid = (x1 + x2) / 2;
        root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` }));
      }
    }
    for (const s of subtasks) {
      const { x, y } = at.get(s.id);
      const g = svg("g", { class: "dag-node", "data-id": s.id, "data-state": s.state });
      g.append(svg("title", {}, `${s.id}: ${s.tool} on ${s.pool} (${s.state})`));
      g.append(svg("rect", { class: "node " + stateClass(s.state), x, y, width: NODE_W, height: NODE_H, rx: 5 }));
      g.append(svg("text", { x: x + 8, y: y + 16 }, clip(s.id, 22)));
      g.append(svg("text", { class: "small", x: x + 8, y: y + 30 }, clip(`${s.tool} · ${s.state}`, 28)));
      root.append(g);
    }
    return root;
  }

  // ------------------------------------------------------------------ Gantt
  const LABEL_W = 150;
  const PLOT_W = 700;
  const LANE_H = 28;

  function gantt(view) {
    const started = view.subtasks.filter((s) => s.started_at);
    const now = Date.now();
    const t = (stamp) => Date.parse(stamp);
    const t0 = Math.min(t(view.created_at), ...started.map((s) => t(s.started_at)));
    const t1 = Math.max(t0 + 1000, ...started.map((s) => (s.finished_at ? t(s.finished_at) : now)));
    const lanes = [...new Set(started.map((s) => s.agent_id || "(no replica)"))].sort();
    const height = 30 + Math.max(1, lanes.length) * LANE_H;
    const width = LABEL_W + PLOT_W + 20;
    const xOf = (ms) => LABEL_W + ((ms - t0) / (t1 - t0)) * PLOT_W;
    const root = svg("svg", { id: "gantt", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
    root.append(svg("title", {}, "Subtasks on replica lanes over time"));
    for (const frac of [0, 0.25, 0.5, 0.75, 1]) {
      const x = LABEL_W + frac * PLOT_W;
      root.append(svg("line", { class: "axis", x1: x, y1: 18, x2: x, y2: height }));
      root.append(svg("text", { class: "small", x: x - 10, y: 12 }, seconds(((t1 - t0) * frac) / 1000)));
    }
    lanes.forEach((lane, i) => {
      const lane_y = 24 + i * LANE_H;
      root.append(svg("text", { class: "lane", x: 6, y: lane_y + 16 }, clip(lane, 22)));
      for (const s of started.filter((s) => (s.agent_id || "(no replica)") === lane)) {
        const x = xOf(t(s.started_at));
        const w = Math.max(3, xOf(s.finished_at ? t(s.finished_at) : now) - x);
        const g = svg("g", { class: "gantt-bar", "data-id": s.id, "data-state": s.state });
        g.append(svg("title", {}, `${s.id} on ${lane}: ${s.state} ${seconds(s.duration_s)}`));
        g.append(svg("rect", { class: "bar " + stateClass(s.state), x, y: lane_y + 2, width: w, height: LANE_H - 8, rx: 3 }));
        if (w > 40) g.append(svg("text", { class: "small", x: x + 4, y: lane_y + 16 }, clip(s.id, Math.floor(w / 7))));
        root.append(g);
      }
    });
    return root;
  }

  // ------------------------------------------------------------------ pages
  function diffBlock(text) {
    const pre = el("pre", { class: "diff" });
    for (const line of String(text).split("\n")) {
      const kind = line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
      pre.append(el("span", kind ? { class: kind } : {}, line + "\n"));
    }
    return pre;
  }

  function changes(view) {
    const found = view.workspace && view.workspace.changes;
    if (!found || (typeof found === "object" && !found.diff)) return null; // nothing changed: no section
    const section = el("section", { id: "changes" }, el("h2", {}, "Workspace changes"));
    if (typeof found === "string") section.append(diffBlock(found));
    else if (typeof found.diff === "string") {
      const { diff, ...rest } = found;
      section.append(json(rest), diffBlock(diff));
    } else section.append(json(found));
    return section;
  }

  function subtaskDetails(s, open) {
    const summary = el(
      "summary",
      {},
      badge(s.state),
      ` ${s.id} — ${s.tool} on ${s.pool}, attempt ${s.attempts}`,
      s.agent_id ? `, ${s.agent_id}` : "",
      s.duration_s !== null && s.duration_s !== undefined ? `, ${seconds(s.duration_s)}` : "",
    );
    const box = el("details", { class: "subtask", "data-id": s.id }, summary, el("h3", {}, "Arguments"), json(s.arguments));
    if (s.error) box.append(el("h3", {}, "Error"), el("pre", { class: "error" }, s.error));
    if (s.result !== null && s.result !== undefined) box.append(el("h3", {}, "Result"), json(s.result));
    box.open = open;
    return box;
  }

  function renderTask(view) {
    const open = new Set([...main.querySelectorAll("details[open]")].map((d) => d.dataset.id));
    const counts = Object.entries(view.counts || {}).map(([k, v]) => `${v} ${k}`).join(", ");
    main.replaceChildren(
      el("h1", {}, "Task ", view.task_id, " ", badge(view.state, "task-state")),
      view.goal ? el("p", { id: "goal" }, view.goal) : "",
      el("p", {}, counts, view.duration_s !== null && view.duration_s !== undefined ? ` — ${seconds(view.duration_s)}` : ""),
      view.error ? el("p", { class: "error", id: "task-error" }, view.error) : "",
      view.message ? el("p", {}, view.message) : "",
      el("h2", {}, "Graph"),
      dag(view.subtasks),
      el("h2", {}, "Timeline"),
      gantt(view),
      changes(view) || "",
      el("h2", {}, "Subtasks"),
      ...view.subtasks.map((s) => subtaskDetails(s, open.has(s.id))),
    );
    return TERMINAL.has(view.state);
  }

  function renderTasks(list) {
    const rows = list.tasks.map((t) =>
      el(
        "tr",
        { "data-id": t.task_id },
        el("td", {}, badge(t.state)),
        el("td", {}, el("a", { href: "#/task/" + encodeURIComponent(t.task_id) }, t.task_id)),
        el("td", {}, t.goal || ""),
        el("td", {}, new Date(t.created_at).toLocaleString()),
        el("td", {}, Object.entries(t.counts).map(([k, v]) => `${v} ${k}`).join(", ")),
      ),
    );
    const head = el("tr", {}, ...["State", "Task", "Goal", "Created", "Subtasks"].map((h) => el("th", {}, h)));
    main.replaceChildren(el("h1", {}, `Tasks (${list.total})`), el("table", { id: "tasks" }, head, ...rows));
    return false;
  }

  function renderAgents(view) {
    const sections = view.pools.map((p) => {
      const head = el("tr", {}, ...["Replica", "Type", "Healthy", "Circuit", "In flight", "Heartbeat", "Tools"].map((h) => el("th", {}, h)));
      const rows = p.replicas.map((r) =>
        el(
          "tr",
          { class: "replica", "data-id": r.agent_id },
          el("td", {}, r.agent_id),
          el("td", {}, r.agent_type),
          el("td", {}, r.healthy ? "yes" : "no"),
          el("td", {}, r.circuit),
          el("td", {}, `${r.inflight} / ${r.max_concurrency}`),
          el("td", {}, r.last_heartbeat_s_ago === null ? (r.static ? "static" : "") : `${r.last_heartbeat_s_ago} s ago`),
          el("td", {}, r.tools.join(", ")),
        ),
      );
      return el("section", { class: "pool", "data-pool": p.pool }, el("h2", {}, `${p.pool} — queue ${p.queue_depth}`), el("table", {}, head, ...rows));
    });
    main.replaceChildren(el("h1", {}, "Agents"), ...sections);
    return false;
  }

  // ------------------------------------------------------------------ browser: login and routes
  function showLogin(message) {
    generation++;
    sessionStorage.removeItem(TOKEN_KEY);
    main.replaceChildren();
    status.textContent = "";
    document.getElementById("login-error").textContent = message || "";
    login.hidden = false;
    document.getElementById("token").focus();
  }

  function route() {
    const [, page, id] = (location.hash || "#/tasks").split("/");
    if (page === "logout") return showLogin("");
    if (!sessionStorage.getItem(TOKEN_KEY)) return showLogin("");
    login.hidden = true;
    if (page === "task" && id) return poll(() => web.get("tasks/" + id), renderTask, POLL_MS);
    if (page === "agents") return poll(() => web.get("agents"), renderAgents, LIST_POLL_MS);
    return poll(() => web.get("tasks"), renderTasks, LIST_POLL_MS);
  }

  // ------------------------------------------------------------------ MCP Apps host
  async function runInHost() {
    document.getElementById("nav").hidden = true;
    window.addEventListener("message", (event) => {
      if (event.source !== window.parent || !event.data || event.data.jsonrpc !== "2.0") return;
      const message = event.data;
      const waiting = host.pending.get(message.id);
      if (waiting && !message.method) {
        host.pending.delete(message.id);
        if (message.error) waiting.reject(new Error(message.error.message));
        else waiting.resolve(message.result);
      } else if (message.method === "ui/notifications/tool-result") {
        const view = message.params && message.params.structuredContent;
        if (view && view.task_id) {
          if (!renderTask(view)) poll(() => host.task(view.task_id), renderTask, POLL_MS);
        }
      }
    });
    await host.request("ui/initialize", {
      protocolVersion: "2025-11-21",
      appInfo: { name: "reynolds-task", version: "1" },
      appCapabilities: {},
    });
    window.parent.postMessage({ jsonrpc: "2.0", method: "ui/notifications/initialized", params: {} }, "*");
  }

  if (!location.pathname.startsWith("/ui")) {
    runInHost();
    return;
  }
  login.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    if (location.hash === "#/logout") location.hash = "#/tasks";
    else route();
  });
  window.addEventListener("hashchange", route);
  route();
})();
