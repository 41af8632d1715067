// Cairn Console: one script, no framework, no build step.
//
// Pages are views in the VIEWS table, picked by the URL's hash (#/threads, #/thread?id=...). A view is
// {nav, title, render(params, main)} and may return a function that stops its timers when the page is
// left; adding a page is one entry here and one route in app.py.
//
// Every piece of data is put on the page as text (textContent, attributes), never as HTML.
"use strict";

const CSRF = document.querySelector('meta[name="cairn-csrf"]').content;
const ROW_H = 28;      // timeline row height in pixels; rows are virtualised, so it must be fixed
const LANE_W = 14;     // width of one lane of the timeline graph
const LIVE_MS = 5000;  // refresh period of the live views
const MORE_ROWS = 50000;  // timeline rows loaded before the page asks whether to load more
let CONFIG = { allow_writes: false, target: "", health: false };

// ---------------------------------------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v;  // CSSOM, which the CSP allows; a style attribute it refuses
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const svgNS = "http://www.w3.org/2000/svg";
function s(tag, attrs) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  return u.toString();
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + units[i];
}

function ago(iso) {
  if (!iso) return "";
  const sec = (Date.now() - Date.parse(iso)) / 1000;
  if (sec < 60) return Math.max(0, Math.round(sec)) + "s ago";
  if (sec < 3600) return Math.round(sec / 60) + "m ago";
  if (sec < 86400) return Math.round(sec / 3600) + "h ago";
  return Math.round(sec / 86400) + "d ago";
}

function time(iso) {
  return iso ? h("time", { datetime: iso, title: iso, text: ago(iso) }) : "";
}

function short(id) { return id && id.length > 13 ? id.slice(0, 8) + "…" + id.slice(-4) : (id || ""); }

function statusBadge(status) {
  return status ? h("span", { class: "badge status-" + status.replace(/[^a-z_-]/gi, ""), text: status }) : "";
}

function link(route, params, ...children) {
  return h("a", { href: "#/" + route + "?" + qs(params) }, ...children);
}

class ApiError extends Error {
  constructor(status, body) { super(body.error || ("HTTP " + status)); this.status = status; this.body = body; }
}

async function getJSON(path, params) {
  const resp = await fetch("/api/" + path + (params ? "?" + qs(params) : ""), { headers: { Accept: "application/json" } });
  const body = await resp.json().catch(() => ({ error: "HTTP " + resp.status }));
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

async function act(name, body) {
  const resp = await fetch("/api/actions/" + name, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Cairn-CSRF": CSRF },
    body: JSON.stringify(body),
  });
  const out = await resp.json().catch(() => ({ error: "HTTP " + resp.status }));
  if (!resp.ok) throw new ApiError(resp.status, out);
  return out;
}

function errorBox(err) {
  return h("div", { class: "error-box", role: "alert" }, h("strong", { text: "Error: " }), err.message || String(err));
}

// confirmAction shows the modal and runs `action(inputValue)` on Confirm; errors stay in the dialog.
function confirmAction({ title, text, input, ok = "Confirm", action }) {
  const dlg = document.getElementById("confirm");
  const field = document.getElementById("confirm-field");
  const inp = document.getElementById("confirm-input");
  const errEl = document.getElementById("confirm-error");
  const okBtn = document.getElementById("confirm-ok");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  field.hidden = !input;
  if (input) { document.getElementById("confirm-label").textContent = input.label; inp.value = input.value || ""; }
  errEl.hidden = true;
  okBtn.textContent = ok;
  okBtn.disabled = false;
  return new Promise((resolve) => {
    const done = (result) => { okBtn.onclick = null; document.getElementById("confirm-cancel").onclick = null; dlg.close(); resolve(result); };
    document.getElementById("confirm-cancel").onclick = () => done(null);
    okBtn.onclick = async () => {
      okBtn.disabled = true;
      try { done(await action(input ? inp.value.trim() : undefined)); }
      catch (err) { errEl.textContent = err.message; errEl.hidden = false; okBtn.disabled = false; }
    };
    dlg.showModal();
    if (input) inp.focus();
  });
}

// --------------------------------------------------------------------------------------------- threads

const STATUSES = ["running", "interrupted", "completed", "failed"];

function renderThreads(params, main) {
  const state = { tokens: [""], page: 0, live: params.get("live") !== "0" };
  const prefix = h("input", { id: "f-prefix", type: "search", placeholder: "thread id prefix", value: params.get("prefix") || "" });
  const status = h("select", { id: "f-status" }, h("option", { value: "", text: "any status" }),
    STATUSES.map((st) => h("option", { value: st, text: st, selected: params.get("status") === st })));
  const meta = h("input", { id: "f-metadata", placeholder: 'metadata filter, e.g. {"graph": "triage"}', value: params.get("metadata") || "", class: "wide" });
  const live = h("input", { type: "checkbox", id: "f-live", checked: state.live });
  const apply = () => {
    location.hash = "#/threads?" + qs({ prefix: prefix.value.trim(), status: status.value, metadata: meta.value.trim(), live: live.checked ? "" : "0" });
  };
  for (const el of [prefix, meta]) el.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  status.addEventListener("change", apply);
  live.addEventListener("change", () => { state.live = live.checked; });
  const filters = h("div", { class: "filters" }, prefix, status, meta, h("button", { onclick: apply, text: "Apply" }),
    h("label", { class: "live" }, live, " live"));
  const info = h("div", { class: "muted small", id: "threads-info" });
  const tbody = h("tbody", { id: "threads-body" });
  const table = h("table", { class: "grid threads" },
    h("thead", {}, h("tr", {}, ["Thread", "Status", "Head node", "Next", "Last update", "Checkpoints", "Head state raw / stored"].map((t) => h("th", { text: t })))),
    tbody);
  const prev = h("button", { text: "← Previous", id: "prev" });
  const next = h("button", { text: "Next →", id: "next" });
  const pager = h("div", { class: "pager" }, prev, h("span", { id: "page-no", class: "muted" }), next);
  const errSlot = h("div");
  main.replaceChildren(h("h1", { text: "Threads" }), filters, errSlot, table, pager, info);

  let lastKey = "";
  async function load() {
    const query = {
      page_size: 50, page_token: state.tokens[state.page], prefix: params.get("prefix") || "",
      status: params.get("status") || "", metadata: params.get("metadata") || "",
    };
    let page;
    try { page = await getJSON("threads", query); errSlot.replaceChildren(); }
    catch (err) { errSlot.replaceChildren(errorBox(err)); return; }
    const key = JSON.stringify(page);
    if (key === lastKey) return;  // a live refresh that changed nothing leaves the DOM alone
    lastKey = key;
    tbody.replaceChildren(...page.threads.map((t) => h("tr", { "data-thread": t.thread_id },
      h("td", {}, link("thread", { id: t.thread_id }, h("code", { text: t.thread_id }))),
      h("td", { title: "head metadata: " + JSON.stringify(t.head_metadata) }, statusBadge(t.status)),
      h("td", { text: t.head_node }),
      h("td", { class: "muted", text: (t.head_next || []).join(", ") }),
      h("td", {}, time(t.updated_at)),
      h("td", { class: "num", text: t.checkpoint_count }),
      h("td", { class: "num", text: t.head_raw === undefined ? "" : `${bytes(t.head_raw)} / ${bytes(t.head_stored)}` }))));
    if (!page.threads.length) tbody.append(h("tr", {}, h("td", { colspan: 7, class: "muted", text: "No threads match." })));
    state.tokens[state.page + 1] = page.next_page_token;
    state.tokens.length = state.page + 2;
    next.disabled = !page.next_page_token;
    prev.disabled = state.page === 0;
    document.getElementById("page-no").textContent = "page " + (state.page + 1);
    info.textContent = query.prefix
      ? `Id-prefix search read ${page.scanned} threads for this page` + (page.next_page_token ? "; Next reads on." : "; all threads searched.")
      : (state.live ? "Refreshing every " + LIVE_MS / 1000 + " s." : "");
  }
  next.onclick = () => { if (state.tokens[state.page + 1]) { state.page++; lastKey = ""; load(); } };
  prev.onclick = () => { if (state.page > 0) { state.page--; lastKey = ""; load(); } };
  load();
  const timer = setInterval(() => { if (state.live && !document.hidden) load(); }, LIVE_MS);
  return () => clearInterval(timer);
}

// -------------------------------------------------------------------------------------------- timeline

// Lanes lays out one namespace's checkpoints, newest first, as a graph by parent pointers, one row at a
// time (as `git log --graph` does): each lane waits for the id of a parent; a row takes the first lane
// waiting for it (or a free one: a branch tip), and other lanes waiting for it end there (a fork point).
class Lanes {
  constructor() { this.waiting = []; this.width = 1; }
  place(row) {
    const hits = [];
    this.waiting.forEach((id, i) => { if (id === row.id) hits.push(i); });
    let col = hits.length ? hits[0] : this.waiting.indexOf(null);
    if (col < 0) col = this.waiting.length;
    row.top = this.waiting.slice();
    row.col = col;
    row.joins = hits.slice(1);
    for (const i of row.joins) this.waiting[i] = null;
    this.waiting[col] = row.parent || null;
    while (this.waiting.length && this.waiting[this.waiting.length - 1] === null) this.waiting.pop();
    row.bottom = this.waiting.slice();
    this.width = Math.max(this.width, col + 1, row.top.length, row.bottom.length);
  }
}

const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];
const laneX = (i) => 8 + i * LANE_W;

function graphCell(row, width) {
  const svg = s("svg", { width: 16 + width * LANE_W, height: ROW_H, class: "lanes" });
  const mid = ROW_H / 2;
  row.top.forEach((id, i) => {
    if (id === null || id === undefined) return;
    const color = PALETTE[i % PALETTE.length];
    if (i === row.col || row.joins.includes(i)) {
      svg.append(s("path", { d: `M${laneX(i)} 0 L${laneX(row.col)} ${mid}`, stroke: color, fill: "none" }));
    } else {
      svg.append(s("line", { x1: laneX(i), y1: 0, x2: laneX(i), y2: ROW_H, stroke: color }));
    }
  });
  if (row.bottom[row.col]) {
    svg.append(s("line", { x1: laneX(row.col), y1: mid, x2: laneX(row.col), y2: ROW_H, stroke: PALETTE[row.col % PALETTE.length] }));
  }
  svg.append(s("circle", { cx: laneX(row.col), cy: mid, r: row.joins.length ? 5 : 4, fill: PALETTE[row.col % PALETTE.length] }));
  return svg;
}

function renderThread(params, main) {
  const threadId = params.get("id") || "";
  const groups = new Map();  // namespace -> {rows, lanes, folded}
  let flat = [];
  let total = 0;
  let stopped = false;
  const status = h("span", { class: "muted", id: "timeline-status", text: "loading…" });
  // Polls for a newer checkpoint and offers a reload rather than re-laying the rows under the reader.
  const fresh = h("button", { id: "timeline-new", hidden: true, text: "New checkpoints: reload", onclick: () => route() });
  const actions = h("span", { class: "actions" });
  if (CONFIG.allow_writes) {
    actions.append(
      h("button", { class: "danger", id: "act-prune", text: "Prune…", onclick: () => confirmAction({
        title: "Prune thread", text: `Keep only the newest checkpoints of each namespace of ${threadId} along its head's parent chain; the rest are deleted.`,
        input: { label: "Checkpoints to keep per namespace", value: "10" }, ok: "Prune",
        action: async (v) => { const n = parseInt(v, 10); if (!(n >= 1)) throw new Error("enter a positive number"); const r = await act("prune", { thread_id: threadId, keep_latest: n }); route(); return r; },
      }) }),
      h("button", { class: "danger", id: "act-clear", text: "Clear thread…", onclick: () => confirmAction({
        title: "Clear thread", text: `Delete every checkpoint and write of ${threadId}, in every namespace. This cannot be undone.`, ok: "Clear",
        action: async () => { const r = await act("clear", { thread_id: threadId }); location.hash = "#/threads"; return r; },
      }) }));
  }
  const viewport = h("div", { class: "vlist", id: "timeline" });
  const spacer = h("div", { class: "vspacer" });
  viewport.append(spacer);
  main.replaceChildren(
    h("div", { class: "crumbs" }, link("threads", {}, "Threads"), " / ", h("code", { text: threadId })),
    h("div", { class: "title-row" }, h("h1", { text: "Timeline" }), status, fresh, h("span", { class: "spacer" }), actions),
    h("div", { class: "tl-head" }, h("span", { class: "c-graph", text: "" }), ["Checkpoint", "Node", "Next", "Step", "Source", "Status", "Created", "Raw / stored"].map((t) => h("span", { text: t }))),
    viewport);

  function rebuild() {
    flat = [];
    const names = [...groups.keys()].sort((a, b) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b)));
    for (const ns of names) {
      const g = groups.get(ns);
      if (names.length > 1 || ns !== "") flat.push({ kind: "ns", ns, g });
      if (!g.folded) for (const r of g.rows) flat.push({ kind: "cp", r, g });
    }
    spacer.style.height = flat.length * ROW_H + "px";
    const lanes = Math.max(1, ...[...groups.values()].map((g) => g.lanes.width));
    main.style.setProperty("--graph-w", (16 + lanes * LANE_W) + "px");
    viewport.dataset.rows = flat.length;
    draw(true);
  }

  let drawn = "";
  function draw(force) {
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_H) - 10);
    const last = Math.min(flat.length, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW_H) + 10);
    const key = first + ":" + last;
    if (!force && key === drawn) return;
    drawn = key;
    const els = [];
    for (let i = first; i < last; i++) els.push(rowEl(flat[i], i));
    spacer.replaceChildren(...els);
  }

  function rowEl(item, i) {
    const style = `top:${i * ROW_H}px`;
    if (item.kind === "ns") {
      const g = item.g;
      return h("div", { class: "tl-row tl-ns", style, "data-ns": item.ns, onclick: () => { g.folded = !g.folded; rebuild(); } },
        h("span", { class: "fold", text: g.folded ? "▸" : "▾" }),
        h("span", { class: "ns-name", text: item.ns === "" ? "root graph" : "namespace " + item.ns }),
        h("span", { class: "muted", text: `${g.rows.length} checkpoints` }));
    }
    const r = item.r;
    const cls = "tl-row tl-cp" + (r.joins.length ? " fork" : "") + (item.g.rows.length > 0 && r === item.g.rows[0] ? " head" : "");
    const href = "#/checkpoint?" + qs({ thread: threadId, ns: r.ns, id: r.id });
    return h("a", { class: cls, style, href, "data-cp": r.id, "data-lane": r.col, "data-ns": r.ns },
      h("span", { class: "c-graph" }, graphCell(r, item.g.lanes.width)),
      h("code", { text: short(r.id), title: r.id }),
      h("span", { class: "node", text: r.node }),
      h("span", { class: "muted", text: (r.next || []).join(", ") }),
      h("span", { class: "num", text: r.step ?? "" }),
      h("span", { text: r.source || "" }),
      h("span", {}, statusBadge(r.status)),
      h("span", {}, time(r.created_at)),
      h("span", { class: "num", text: `${bytes(r.raw)} / ${bytes(r.stored)}` }));
  }

  viewport.addEventListener("scroll", () => requestAnimationFrame(() => draw(false)));
  window.addEventListener("resize", onResize);
  function onResize() { draw(true); }

  // The browser holds at most `step` more rows each time it is asked, so a huge thread costs bounded
  // memory until the reader wants its oldest part (?rows=N sets the step).
  const step = Math.max(1, Number(params.get("rows")) || MORE_ROWS);
  let loadUpTo = step;
  const pageRows = Math.min(1000, step);  // the same on every page: a page token is bound to its query
  let newest = null;  // the thread's newest checkpoint when the page loaded
  const t0 = performance.now();
  async function loadAll(token = "") {
    do {
      if (total >= loadUpTo) {
        status.textContent = `${total} checkpoints loaded, older ones not yet`;
        status.append(" ", h("button", { id: "timeline-more", text: `Load ${step} more`, onclick: () => { loadUpTo += step; loadAll(token); } }));
        return;
      }
      let page;
      try { page = await getJSON("timeline", { thread_id: threadId, page_token: token, page_size: pageRows }); }
      catch (err) { main.insertBefore(errorBox(err), viewport); status.textContent = ""; return; }
      if (stopped) return;
      if (newest === null) newest = page.rows.length ? page.rows[0].id : "";
      for (const row of page.rows) {
        let g = groups.get(row.ns);
        if (!g) { g = { rows: [], lanes: new Lanes(), folded: false }; groups.set(row.ns, g); }
        g.lanes.place(row);
        g.rows.push(row);
      }
      total += page.rows.length;
      token = page.next_page_token;
      rebuild();
      status.textContent = token ? `${total} checkpoints loaded, loading more…` : `${total} checkpoints` + (groups.size > 1 ? ` in ${groups.size} namespaces` : "");
    } while (token);
    viewport.dataset.complete = "1";
    viewport.dataset.loadMs = Math.round(performance.now() - t0);
    if (!total) spacer.replaceChildren(h("p", { class: "muted pad", text: "This thread has no checkpoints." }));
  }
  async function poll() {
    if (newest === null || document.hidden || !fresh.hidden) return;
    try {
      const page = await getJSON("timeline", { thread_id: threadId, page_size: 1 });
      if (page.rows.length && page.rows[0].id !== newest) fresh.hidden = false;
    } catch (err) { /* the next poll tries again; errors of the page itself are shown by loadAll */ }
  }
  loadAll();
  const timer = setInterval(poll, LIVE_MS);
  return () => { stopped = true; clearInterval(timer); window.removeEventListener("resize", onResize); };
}

// ------------------------------------------------------------------------------------------ checkpoint

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

function renderCheckpoint(params, main) {
  const thread = params.get("thread") || "", ns = params.get("ns") || "", id = params.get("id") || "";
  main.replaceChildren(h("p", { class: "muted", text: "Loading checkpoint…" }));
  getJSON("checkpoint", { thread_id: thread, ns, id }).then((v) => {
    const cp = v.checkpoint;
    const download = "/api/state?" + qs({ thread_id: thread, ns, id: cp.id });
    const actions = h("div", { class: "actions" });
    if (CONFIG.allow_writes) {
      actions.append(
        h("button", { id: "act-fork", text: "Fork to new thread…", onclick: () => confirmAction({
          title: "Fork to a new thread", ok: "Fork",
          text: "Copy this thread (CopyThread) into a new, empty thread; unless this checkpoint is the head, its state is then saved there as the new head, so the copy resumes from here.",
          input: { label: "New thread id", value: thread + "-fork-" + Date.now().toString(36) },
          action: async (target) => {
            if (!target) throw new Error("enter a thread id");
            const r = await act("fork", { thread_id: thread, ns, id: cp.id, target_thread_id: target });
            location.hash = "#/thread?" + qs({ id: r.thread_id });
            return r;
          },
        }) }),
        h("button", { id: "act-new-head", text: "New head from this state…", onclick: () => confirmAction({
          title: "New head from this state", ok: "Save new head",
          text: "Save this checkpoint's state again as the newest checkpoint of its namespace, as a child of it (time travel). Later checkpoints stay, as a branch.",
          action: async () => { const r = await act("new-head", { thread_id: thread, ns, id: cp.id }); location.hash = "#/checkpoint?" + qs({ thread, ns, id: r.head_checkpoint_id }); return r; },
        }) }),
        h("button", { class: "danger", id: "act-delete", text: "Delete checkpoint…", onclick: () => confirmAction({
          title: "Delete checkpoint", ok: "Delete", text: `Delete checkpoint ${cp.id} and its pending writes. Its children keep pointing at it.`,
          action: async () => { const r = await act("delete", { thread_id: thread, ns, id: cp.id }); location.hash = "#/thread?" + qs({ id: thread }); return r; },
        }) }));
    }
    const st = v.state;
    const stateBody = st.decoded
      ? h("pre", { class: "code", id: "state-text", text: st.text })
      : h("div", {}, h("p", { class: "label-warn", id: "state-label", text: st.label }), h("pre", { class: "code", text: st.text }));
    main.replaceChildren(
      h("div", { class: "crumbs" }, link("threads", {}, "Threads"), " / ", link("thread", { id: thread }, h("code", { text: thread })), " / ", h("code", { text: cp.id })),
      h("div", { class: "title-row" }, h("h1", { text: "Checkpoint" }), statusBadge(cp.status), h("span", { class: "spacer" }), actions),
      kv([
        ["Id", h("code", { text: cp.id })],
        ["Parent", cp.parent ? link("checkpoint", { thread, ns, id: cp.parent }, h("code", { text: cp.parent })) : h("span", { class: "muted", text: "none" })],
        ["Namespace", cp.ns === "" ? h("span", { class: "muted", text: "root" }) : h("code", { text: cp.ns })],
        ["Node", cp.node || "—"], ["Next", (cp.next || []).join(", ") || "—"],
        ["Step", cp.step ?? "—"], ["Source", cp.source || "—"], ["Sequence", cp.seq],
        ["Created", cp.created_at ? h("span", {}, time(cp.created_at), " ", h("span", { class: "muted", text: cp.created_at })) : "—"],
        ["State", `${st.type || "json"} · ${bytes(st.raw_bytes)} raw · ${bytes(st.stored_bytes)} stored`],
      ]),
      section("Diff against parent", diffView(v.diff)),
      section("State", h("div", {},
        h("p", { class: "muted small" }, st.label + ". ",
          st.truncated ? h("strong", { id: "state-truncated", text: `Showing the first ${bytes(st.text.length)}. ` }) : "",
          h("a", { href: download, id: "state-download", download: "", text: "Download the whole state" }), ` (${bytes(st.raw_bytes)})`),
        stateBody)),
      section("Metadata", h("pre", { class: "code", id: "metadata", text: JSON.stringify(cp.metadata, null, 2) })),
      section(`Pending writes (${v.writes.reduce((n, t) => n + t.writes.length, 0)})`, writesView(v.writes)));
  }).catch((err) => main.replaceChildren(errorBox(err)));
}

function section(title, body) {
  return h("section", { class: "card" }, h("h2", { text: title }), body);
}

function diffView(d) {
  if (!d.available) return h("p", { class: "muted", id: "diff-none", text: "No diff: " + d.reason + "." });
  if (!d.changes.length) return h("p", { class: "muted", id: "diff-none", text: "Same state as the parent." });
  return h("div", {},
    h("table", { class: "grid diff", id: "diff" },
      h("thead", {}, h("tr", {}, ["", "Path", "Parent", "This checkpoint"].map((t) => h("th", { text: t })))),
      h("tbody", {}, d.changes.map((c) => h("tr", { class: "op-" + c.op },
        h("td", { class: "op", text: c.op === "added" ? "+" : c.op === "removed" ? "−" : "~", title: c.op }),
        h("td", {}, h("code", { text: c.path })),
        h("td", {}, c.old === null ? "" : h("code", { class: "old", text: c.old })),
        h("td", {}, c.new === null ? "" : h("code", { class: "new", text: c.new })))))),
    d.truncated ? h("p", { class: "muted small", text: `Showing the first ${d.changes.length} changes.` }) : "");
}

function writesView(tasks) {
  if (!tasks.length) return h("p", { class: "muted", text: "None." });
  return h("div", { id: "writes" }, tasks.map((t) => h("div", { class: "task" },
    h("h3", {}, "Task ", h("code", { text: t.task_id }), t.task_path ? h("span", { class: "muted", text: "  " + t.task_path }) : ""),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["#", "Channel", "Type", "Size", "Value"].map((x) => h("th", { text: x })))),
      h("tbody", {}, t.writes.map((w) => h("tr", {},
        h("td", { class: "num", text: w.idx }), h("td", {}, h("code", { text: w.channel })), h("td", { text: w.value_type }),
        h("td", { class: "num", text: bytes(w.size_bytes) }),
        h("td", {}, w.decoded ? "" : h("div", { class: "label-warn", text: w.label }),
          h("pre", { class: "code small", text: w.value + (w.truncated ? "\n…" : "") })))))))));
}

// ------------------------------------------------------------------------------------------------ runs

const RUN_STATUSES = ["pending", "running", "interrupted", "completed", "failed", "cancelled"];

function runError(e) {
  if (!e) return "";
  return h("span", { class: "run-error" }, h("code", { class: "error", text: e.reason }),
    e.type ? h("span", { text: " " + e.type }) : "", e.message ? h("span", { class: "muted", text: ": " + e.message }) : "");
}

// The lease holder and its sign of life: the API keeps no heartbeat time, but each heartbeat moves the
// lease's expiry, so a running run shows when its lease runs out (in the past: the worker is gone).
function leaseCell(r) {
  if (!r.worker_id) return h("span", { class: "muted", text: "—" });
  const out = h("span", {}, h("code", { text: r.worker_id }));
  if (r.status === "running" && r.lease_expires_at) {
    const left = (Date.parse(r.lease_expires_at) - Date.now()) / 1000;
    out.append(h("span", { class: left < 0 ? "error small" : "muted small", title: "lease expires " + r.lease_expires_at,
      text: left < 0 ? ` · lease expired ${ago(r.lease_expires_at)}` : ` · lease ${Math.round(left)}s left` }));
  }
  return out;
}

function renderRuns(params, main) {
  const state = { tokens: [""], page: 0, live: params.get("live") !== "0" };
  const status = h("select", { id: "r-status" }, h("option", { value: "", text: "any status" }),
    RUN_STATUSES.map((st) => h("option", { value: st, text: st, selected: params.get("status") === st })));
  const queue = h("input", { id: "r-queue", type: "search", placeholder: "queue", value: params.get("queue") || "" });
  const thread = h("input", { id: "r-thread", type: "search", placeholder: "thread id", value: params.get("thread") || "" });
  const live = h("input", { type: "checkbox", id: "r-live", checked: state.live });
  const apply = () => {
    location.hash = "#/runs?" + qs({ status: status.value, queue: queue.value.trim(), thread: thread.value.trim(), live: live.checked ? "" : "0" });
  };
  for (const el of [queue, thread]) el.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  status.addEventListener("change", apply);
  live.addEventListener("change", () => { state.live = live.checked; });
  const filters = h("div", { class: "filters" }, status, queue, thread, h("button", { onclick: apply, text: "Apply" }),
    h("label", { class: "live" }, live, " live"));
  const tbody = h("tbody", { id: "runs-body" });
  const cols = ["Run", "Status", "Queue", "Thread", "Created", "Started", "Ended", "Attempts", "Lease holder", "Error"];
  const table = h("table", { class: "grid runs" }, h("thead", {}, h("tr", {}, cols.map((t) => h("th", { text: t })))), tbody);
  const prev = h("button", { text: "← Previous", id: "runs-prev" });
  const next = h("button", { text: "Next →", id: "runs-next" });
  const pageNo = h("span", { id: "runs-page-no", class: "muted" });
  const info = h("div", { class: "muted small" });
  const errSlot = h("div");
  main.replaceChildren(h("h1", { text: "Runs" }), filters, errSlot, table, h("div", { class: "pager" }, prev, pageNo, next), info);

  let lastKey = "";
  async function load() {
    const query = { page_size: 50, page_token: state.tokens[state.page], status: params.get("status") || "",
      queue: params.get("queue") || "", thread_id: params.get("thread") || "" };
    let page;
    try { page = await getJSON("runs", query); errSlot.replaceChildren(); }
    catch (err) { errSlot.replaceChildren(errorBox(err)); return; }
    const key = JSON.stringify(page);
    if (key === lastKey) return;
    lastKey = key;
    tbody.replaceChildren(...page.runs.map((r) => h("tr", { "data-run": r.run_id, "data-status": r.status },
      h("td", {}, link("run", { id: r.run_id }, h("code", { title: r.run_id, text: short(r.run_id) }))),
      h("td", {}, statusBadge(r.status), r.cancel_requested ? h("span", { class: "muted small", text: " cancel requested" }) : ""),
      h("td", {}, h("code", { text: r.queue })),
      h("td", {}, link("thread", { id: r.thread_id }, h("code", { text: r.thread_id }))),
      h("td", {}, time(r.created_at)), h("td", {}, time(r.started_at)), h("td", {}, time(r.ended_at)),
      h("td", { class: "num", title: `${r.failed_attempt_count} failed, ${r.recovery_count} recovered`, text: r.attempt_count }),
      h("td", {}, leaseCell(r)),
      h("td", {}, runError(r.error)))));
    if (!page.runs.length) tbody.append(h("tr", {}, h("td", { colspan: cols.length, class: "muted", text: "No runs match." })));
    state.tokens[state.page + 1] = page.next_page_token;
    state.tokens.length = state.page + 2;
    next.disabled = !page.next_page_token;
    prev.disabled = state.page === 0;
    pageNo.textContent = "page " + (state.page + 1);
    info.textContent = state.live ? "Refreshing every " + LIVE_MS / 1000 + " s." : "";
  }
  next.onclick = () => { if (state.tokens[state.page + 1]) { state.page++; lastKey = ""; load(); } };
  prev.onclick = () => { if (state.page > 0) { state.page--; lastKey = ""; load(); } };
  load();
  const timer = setInterval(() => { if (state.live && !document.hidden) load(); }, LIVE_MS);
  return () => clearInterval(timer);
}

function payloadView(p, id) {
  if (!p) return h("p", { class: "muted", text: "None." });
  return h("div", {},
    h("p", { class: "muted small" }, `${p.type || "json"} · ${bytes(p.size_bytes)} · ${p.label}`, p.truncated ? h("strong", { text: " (cut)" }) : ""),
    p.decoded ? "" : h("div", { class: "label-warn", text: p.label }),
    h("pre", { class: "code", id, text: p.text }));
}

function renderRun(params, main) {
  const runId = params.get("id") || "";
  main.replaceChildren(h("p", { class: "muted", text: "Loading run…" }));
  let stopped = false;
  let lastKey = "";
  async function load() {
    let r;
    try { r = await getJSON("run", { run_id: runId }); }
    catch (err) { if (!stopped) main.replaceChildren(errorBox(err)); return; }
    const key = JSON.stringify(r);
    if (stopped || key === lastKey) return;
    lastKey = key;
    const actions = h("div", { class: "actions" });
    if (CONFIG.allow_writes && !r.done) {
      actions.append(h("button", { class: "danger", id: "act-cancel-run", text: "Cancel run…", onclick: () => confirmAction({
        title: "Cancel run", ok: "Cancel the run",
        text: r.status === "running"
          ? `Cancel run ${r.run_id}: its worker ${r.worker_id} is told at its next heartbeat and the run ends CANCELLED.`
          : `Cancel run ${r.run_id}; it ends CANCELLED and no worker will claim it.`,
        action: async () => { const out = await act("cancel-run", { run_id: r.run_id }); lastKey = ""; await load(); return out; },
      }) }));
    }
    const p = r.retry_policy;
    main.replaceChildren(
      h("div", { class: "crumbs" }, link("runs", {}, "Runs"), " / ", h("code", { text: r.run_id })),
      h("div", { class: "title-row" }, h("h1", { text: "Run" }), h("span", { id: "run-status" }, statusBadge(r.status)),
        r.cancel_requested ? h("span", { class: "muted", id: "run-cancel-requested", text: "cancel requested" }) : "",
        h("span", { class: "spacer" }), actions),
      kv([
        ["Id", h("code", { text: r.run_id })],
        ["Thread", link("thread", { id: r.thread_id }, h("code", { text: r.thread_id }))],
        ["Queue", h("code", { text: r.queue })],
        ["Created", r.created_at ? h("span", {}, time(r.created_at), " ", h("span", { class: "muted", text: r.created_at })) : "—"],
        ["Started", r.started_at ? h("span", {}, time(r.started_at), " ", h("span", { class: "muted", text: r.started_at })) : "—"],
        ["Ended", r.ended_at ? h("span", {}, time(r.ended_at), " ", h("span", { class: "muted", text: r.ended_at })) : "—"],
        ["Lease holder", h("span", { id: "run-lease" }, leaseCell(r), r.lease_epoch ? h("span", { class: "muted small", text: ` · epoch ${r.lease_epoch}` }) : "")],
        ["Attempts", `${r.attempt_count} (${r.failed_attempt_count} failed, ${r.recovery_count} recovered)`],
        ["Retry policy", `max ${p.max_attempts} attempt${p.max_attempts === 1 ? "" : "s"}, backoff ${p.initial_backoff_seconds}s × ${p.backoff_coefficient}` +
          (p.max_backoff_seconds ? ` up to ${p.max_backoff_seconds}s` : "") + (p.max_recoveries ? `, ${p.max_recoveries} recoveries` : "")],
        ["Timeout", r.execution_timeout_seconds ? r.execution_timeout_seconds + " s" : "none"],
        ["Not before", r.not_before || "—"],
        ["Error", r.error ? h("span", { id: "run-error" }, runError(r.error)) : "—"],
        ["Checkpoint", r.checkpoint_id ? link("checkpoint", { thread: r.thread_id, id: r.checkpoint_id }, h("code", { text: r.checkpoint_id })) : "—"],
      ]),
      section(`Attempts (${r.attempts.length})`, r.attempts.length ? h("table", { class: "grid", id: "attempts" },
        h("thead", {}, h("tr", {}, ["#", "Worker", "Status", "Started", "Ended", "Error", "Recovered"].map((t) => h("th", { text: t })))),
        h("tbody", {}, r.attempts.map((a) => h("tr", { "data-attempt": a.number },
          h("td", { class: "num", text: a.number }), h("td", {}, h("code", { text: a.worker_id })), h("td", {}, statusBadge(a.status)),
          h("td", { title: a.started_at || "" }, time(a.started_at)), h("td", { title: a.ended_at || "" }, time(a.ended_at)),
          h("td", {}, runError(a.error)), h("td", { text: a.recovered ? "yes" : "" })))))
        : h("p", { class: "muted", id: "attempts-none", text: "Not claimed yet." })),
      section("Input", payloadView(r.input, "run-input")),
      section("Output", payloadView(r.output, "run-output")),
      section("Metadata", h("pre", { class: "code", id: "run-metadata", text: JSON.stringify(r.metadata, null, 2) })));
  }
  load();
  // A finished run does not change again; one that is not yet finished is refreshed live.
  const timer = setInterval(() => { if (!document.hidden && lastKey && !JSON.parse(lastKey).done) load(); }, LIVE_MS);
  return () => { stopped = true; clearInterval(timer); };
}

// ---------------------------------------------------------------------------------------------- health

function chart(title, series, { unit = "", percent = false } = {}) {
  const W = 420, H = 120, P = 28;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  const all = series.flatMap((x) => x.points.map((p) => p[1])).filter((v) => v !== null);
  const max = percent ? 1 : Math.max(1e-9, ...all);
  const xs = series.length && series[0].points.length ? series[0].points.map((p) => p[0]) : [0, 1];
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const X = (t) => P + (W - P - 6) * (t - x0) / (x1 - x0);
  const Y = (v) => H - 16 - (H - 26) * (v / max);
  svg.append(s("line", { x1: P, y1: H - 16, x2: W - 6, y2: H - 16, stroke: "#cbd5e1" }));
  const fmt = (v) => percent ? Math.round(v * 100) + "%" : (unit === "B/s" ? bytes(v) + "/s" : (v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2)) + (unit ? " " + unit : ""));
  const label = s("text", { x: 2, y: 12, class: "axis" }); label.textContent = all.some((v) => v > 0) || percent ? fmt(max) : "0"; svg.append(label);
  series.forEach((ser, i) => {
    const pts = ser.points.filter((p) => p[1] !== null);
    if (!pts.length) return;
    svg.append(s("polyline", { points: pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" "), fill: "none", stroke: PALETTE[i % PALETTE.length], "stroke-width": 2 }));
  });
  const legend = h("div", { class: "legend" }, series.map((ser, i) => {
    const lastPt = [...ser.points].reverse().find((p) => p[1] !== null);
    return h("span", {}, h("i", { style: `background:${PALETTE[i % PALETTE.length]}` }), `${ser.name}: ${lastPt ? fmt(lastPt[1]) : "—"}`);
  }));
  return h("div", { class: "card chart-card" }, h("h2", { text: title }), svg, legend);
}

function renderHealth(params, main) {
  main.replaceChildren(h("h1", { text: "Store health" }), h("p", { class: "muted", text: "Loading metrics…" }));
  async function load() {
    let r;
    try { r = await getJSON("health"); } catch (err) { main.replaceChildren(h("h1", { text: "Store health" }), errorBox(err)); return; }
    const head = [h("h1", { text: "Store health" })];
    if (!r.configured) {
      main.replaceChildren(...head, h("p", { class: "muted" }, "No metrics endpoint: start the server with ", h("code", { text: "--metrics-listen HOST:PORT" }), " and the console with ", h("code", { text: "--metrics-url http://HOST:PORT/metrics" }), "."));
      return;
    }
    head.push(h("p", { class: "muted small" }, "From ", h("code", { text: r.url }), `, sampled every ${r.interval_seconds} s.`));
    if (r.error) head.push(errorBox(new Error(r.error)));
    const pts = (f) => r.series.map((p) => [p.at, f(p)]);
    const codes = [...new Set(r.series.flatMap((p) => Object.keys(p.errors_per_second)))];
    const kinds = ["raw_in", "stored", "raw_out"];
    const charts = h("div", { class: "charts", id: "charts" },
      chart("Requests per second", [{ name: "all RPCs", points: pts((p) => p.requests_per_second) }], { unit: "/s" }),
      chart("Errors per second, by code", codes.length ? codes.map((c) => ({ name: c, points: pts((p) => p.errors_per_second[c] || 0) })) : [{ name: "none", points: pts(() => 0) }], { unit: "/s" }),
      chart("Cache hit rate", [{ name: "hits / lookups", points: pts((p) => p.cache_hit_rate) }], { percent: true }),
      chart("State bytes per second", kinds.map((k) => ({ name: k, points: pts((p) => (p.state_bytes_per_second || {})[k] || 0) })), { unit: "B/s" }));
    const t = r.totals;
    const totals = t ? section("Totals since the server started", h("div", { class: "totals" },
      h("table", { class: "grid" }, h("thead", {}, h("tr", {}, h("th", { text: "Code" }), h("th", { text: "Requests" }))),
        h("tbody", {}, Object.entries(t.requests_by_code).sort((a, b) => b[1] - a[1]).map(([k, v]) => h("tr", {}, h("td", {}, h("code", { text: k })), h("td", { class: "num", text: v }))))),
      h("table", { class: "grid" }, h("thead", {}, h("tr", {}, h("th", { text: "Method" }), h("th", { text: "Requests" }))),
        h("tbody", {}, Object.entries(t.requests_by_method).sort((a, b) => b[1] - a[1]).map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", { class: "num", text: v }))))),
      kv([["Cache hits", t.cache_hits], ["Cache misses", t.cache_misses],
        ...Object.entries(t.state_bytes).map(([k, v]) => ["State bytes " + k, bytes(v)]),
        ...Object.entries(t.backend_errors).map(([k, v]) => ["Backend errors " + k, v])]))) : "";
    if (r.series.length < 1) head.push(h("p", { class: "muted", text: "Rates appear after the second sample." }));
    main.replaceChildren(...head, charts, totals);
  }
  load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, LIVE_MS);
  return () => clearInterval(timer);
}

// ---------------------------------------------------------------------------------------------- router

const VIEWS = {
  threads: { nav: "Threads", render: renderThreads },
  thread: { render: renderThread },
  checkpoint: { render: renderCheckpoint },
  runs: { nav: "Runs", render: renderRuns },
  run: { render: renderRun },
  health: { nav: "Health", render: renderHealth },
};

let leave = null;
function route() {
  const hash = location.hash.replace(/^#\/?/, "") || "threads";
  const [name, query] = hash.split("?");
  const view = VIEWS[name] || VIEWS.threads;
  if (leave) { leave(); leave = null; }
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === name);
  const main = document.getElementById("main");
  leave = view.render(new URLSearchParams(query || ""), main) || null;
}

async function start() {
  try { CONFIG = await getJSON("config"); } catch (err) { document.getElementById("main").replaceChildren(errorBox(err)); return; }
  document.getElementById("target").textContent = CONFIG.target;
  const mode = document.getElementById("mode");
  mode.textContent = CONFIG.allow_writes ? "writes allowed" : "read-only";
  mode.classList.add(CONFIG.allow_writes ? "mode-rw" : "mode-ro");
  if (!CONFIG.allow_writes) document.getElementById("confirm").remove();  // nothing to confirm
  document.getElementById("nav").replaceChildren(...Object.entries(VIEWS).filter(([, v]) => v.nav)
    .map(([k, v]) => h("a", { href: "#/" + k, "data-view": k, text: v.nav })));
  window.addEventListener("hashchange", route);
  route();
}

start();
