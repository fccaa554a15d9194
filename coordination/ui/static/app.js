// coord web view: one page, eight views (/, /sweeps/ID, /plans/ID, /changes, /changes/PLAN,
// /issues, /deps, /trends).
// It reads; what it writes is a signed-in user's: a gate's approval or rejection, a
// sweep paused, resumed or cancelled, a failed todo retried (actions.js); a todo's logs
// are in its detail panel (logs.js). Every todo is one element with data-todo and data-status; statuses change
// in place as server-sent events arrive (no reload). Every repo of a change is one element
// with data-repo and data-state, read again every second while the page is open. Text is
// set with textContent only.
"use strict";

const coord = (window.coord = {loadedAt: Date.now(), events: 0, statusChanges: 0});
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "style") Object.assign(e.style, v);  // CSSOM: allowed by the page's CSP
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

async function getJSON(url, timeoutMs) {
  // timeoutMs: given up (aborted) after it, so a read that hangs fails instead
  const ctl = timeoutMs ? new AbortController() : null;
  const timer = ctl ? setTimeout(() => ctl.abort(), timeoutMs) : null;
  try {
    const r = await fetch(url, {credentials: "same-origin", cache: "no-store",
                                ...(ctl ? {signal: ctl.signal} : {})});
    const body = await r.json().catch(() => ({error: r.statusText}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function fail(err) {
  const main = document.getElementById("main");
  main.replaceChildren(el("p", {class: "error", text: String(err.message || err)}));
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString();
}

function secs(s) {
  if (s === null || s === undefined) return "";
  s = Number(s);
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " m " + Math.round(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " m";
}

function badge(status) {
  return el("span", {class: "badge", "data-status": status || "unknown", text: status || "?"});
}

// A sweep's status; an embedded sweep whose process is gone (orphaned: live, and nobody
// runs it) says so instead of "running": "orphaned: its process ended (pid N on HOST)".
function sweepBadge(s) {
  if (!s.orphaned) return badge(s.status);
  return el("span", {class: "badge", "data-status": "orphaned", "data-orphaned": s.sweep_id,
    title: "coord sweep resume " + s.sweep_id + " adopts it and runs what is left",
    text: "orphaned: " + s.orphaned});
}

// A rollback is told from a success: its statuses have their own colours (app.css),
// and progress counts the undos apart ("12/12 · 10 undone", never a bare 12/12).
const ROLLBACK = new Set(["rolling_back", "rolled_back", "rollback_failed"]);
const TERMINAL = new Set(["succeeded", "failed", "skipped", "cancelled", "compensated", "compensation_failed", "cached"]);

function undos(progress) {
  const parts = [];
  if (progress.undone !== undefined) {
    parts.push(" · ", el("span", {class: "undone", "data-status": "compensated", text: progress.undone + " undone"}));
    if (progress.undo_failed) parts.push(" · ", el("span", {class: "undone", "data-status": "compensation_failed", text: progress.undo_failed + " undo failed"}));
  }
  return parts;
}

function crumb(...parts) {
  document.getElementById("crumb").replaceChildren(...parts.map((p) => el("span", {text: " / " + p})));
}

function table(head, rows, empty) {
  if (!rows.length) return el("p", {class: "muted", text: empty});
  return el("table", {},
    head ? el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {text: h})))) : null,
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) =>
      el("td", {}, c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c))))))));
}

// -- / ---------------------------------------------------------------------------
// The repos are filtered by a selector, as `coord repo list --repos` takes it (`tag:python`,
// `api...`, `!legacy`): kept in the page's URL (/?repos=...) so a filtered view can be shared.
function repoFilter(render) {
  const input = el("input", {id: "repo-filter", type: "search", size: "40",
    placeholder: "selector: tag:python, api..., !legacy",
    value: new URLSearchParams(location.search).get("repos") || ""});
  const form = el("form", {class: "repo-filter"}, input, " ", el("button", {type: "submit", text: "filter"}));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const url = new URL(location.href);
    if (input.value.trim()) url.searchParams.set("repos", input.value.trim());
    else url.searchParams.delete("repos");
    history.replaceState(null, "", url);
    render().catch(fail);
  });
  return {form, input};
}

async function overview() {
  crumb();
  let filter = null;
  const render = async () => {
    const sel = new URLSearchParams(location.search).get("repos");
    let doc, filterError = null;
    try {
      doc = await getJSON("/api/overview" + (sel ? "?repos=" + encodeURIComponent(sel) : ""));
    } catch (err) {  // a selector that selects nothing: say so, show the rest unfiltered
      if (!sel) throw err;
      filterError = String(err.message || err);
      doc = await getJSON("/api/overview");
    }
    const sweeps = table(["sweep", "plan", "status", "progress", "started", "duration"],
      doc.sweeps.map((s) => [
        el("a", {href: "/sweeps/" + encodeURIComponent(s.sweep_id), text: s.sweep_id}),
        s.plan ? el("a", {href: "/plans/" + encodeURIComponent(s.plan), text: s.plan}) : "",
        sweepBadge(s),
        el("span", {class: "progress", "data-sweep": s.sweep_id},
          el("progress", {max: String(s.progress.total || 1), value: String(s.progress.done)}),
          " " + s.progress.done + "/" + s.progress.total, ...undos(s.progress)),
        when(s.started_at || s.created_at), secs(s.duration)]),
      doc.embedded ? "no sweeps yet: COORD_REDIS_URL is unset (embedded sweeps show here once they end, or live with coord plan sweep --wait --ui)" : "no sweeps yet");
    const repoHead = ["repo", "role", "live workers", "concurrency", "checkout"];
    if (doc.breakers) repoHead.push("breaker");
    const repos = table(repoHead, doc.repos.map((r) => {
      const row = [el("span", {"data-repo-row": r.name, text: r.name}), r.role, r.workers === null ? "?" : r.workers, r.concurrency, r.checkout];
      if (doc.breakers) row.push(r.breaker_state ? badge(r.breaker_state.state) : "");
      return row;
    }), "no repos in the catalog");
    // A change plan's todos say nothing of its landing: its change's state is its status.
    const changes = doc.changes || {};
    // A plan with a problem (a template selecting nothing) says it beside its count.
    const problem = (p) => (p.problems || []).length
      ? el("span", {class: "error", "data-plan-problem": p.id, text: " " + p.problems.join("; ")}) : "";
    const plans = table(["plan", "title", "status", "progress"], doc.plans.map((p) => {
      const c = changes[p.id];
      const todos = p.progress.completed + "/" + p.progress.total + " todos";
      if (!c) return [el("a", {href: "/plans/" + encodeURIComponent(p.id), text: p.id}), p.title,
        badge(p.status), el("span", {}, p.progress.completed + "/" + p.progress.total, problem(p))];
      return [el("a", {href: "/plans/" + encodeURIComponent(p.id), text: p.id}), p.title,
        changeBadge(c), el("span", {}, repoCount(c), el("span", {class: "muted", text: " · " + todos + " · plan " + p.status}), problem(p))];
    }), "no plans");
    filter = filter || repoFilter(render);
    // `coord freeze`: nothing new starts or lands until `coord unfreeze` (a banner on top).
    const frozen = doc.frozen ? el("p", {class: "error banner", id: "frozen",
      text: "The fleet is frozen by " + doc.frozen.by + " since " + doc.frozen.at +
        (doc.frozen.reason ? ": " + doc.frozen.reason : "") +
        ". No new sweep or landing starts until `coord unfreeze`; running sweeps go on."}) : "";
    document.getElementById("main").replaceChildren(frozen,
      el("h2", {text: "Recent sweeps"}), sweeps, el("h2", {text: "Repos"}), filter.form,
      filterError ? el("p", {class: "error", id: "repo-filter-error", text: filterError}) : "",
      doc.catalog_error ? el("p", {class: "error", text: "catalog: " + doc.catalog_error}) : "", repos,
      el("h2", {text: "Plans"}), plans);
  };
  await render();
  // (not while someone types a selector: the form would be redrawn under them)
  setInterval(() => { if (document.activeElement !== filter.input) render().catch(fail); }, 5000);
}

// -- changes -------------------------------------------------------------------------
// A change's state, linked to its page (data-change-state: what tests and styles read).
function changeBadge(c) {
  const state = c.state || (c.error ? "unreadable" : "unknown");
  return el("a", {class: "badge change-state", href: "/changes/" + encodeURIComponent(c.plan),
    "data-change": c.plan, "data-change-state": state, "data-status": state, title: c.error || c.reason || "",
    text: "change " + state});
}

function repoCount(c) {
  const states = Object.values(c.repos || {});
  if (!states.length) return c.error ? el("span", {class: "error", text: c.error}) : "";
  const landed = states.filter((s) => s === "landed").length;
  const reverted = states.filter((s) => s === "reverted").length;
  return el("span", {text: `${landed}/${states.length} repos landed` + (reverted ? ` · ${reverted} reverted` : "")});
}

// The line a plan's or sweep's page carries when its plan lands a change.
function changeLine(c) {
  if (!c) return "";
  return el("p", {id: "change", class: "change-line", "data-change-state": c.state || "unknown"},
    "This plan lands a change: ", changeBadge(c), " ", repoCount(c),
    c.reason ? el("span", {class: "muted", text: " · " + c.reason}) : "",
    c.blockers ? el("span", {class: "muted", text: ` · ${c.blockers} blocker(s)`}) : "");
}

function short(sha) { return sha ? String(sha).slice(0, 10) : ""; }

async function changesView() {
  crumb("changes");
  const render = async () => {
    const rows = await getJSON("/api/changes");
    // Read without git (nobody signed in): what the list left out, said once.
    const leftOut = (rows.find((c) => c.left_out) || {}).left_out;
    document.getElementById("main").replaceChildren(el("h2", {text: "Changes"}),
      leftOut ? el("p", {id: "changes-left-out", class: "muted", text: leftOut}) : "",
      table(["plan", "title", "branch", "land", "state", "repos", "blockers"], rows.map((c) => {
        const link = el("a", {href: "/changes/" + encodeURIComponent(c.plan), text: c.plan});
        const row = [link, c.title, c.branch || "", c.land || "", changeBadge(c), repoCount(c),
          c.error ? el("span", {class: "error", text: c.error}) : String(c.blockers)];
        return row;
      }), "no plan of the catalog has change:"));
    for (const c of rows) {
      const tr = document.querySelector(`[data-change="${CSS.escape(c.plan)}"]`).closest("tr");
      tr.setAttribute("data-plan", c.plan);
    }
    coord.rendered = Date.now();
  };
  await render();
  setInterval(() => render().catch(fail), 2000);
}

// A change's page: the change's state and reason, its blockers, each repo's state, base,
// candidate and landed or reverted SHA, its verify todos' verdicts, its gates and who
// approved. Read again every second (a landing moves repo by repo), drawn only on news.
async function changeView(plan) {
  crumb("change " + plan);
  let last = "";
  const render = async () => {
    const d = await getJSON(`/api/changes/${encodeURIComponent(plan)}`);
    const text = JSON.stringify(d);
    if (text === last) return;
    last = text;
    const state = el("span", {id: "change-state", class: "badge", "data-change-state": d.state,
      "data-status": d.state, text: d.state});
    const repos = el("table", {id: "change-repos"},
      el("thead", {}, el("tr", {}, ...["#", "repo", "state", "base", "candidate", "verified by", "landed", "reverted", "why"]
        .map((h) => el("th", {text: h})))),
      el("tbody", {}, ...d.order.filter((r) => d.repos[r]).map((r) => {
        const x = d.repos[r];
        return el("tr", {"data-repo": r, "data-state": x.state},
          ...[String(x.order), r, badge(x.state), `${x.base} ${short(x.base_sha)}`,
            el("code", {text: short(x.candidate)}), (x.verified_by || []).join(", "),
            el("code", {"data-sha": "landed", text: short(x.landed), title: x.landed || ""}),
            el("code", {"data-sha": "reverted", text: short(x.reverted), title: x.reverted || ""}),
            x.why || ""].map((c) => el("td", {}, c)));
      })));
    // Each repo's pull request as its forge says it (coord change publish opened it).
    const withPr = d.order.filter((r) => d.repos[r] && d.repos[r].pr);
    const pulls = withPr.length ? table(["repo", "pull request", "state", "approvals", "checks", "mergeable", "why"], withPr.map((r) => {
      const p = d.repos[r].pr;
      const rv = p.reviews || {}, ck = p.checks || {};
      const link = /^https?:\/\//.test(p.url || "") ? el("a", {href: p.url, rel: "noreferrer", text: "#" + p.number}) : "#" + p.number;
      return [el("span", {"data-pr": r, "data-pr-state": p.state || "", text: r}), link, p.error ? "" : badge(p.state || "unknown"),
        `${(rv.approved_by || []).length}` + (rv.required === null || rv.required === undefined ? "" : `/${rv.required}`) + ((rv.approved_by || []).length ? ` (${rv.approved_by.join(", ")})` : ""),
        ck.state || "", p.error ? "" : (p.mergeable ? "yes" : "no"),
        p.error || (p.blockers || []).map((b) => `${b.kind}: ${b.detail}`).join("; ")];
    }), "") : null;
    // Landed or reverted: no landing is ahead, so nothing blocks one; what the landing
    // rule says of it ("PLAN is landed ...: nothing to land; coord change revert ...")
    // is said as what its state means, not listed as blockers.
    const settled = ["landed", "reverted"].includes(d.state);
    const said = (d.blockers || []).find((b) => b.kind === "state");
    const blockers = settled
      ? el("p", {id: "settled", class: "muted", "data-settled": d.state,
        text: said ? said.why : `${d.state}: no landing is ahead`})
      : (d.blockers || []).length
      ? el("ul", {id: "blockers", class: "blockers"}, ...d.blockers.map((b) =>
        el("li", {"data-blocker": b.id, "data-kind": b.kind}, el("strong", {text: b.kind + " " + b.id}), ": " + b.why)))
      : el("p", {id: "blockers", class: "muted", text: "no blockers"});
    const verify = table(["verify todo", "verdict", "candidates", "why"], Object.entries(d.verify || {}).map(([t, v]) => [
      el("span", {"data-verify": t, "data-verdict": v.verdict, text: t}), badge(v.verdict),
      v.candidates ? Object.entries(v.candidates).map(([r, s]) => r + " " + short(s)).join(", ") : "", v.why || ""]),
      "no verify todo in this change");
    const gates = table(["gate", "verdict", "approved by", "why"], Object.entries(d.gates || {}).map(([g, v]) => [
      el("span", {"data-gate": g, "data-verdict": v.verdict, text: g}), badge(v.verdict),
      (v.approvals || []).join(", ") || "nobody", v.why || ""]), "no gate in this change");
    document.getElementById("main").replaceChildren(
      el("h2", {}, `Change ${d.plan}` + (d.title ? `: ${d.title} ` : " "), state),
      el("p", {}, `branch ${d.branch} · land: ${d.land} · `,
        el("a", {href: "/plans/" + encodeURIComponent(d.plan), text: "plan " + d.plan}),
        d.sweep ? el("span", {}, " · last sweep ", el("a", {href: "/sweeps/" + encodeURIComponent(d.sweep), text: d.sweep})) : "",
        d.train === null || d.train === undefined ? "" : ` · merge train: ${d.train === 0 ? "next" : "#" + (d.train + 1)}`),
      d.reason ? el("p", {id: "change-reason", class: "reason", "data-status": d.state, text: d.reason}) : "",
      // Landed or reverted in the other mode: what the record kept beside the catalog says.
      // Read without git (nobody signed in): what it left out, said.
      d.left_out ? el("p", {id: "change-left-out", class: "muted", text: d.left_out}) : "",
      d.elsewhere ? el("p", {id: "change-elsewhere", class: "reason", "data-status": d.elsewhere.state,
        text: `${d.elsewhere.state} in ${d.elsewhere.from} (kept in ${d.elsewhere.file}): ${d.elsewhere.how}`}) : "",
      // A landing or revert whose process died: the command that carries it on.
      d.resume ? el("p", {id: "change-resume"}, "carry it on: ", el("code", {text: d.resume})) : "",
      el("p", {id: "landable", "data-landable": String(!!d.landable),
        text: settled ? d.state : d.landable ? "landable" : "not landable"}),
      d.bases_checked === false ? el("p", {id: "bases-unchecked", class: "muted", text: "bases not checked on their remotes (network remotes: coord change status --ask-remotes asks them, as land --dry-run does): " + d.order.filter((r) => d.repos[r] && d.repos[r].base_now && !d.repos[r].base_now.checked).join(", ")}) : "",
      (d.unchecked || []).length ? el("p", {id: "unchecked", class: "muted", text: "not checked by a verify todo of its own: " + d.unchecked.join(", ") + " (change: {require_own_verify: true} makes each a blocker)"}) : "",
      el("h3", {text: settled ? "Landing" : "Blockers"}), blockers,
      el("h3", {text: "Repos (landing order)"}), repos,
      ...(pulls ? [el("h3", {text: "Pull requests"}), el("div", {id: "pulls"}, pulls)] : []),
      el("h3", {text: "Verify"}), verify,
      // Each repo's prepare: command in its new worktree: how it ended and its output.
      ...(Object.keys(d.prepare || {}).length ? [el("h3", {text: "Prepare"}),
        el("div", {id: "prepare"}, ...Object.entries(d.prepare).map(([r, p]) =>
          el("section", {"data-prepare": r, "data-ok": String(!!p.ok)},
            el("strong", {text: r + ": "}), badge(p.ok ? "succeeded" : "failed"),
            el("code", {text: " " + p.command + (p.exit_code === null || p.exit_code === 0 ? "" : ` (exit ${p.exit_code})`)}),
            el("pre", {class: "tail", text: p.output || "(no output)"}))))] : []),
      el("h3", {text: "Gates"}), gates);
    coord.rendered = Date.now();
  };
  await render();
  const live = document.getElementById("live");
  live.hidden = false;
  // (a hidden tab asks nothing: each read re-reads the change's records)
  setInterval(() => { if (!document.hidden) render().catch(fail); }, 1000);
}

// -- a DAG (sweep or plan) ---------------------------------------------------------
function drawGraph(lay, statusOf, onPick) {
  const wrap = el("div", {class: "graph", style: {width: lay.width + "px", height: lay.height + "px"}});
  for (const lane of lay.lanes) {
    wrap.append(el("div", {class: "lane", style: {top: lane.y + "px", height: lane.height + "px", width: lay.width + "px"}},
      el("span", {class: "lane-name", text: lane.repo})));
  }
  const pos = new Map();
  for (const n of lay.nodes) pos.set(n.id, n);
  const w = lay.node_w, h = lay.node_h;
  let plain = "", crit = "";
  // Each edge's path is laid out by the server: one that skips levels runs through a
  // slot of its own in each column it crosses, never under a todo (ui/layered.py).
  for (const e of lay.edges) {
    if (!pos.has(e.from) || !pos.has(e.to)) continue;
    if (e.critical) crit += e.d; else plain += e.d;
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", lay.width);
  svg.setAttribute("height", lay.height);
  svg.setAttribute("class", "edges");
  for (const [d, cls] of [[plain, "edge"], [crit, "edge critical"]]) {
    if (!d) continue;
    const p = document.createElementNS(SVG, "path");
    p.setAttribute("d", d);
    p.setAttribute("class", cls);
    svg.append(p);
  }
  wrap.append(svg);
  const frag = document.createDocumentFragment();
  for (const n of lay.nodes) {
    const node = el("div", {
      class: "todo" + (n.critical ? " critical" : ""), "data-todo": n.id,
      "data-status": statusOf(n.id), title: n.id + (n.critical ? " (critical path)" : ""),
      style: {left: n.x + "px", top: n.y + "px", width: w + "px", height: h + "px"}, text: n.id});
    node.addEventListener("click", () => onPick(n.id));
    frag.append(node);
  }
  wrap.append(frag);
  return wrap;
}

function legend(statuses) {
  return el("div", {class: "legend"}, ...statuses.map((s) => badge(s)),
    el("span", {class: "crit-key", text: "critical path"}));
}

function showDetail(title, rows, tail, events, parts, extra) {
  const aside = document.getElementById("detail");
  closeLogStream();
  const close = el("button", {class: "close", text: "×", title: "close", onclick: () => { closeLogStream(); aside.hidden = true; aside.dataset.todo = ""; }});
  const kids = [close, el("h3", {text: title}), table(null, rows, ""), ...(extra || [])];
  if (tail !== undefined) kids.push(el("h4", {text: "output tail"}), el("pre", {class: "tail", text: tail || "(no output)"}));
  // A rolled-back todo: the change's own run and its undo, each with its output.
  for (const part of parts || []) kids.push(el("section", {class: "run", "data-part": part.name},
    el("h4", {text: part.title}), table(null, part.rows, ""),
    el("h5", {class: "tail-title", text: part.tailTitle || "output tail"}),
    el("pre", {class: "tail", text: part.tail || "(no output)"})));
  if (events && events.length) kids.push(el("h4", {text: "events"}), table(["when", "event", ""],
    events.map((e) => [new Date(e.ts * 1000).toLocaleTimeString(), e.kind, e.reason || e.worker || ""]), ""));
  aside.replaceChildren(...kids);
  aside.hidden = false;
}

// A cached todo reused an earlier success: name that run (sweep, run, todo, worker).
function reusedText(c) {
  return `${c.sweep_id} run ${c.run} (${c.todo_id}${c.worker ? " on " + c.worker : ""})`;
}

// -- /sweeps/ID --------------------------------------------------------------------
const SWEEP_STATUSES = ["pending", "queued", "awaiting_approval", "running", "succeeded", "cached", "failed", "skipped", "cancelled"];
const UNDO_STATUSES = ["compensated", "compensation_failed"];

// What a todo wrote to $COORD_OUTPUT: one row per key (its dependents get them as
// COORD_IN_<TODO>_<KEY>).
function outputRows(outputs) {
  return Object.entries(outputs || {}).map(([k, v]) =>
    ["output " + k, el("code", {class: "output", "data-key": k, text: v})]);
}

function runRows(r, command) {
  return [["status", badge(r.status)], ["attempts", r.attempts], ["worker", r.worker || ""],
    ["started", when(r.started_at)], ["finished", when(r.finished_at)], ["duration", secs(r.duration)],
    ["exit code", r.exit_code === null ? "" : r.exit_code], ["reason", r.reason || ""],
    ...(r.cached_from ? [["reused", reusedText(r.cached_from)]] : []),
    ["command", el("code", {text: command || ""})]];
}

// A signed-in user (basic auth) and the CSRF token their decisions carry; no user: no buttons.
let session = null;
async function getSession() {
  if (session === null) session = await getJSON("/api/session").catch(() => ({user: null, csrf: null}));
  return session;
}

async function postJSON(url, body) {
  const s = await getSession();
  const r = await fetch(url, {method: "POST", credentials: "same-origin", cache: "no-store",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf || ""}, body: JSON.stringify(body)});
  const out = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(out.error + (out.hint ? " (" + out.hint + ")" : ""));
  return out;
}

// The sweep's gates: each waiting one with who approved, and buttons for a signed-in user.
function gatesPanel(id, gates, user, onDone) {
  const entries = Object.entries(gates || {});
  if (!entries.length) return "";
  return el("section", {id: "gates", class: "gates"}, el("h3", {text: "Approvals"}),
    ...entries.map(([tid, g]) => {
      const who = g.approvals.length ? "approved by " + g.approvals.join(", ") : "nobody approved yet";
      const row = el("div", {class: "gate", "data-gate": tid, "data-status": g.status},
        el("strong", {text: tid}), " ", badge(g.status),
        el("span", {class: "approvals", text: ` ${g.approvals.length} of ${g.needed} · ${who}` +
          (g.rejected_by ? ` · rejected by ${g.rejected_by}` : "") +
          (g.approvers.length ? ` · approvers: ${g.approvers.join(", ")}` : "") +
          (g.expires_at ? ` · expires ${when(g.expires_at)}` : "")}));
      if (g.status === "awaiting_approval" && user) {
        const comment = el("input", {type: "text", class: "comment", placeholder: "comment", "aria-label": "comment"});
        const msg = el("span", {class: "error gate-error"});
        const act = (action) => async () => {
          msg.textContent = "";
          try {
            await postJSON(`/api/sweeps/${encodeURIComponent(id)}/todos/${encodeURIComponent(tid)}/${action}`,
              {comment: comment.value});
            onDone();
          } catch (err) { msg.textContent = String(err.message || err); }
        };
        row.append(el("span", {class: "actions"}, comment,
          el("button", {type: "button", "data-action": "approve", text: "Approve as " + user, onclick: act("approve")}),
          el("button", {type: "button", "data-action": "reject", text: "Reject", onclick: act("reject")}), msg));
      }
      return row;
    }));
}

// The sweep's waves, in order, each with its state (pending, running, soaking, halted, done).
// A rolled-back sweep's waves come from its events (from_events): counts where they said.
function waveCounts(w) {
  if (!w.from_events) return ` ${w.succeeded}/${w.todos.length} succeeded, needs ${Math.round(w.success_rate * 100)}%`;
  if ((w.count === null || w.count === undefined) && w.state === "pending") return " never started";
  const n = w.count === null || w.count === undefined ? "?" : w.count;
  return w.succeeded === null || w.succeeded === undefined ? ` ${n} todo(s)` : ` ${w.succeeded}/${n} succeeded`;
}

function wavesList(waves) {
  if (!waves || !waves.length) return "";
  return el("section", {class: "waves"}, el("h3", {text: `Waves (${waves.length})`}),
    el("ol", {id: "waves", class: "waves"}, ...waves.map((w) => el("li",
    {"data-wave": w.name, "data-state": w.state},
    el("strong", {text: "wave " + w.name}), " ", badge(w.state),
    waveCounts(w) +
    (w.max_parallel ? ` · max ${w.max_parallel} at once` : "") +
    (w.soak_until ? ` · soaking until ${new Date(w.soak_until * 1000).toLocaleTimeString()}` : "") +
    (w.reason ? ` · ${w.reason}` : "")))));
}

async function sweepView(id) {
  crumb("sweep " + id);
  const me = await getSession();
  let es = null;
  let status = {};
  let sweepStatus = null;
  const counts = el("span", {class: "counts"});
  const pacedNote = el("span", {id: "paced-note", class: "paced-note"});
  // Todos waiting for a pace token: each labelled on the graph (data-paced), counted here.
  const pacedText = () => {
    const n = document.querySelectorAll("[data-todo][data-paced]").length;
    pacedNote.textContent = n ? ` · ${n} paced: waiting for a pace token` : "";
    return pacedNote;
  };
  const markPaced = (node, tid, until) => {
    if (!node.dataset.paced) node.dataset.title = node.title;
    node.dataset.paced = "true";
    node.title = `${tid}: paced, starts at ${until.toLocaleTimeString()} or later`;
  };
  const progress = el("p", {id: "sweep-progress"});
  const head = el("div", {class: "summary"});

  const countText = () => {
    const c = {};
    for (const s of Object.values(status)) c[s] = (c[s] || 0) + 1;
    counts.textContent = Object.entries(c).map(([k, v]) => k + " " + v).join(" · ");
    const all = Object.values(status);
    const p = {done: all.filter((s) => TERMINAL.has(s)).length, total: all.length};
    if (ROLLBACK.has(sweepStatus) || c.compensated || c.compensation_failed) {
      p.undone = c.compensated || 0;
      p.undo_failed = c.compensation_failed || 0;
    }
    progress.replaceChildren(p.done + "/" + p.total + " ended", ...undos(p));
    pacedText();
  };

  // A rolled-back sweep says why, where one looks first: its reason (naming the todo
  // that failed) and the trigger the rollback started from.
  const reasonLine = (s) => {
    if (!ROLLBACK.has(s.status)) return "";
    const head = {rolling_back: "Rolling back", rolled_back: "Rolled back", rollback_failed: "Rollback failed"}[s.status];
    const reason = s.reason || "";
    const says = /^(rolled back|rollback)/i.test(reason);  // "rolled back after TODO-018 failed: ..."
    const text = says ? reason.charAt(0).toUpperCase() + reason.slice(1) : head + (reason ? ": " + reason : "");
    const line = el("p", {id: "sweep-reason", class: "reason", "data-status": s.status}, text);
    if (s.rollback_reason && !(s.reason || "").includes(s.rollback_reason))
      line.append(el("span", {class: "trigger", text: "why it rolled back: " + s.rollback_reason}));
    return line;
  };

  const pick = async (tid) => {
    const d = await getJSON(`/api/sweeps/${encodeURIComponent(id)}/todos/${encodeURIComponent(tid)}`);
    document.getElementById("detail").dataset.todo = tid;
    if (d.change) {
      showDetail(tid, [["status", badge(d.status)], ["repo", d.repo], ["lost runs", d.lost_runs],
        ["after", d.preds.join(", ")]], undefined, d.events, [
        {name: "change", title: "the change (its run)", rows: runRows(d.change, d.change.command),
         tail: d.output_tail, tailTitle: "the change's output tail"},
        {name: "undo", title: "its undo", rows: runRows(d, d.undo || d.run),
         tail: d.undo_output_tail, tailTitle: "the undo's output tail"}]);
      return;
    }
    const extra = [retryButton(id, tid, d.status, sweepStatus, me.user, () => refresh().catch(() => {})),
      logPanel(id, tid)];
    showDetail(tid, [
      ["status", badge(d.status)], ["repo", d.repo], ["attempts", d.attempts],
      ["worker", d.worker || ""], ["started", when(d.started_at)], ["finished", when(d.finished_at)],
      ["duration", secs(d.duration)], ["exit code", d.exit_code === null ? "" : d.exit_code],
      ["reason", d.reason || ""], ...(d.cached_from ? [["reused", reusedText(d.cached_from)]] : []),
      ...(d.starts_at ? [["starts", "at " + when(d.starts_at) + " or later (paced)"]] : []),
      ["lost runs", d.lost_runs], ["run", el("code", {text: d.run})],
      ["after", d.preds.join(", ")], ...outputRows(d.outputs)], d.output_tail, d.events, undefined, extra);
  };

  const renderHead = (g) => {
    const s = g.sweep;
    sweepStatus = s.status;
    const statusBadge = sweepBadge(s);
    statusBadge.id = "sweep-status";
    const rolled = reasonLine(s);
    const undoing = rolled || Object.values(status).some((v) => UNDO_STATUSES.includes(v));
    coord.heads = (coord.heads || 0) + 1;
    head.replaceChildren(
      el("h2", {}, "Sweep " + s.sweep_id + " ", statusBadge), rolled,
      s.orphaned ? el("p", {id: "sweep-orphaned", class: "reason",
        text: `orphaned: ${s.orphaned}; coord sweep resume ${s.sweep_id} adopts it and runs what is left`}) : "",
      el("p", {},
        s.plan ? el("a", {href: "/plans/" + encodeURIComponent(s.plan), text: s.plan}) : "",
        ` · ${s.strategy} · run ${s.run} · created ${when(s.created_at)}` +
        (s.finished_at ? ` · finished ${when(s.finished_at)}` : "") + (s.reason && !rolled ? ` · ${s.reason}` : "")),
      changeLine(g.change), steerButtons(s, me.user, () => refresh().catch(() => {})),
      progress, el("p", {}, counts, pacedText()), legend(undoing ? SWEEP_STATUSES.concat(UNDO_STATUSES) : SWEEP_STATUSES),
      wavesList(s.waves), gatesPanel(id, s.gates, me.user, () => refresh().catch(() => {})),
      g.problem ? el("p", {class: "error", text: g.problem}) : "");
    countText();
  };

  // The sweep's own news (a rollback starts, it ends): its head and every todo's
  // status read again, in place (a rollback resets the todos it undoes to pending).
  // One read at a time: two out at once may come back in either order, and the older
  // drawn last would show a state long gone (a wave running, a gate waiting) with no
  // news left to mend it. A read asked for while one is out is made once it is drawn;
  // the promise handed back settles when the newest asked for is drawn. A read that
  // fails or hangs (a server busy for a moment) is made again a little later, up to
  // five times: left failed once the stream ended, the page would stay in the past.
  let reading = null, readAgain = false;
  const refresh = () => {
    if (reading) { readAgain = true; return reading; }
    reading = (async () => {
      try {
        do { readAgain = false; await readHeadRetrying(); } while (readAgain);
      } finally { reading = null; }
    })();
    return reading;
  };

  const readHeadRetrying = async () => {
    for (let pause = 250; ; pause *= 2) {
      try {
        return await readHead();
      } catch (err) {
        if (pause > 4000) throw err;
        await new Promise((go) => setTimeout(go, pause));
      }
    }
  };

  const readHead = async () => {
    const g = await getJSON(`/api/sweeps/${encodeURIComponent(id)}/graph`, 15000);
    for (const [t, st] of Object.entries(g.status)) {
      if (status[t] === st) continue;
      status[t] = st;
      const node = document.querySelector(`[data-todo="${CSS.escape(t)}"]`);
      if (node) { node.setAttribute("data-status", st); coord.statusChanges++; }
    }
    renderHead(g);
    // Live again after its stream ended (a retry resumed it): followed again from here,
    // so its end reaches the page however fast the retried todo ran.
    if (["queued", "running", "paused"].includes(sweepStatus) && (!es || es.readyState === EventSource.CLOSED)) {
      follow(g.after);
    }
  };

  const load = async () => {
    const g = await getJSON(`/api/sweeps/${encodeURIComponent(id)}/graph`);
    status = Object.assign({}, g.status);
    renderHead(g);
    const graph = drawGraph(g.layout, (t) => status[t] || "pending", (t) => pick(t).catch(fail));
    for (const [t, at] of Object.entries(g.paced || {})) {
      const node = graph.querySelector(`[data-todo="${CSS.escape(t)}"]`);
      if (node) markPaced(node, t, new Date(at));
    }
    document.getElementById("main").replaceChildren(head, el("div", {class: "scroll"}, graph));
    pacedText();
    coord.rendered = Date.now();
    follow(g.after);
  };

  const follow = (after) => {
    if (es) es.close();
    es = new EventSource(`/api/sweeps/${encodeURIComponent(id)}/events?after=${encodeURIComponent(after)}`);
    const live = document.getElementById("live");
    live.hidden = false;
    es.addEventListener("todo", (m) => {
      const e = JSON.parse(m.data);
      coord.events++;
      if (e.kind && e.kind.startsWith("gate.")) refresh().catch(() => {});  // who approved
      const paced = document.querySelector(`[data-todo="${CSS.escape(e.todo)}"]`);
      if (paced && e.paced_until && e.status === "queued") {
        markPaced(paced, e.todo, new Date(e.paced_until * 1000));  // waiting for a pace token
      } else if (paced && e.status !== "queued" && paced.dataset.paced) {
        delete paced.dataset.paced;
        paced.title = paced.dataset.title || e.todo;
      }
      pacedText();
      if (!e.status || status[e.todo] === e.status) return;
      status[e.todo] = e.status;
      const node = document.querySelector(`[data-todo="${CSS.escape(e.todo)}"]`);
      if (node) { node.setAttribute("data-status", e.status); coord.statusChanges++; }
      countText();
      const aside = document.getElementById("detail");
      if (!aside.hidden && aside.dataset.todo === e.todo) pick(e.todo).catch(() => {});
    });
    es.addEventListener("sweep", (m) => {
      const e = JSON.parse(m.data);
      const b = document.getElementById("sweep-status");
      if (b && e.status) { b.setAttribute("data-status", e.status); b.textContent = e.status; }
      if (e.status) sweepStatus = e.status;
      refresh().catch(() => {});
    });
    es.addEventListener("reload", () => load().catch(fail));  // a resume started a new run
    // Refused for good (too many open streams: 503): no longer live. A cut stream
    // reconnects by itself (Last-Event-ID), and stays live meanwhile.
    es.addEventListener("error", () => { if (es.readyState === EventSource.CLOSED) live.hidden = true; });
    es.addEventListener("end", (m) => {
      const e = JSON.parse(m.data);
      const b = document.getElementById("sweep-status");
      if (b && e.status) { b.setAttribute("data-status", e.status); b.textContent = e.status; }
      es.close();
      live.hidden = true;
      refresh().catch(() => {}).finally(() => { coord.ended = true; });
    });
  };

  await load();
}

// -- /plans/ID ---------------------------------------------------------------------
const PLAN_STATUSES = ["pending", "in_progress", "completed", "failed", "skipped", "blocked"];

async function planView(id) {
  crumb("plan " + id);
  const g = await getJSON(`/api/plans/${encodeURIComponent(id)}/graph`);
  const p = g.plan;
  const milestones = table(["milestone", "title", "due", "status", "todos"], p.milestones.map((m) => [
    m.id, m.title, m.due || "", badge(m.status), m.completed + "/" + m.todos.length]), "no milestones");
  const pick = (tid) => {
    const t = g.todos[tid];
    showDetail(tid, [["task", t.task], ["status", badge(t.status)], ["repo", t.repo],
      ["milestone", t.milestone || ""], ["estimate", t.estimated_hours === null ? "" : t.estimated_hours + " h"],
      ["run", el("code", {text: t.run || ""})], ["after", t.blocked_by.join(", ")]]);
  };
  const graph = drawGraph(g.layout, (t) => g.todos[t].status, pick);
  document.getElementById("main").replaceChildren(
    el("h2", {}, `${p.plan}: ${p.title} `, badge(p.status)),
    el("p", {text: `${p.todos.completed}/${p.todos.total} todos completed` + (p.complete ? " · complete" : "")}),
    changeLine(g.change),
    el("h3", {text: "Milestones"}), milestones,
    p.completion_criteria.length ? el("ul", {}, ...p.completion_criteria.map((c) => {
      const chk = (p.checks || []).find((k) => k.criterion === c);
      const state = !chk ? "" : chk.ok === null ? " (not checked)" : chk.ok ? ` (check passed ${chk.at})` : ` (check failed ${chk.at}: ${chk.reason})`;
      return el("li", {text: c + state});
    })) : "",
    el("h3", {text: "Todos"}), legend(PLAN_STATUSES),
    g.problem ? el("p", {class: "error", text: g.problem}) : "",
    el("div", {class: "scroll"}, graph));
  coord.rendered = Date.now();
}

// -- /issues ------------------------------------------------------------------------
// Cross-repo issues, each with the todos it blocks (their blocked_by names it) and those
// todos' plans. Every issue is one row with data-issue.
async function issuesView() {
  crumb("issues");
  const doc = await getJSON("/api/issues");
  const plan = (p) => el("a", {href: "/plans/" + encodeURIComponent(p.id), text: p.id, title: p.title});
  const todo = (t) => el("div", {"data-todo": t.id},
    el("code", {text: t.id}), " ", badge(t.status), " " + t.repo + ": " + t.task);
  document.getElementById("main").replaceChildren(el("h2", {text: "Issues"}),
    table(["issue", "title", "status", "priority", "repos", "assignee", "depends on", "todos it blocks", "plans"],
      doc.map((i) => [el("span", {"data-issue": i.id, text: i.id}), i.title, badge(i.status),
        i.priority + (i.severity ? " · " + i.severity : ""), i.repos.join(", "), i.assignee || "",
        i.dependencies.join(", "), el("div", {}, ...i.todos.map(todo)),
        el("div", {}, ...i.plans.flatMap((p, n) => n ? [", ", plan(p)] : [plan(p)]))]),
      "the catalog has no issues"));
  coord.rendered = Date.now();
}

// -- /deps --------------------------------------------------------------------------
// The inter-repo dependency graph: providers left of their consumers, one arrow per
// dependency, coloured and labelled by its type (dashed: indirect). Every repo is one
// element with data-repo; every edge a path with data-dep and data-type.
async function depsView() {
  crumb("dependencies");
  const g = await getJSON("/api/dependencies");
  const pos = new Map(g.nodes.map((n) => [n.repo, n]));
  const w = g.node_w, h = g.node_h;
  const wrap = el("div", {class: "graph deps", style: {width: g.width + "px", height: g.height + "px"}});
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", g.width);
  svg.setAttribute("height", g.height);
  svg.setAttribute("class", "edges");
  const defs = document.createElementNS(SVG, "defs");
  const marker = document.createElementNS(SVG, "marker");
  for (const [k, v] of [["id", "arrow"], ["viewBox", "0 0 8 8"], ["refX", "8"], ["refY", "4"],
                        ["markerWidth", "7"], ["markerHeight", "7"], ["orient", "auto"]]) marker.setAttribute(k, v);
  const tip = document.createElementNS(SVG, "path");
  tip.setAttribute("d", "M0 0L8 4L0 8z");
  tip.setAttribute("class", "arrow-tip");
  marker.append(tip);
  defs.append(marker);
  svg.append(defs);
  // Each edge's path comes laid out (ui/layered.py): providers left of consumers, an
  // edge that skips columns through a slot of its own in each, a cut cycle's edge right
  // to left, two repos of one column joined by a loop in the gap beside them; no edge
  // passes under a box. Its label sits at the middle of its middle gap.
  g.edges.forEach((e) => {
    if (!pos.get(e.provider) || !pos.get(e.consumer)) return;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", e.d);
    path.setAttribute("class", "dep-edge" + (e.indirect ? " indirect" : ""));
    path.setAttribute("data-dep", e.id);
    path.setAttribute("data-type", e.type);
    path.setAttribute("marker-end", "url(#arrow)");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${e.id}: ${e.consumer} depends on ${e.provider} (${e.type}` +
      (e.version_constraint ? " " + e.version_constraint : "") + (e.indirect ? ", indirect" : "") +
      (e.ordering ? "" : ", does not order work") + ")";
    path.append(title);
    svg.append(path);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", e.label[0]);
    label.setAttribute("y", e.label[1] - 3);
    label.setAttribute("class", "dep-label");
    label.setAttribute("data-type", e.type);
    label.textContent = e.type;
    svg.append(label);
  });
  wrap.append(svg);
  for (const n of g.nodes) {
    wrap.append(el("div", {class: "repo-node", "data-repo": n.repo, title: n.repo,
      style: {left: n.x + "px", top: n.y + "px", width: w + "px", height: h + "px"}, text: n.repo}));
  }
  document.getElementById("main").replaceChildren(el("h2", {text: "Dependencies between repos"}),
    el("p", {class: "muted", text: "An arrow goes from the provider to the repo that depends on it; its label is the dependency's type."}),
    el("div", {class: "legend"}, ...g.types.map((t) => el("span", {class: "dep-key", "data-type": t, text: t}))),
    g.nodes.length ? el("div", {class: "scroll"}, wrap) : el("p", {class: "muted", text: "the catalog has no repos"}),
    el("h3", {text: "Dependencies"}),
    table(["id", "consumer", "provider", "type", "version", "status"], g.edges.map((e) =>
      [e.id, e.consumer, e.provider, e.type + (e.indirect ? " (indirect)" : ""), e.version_constraint || "", badge(e.status)]),
      "no dependencies between repos"));
  coord.rendered = Date.now();
}

// -- /trends ------------------------------------------------------------------------
// `coord history trends --json`: success rate per repo, velocity per ISO week, the
// slowest and flakiest todos, the bottlenecks. ?days=N as the CLI's --days.
function bar(fraction, cls) {
  const f = Math.max(0, Math.min(1, Number(fraction) || 0));
  return el("span", {class: "bar " + (cls || ""), title: Math.round(f * 100) + "%"},
    el("span", {style: {width: (f * 100).toFixed(1) + "%"}}));
}

function pct(rate) { return rate === null || rate === undefined ? "" : Math.round(rate * 100) + "%"; }

async function trendsView() {
  crumb("trends");
  const days = new URLSearchParams(location.search).get("days");
  const t = await getJSON("/api/trends" + (days ? "?days=" + encodeURIComponent(days) : ""));
  const repos = Object.entries(t.repos);
  const v = t.velocity;
  const peak = Math.max(1, ...Object.values(v.total));
  const weekRows = v.weeks.map((wk) => [wk, String(v.total[wk]), bar(v.total[wk] / peak, "velocity"),
    Object.entries(v.repos).filter(([, n]) => n[wk]).map(([r, n]) => r + " " + n[wk]).join(", "),
    Object.entries(v.plans).filter(([, n]) => n[wk]).map(([p, n]) => p + " " + n[wk]).join(", ")]);
  const most = t.bottlenecks.length ? t.bottlenecks[0].wait_s || 1 : 1;
  const slow = t.slowest.length ? t.slowest[0].p95_s || 1 : 1;
  document.getElementById("main").replaceChildren(
    el("h2", {text: `Trends, last ${days || 30} days`}),
    el("h3", {text: "Success rate per repo"}),
    table(["repo", "runs", "succeeded", "failed", "success", "", "p50", "p95"], repos.map(([r, f]) =>
      [el("span", {"data-repo": r, text: r}), f.runs, f.succeeded, f.failed, pct(f.success_rate),
        bar(f.success_rate, "success"), secs(f.p50_s), secs(f.p95_s)]), "no todo ran in this window"),
    el("h3", {text: "Velocity: todos completed per ISO week"}),
    table(["week", "completed", "", "by repo", "by plan"], weekRows, "nothing completed in this window"),
    el("h3", {text: "Slowest todos (by p95)"}),
    table(["todo", "repo", "runs", "p50", "p95", ""], t.slowest.map((x) =>
      [x.todo, x.repo, x.runs, secs(x.p50_s), secs(x.p95_s), bar(x.p95_s / slow, "slow")]), "none"),
    el("h3", {text: "Flakiest todos (both outcomes; most flips first)"}),
    table(["todo", "repo", "runs", "failed", "success", "flips"], t.flakiest.map((x) =>
      [x.todo, x.repo, x.runs, x.failed, pct(x.success_rate), x.flips]), "no todo both succeeded and failed"),
    el("h3", {text: "Bottlenecks: time other repos' todos waited, ready but blocked, on this repo's"}),
    table(["repo", "waited", "waits", "dependents", "worst", ""], t.bottlenecks.map((b) =>
      [b.repo, secs(b.wait_s), b.waits, b.dependents, secs(b.worst_s), bar(b.wait_s / most, "slow")]),
      "no todo waited on another repo's"));
  coord.rendered = Date.now();
}

// -- routing -----------------------------------------------------------------------
function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "sweeps" && parts[1]) return sweepView(parts[1]);
  if (parts[0] === "plans" && parts[1]) return planView(parts[1]);
  if (parts[0] === "changes" && parts[1]) return changeView(parts[1]);
  if (parts[0] === "changes") return changesView();
  if (parts[0] === "issues") return issuesView();
  if (parts[0] === "deps") return depsView();
  if (parts[0] === "trends") return trendsView();
  return overview();
}

route().catch(fail);
