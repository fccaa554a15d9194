// coord web view: a todo's logs in its detail panel (loaded before app.js; uses its el,
// getJSON and when). Each attempt (number, worker, start, end, exit code) is a button;
// the chosen attempt's output is one <pre data-log-attempt=N> whose chunks are spans
// (data-stream: stdout, stderr, coord), and while the attempt runs it grows as the worker
// writes it (server-sent events from .../logs/stream, until the attempt's end).
"use strict";

let logStream = null;  // the one followed attempt (closed when the panel changes)

function closeLogStream() {
  if (logStream) { logStream.close(); logStream = null; }
}

function attemptText(a) {
  const how = a.ended_at === null || a.ended_at === undefined ? "running"
    : a.outcome === "exited" ? "exit " + a.exit_code : String(a.outcome);
  const size = (a.stdout_bytes || 0) + (a.stderr_bytes || 0);
  return `attempt ${a.attempt} on ${a.worker || "?"} · ${when(a.started_at * 1000)}` +
    (a.ended_at ? ` → ${when(a.ended_at * 1000)}` : "") + ` · ${how} · ${size} bytes` +
    (a.truncated ? ` · kept the first ${a.cap}` : "");
}

function appendChunk(pre, stream, text) {
  const last = pre.lastElementChild;
  if (last && last.dataset.stream === stream) last.textContent += text;
  else pre.append(el("span", {"data-stream": stream, class: "log-" + stream, text}));
}

// The panel: attempts, then one attempt's output (the latest first), followed while it runs.
function logPanel(sweepId, todoId) {
  const section = el("section", {id: "logs", class: "logs", "data-log-todo": todoId},
    el("h4", {text: "logs"}));
  const base = `/api/sweeps/${encodeURIComponent(sweepId)}/todos/${encodeURIComponent(todoId)}/logs`;
  const show = async (attempt) => {
    closeLogStream();
    const d = await getJSON(base + (attempt ? "?attempt=" + attempt : ""));
    if (!d.attempts.length) {
      section.replaceChildren(el("h4", {text: "logs"}),
        el("p", {class: "muted", id: "log-none", text: "no attempt has run yet"}));
      return;
    }
    const list = el("div", {class: "attempts"}, ...d.attempts.map((a) => el("button", {
      type: "button", class: "attempt" + (a.attempt === d.attempt ? " current" : ""),
      "data-attempt": String(a.attempt), text: attemptText(a),
      onclick: () => show(a.attempt).catch(() => {})})));
    const pre = el("pre", {class: "log", "data-log-attempt": String(d.attempt),
      "data-running": String(!!d.running)});
    for (const line of d.output) appendChunk(pre, line.stream, line.text);
    section.replaceChildren(el("h4", {text: `logs (${d.attempts.length} attempt${d.attempts.length === 1 ? "" : "s"})`}),
      list, pre);
    if (!d.running) return;
    logStream = new EventSource(`${base}/stream?attempt=${d.attempt}&after=${encodeURIComponent(d.after)}`);
    logStream.addEventListener("chunk", (m) => {
      const c = JSON.parse(m.data);
      appendChunk(pre, c.stream, c.text);
      coord.logChunks = (coord.logChunks || 0) + 1;
    });
    logStream.addEventListener("end", () => {
      closeLogStream();
      pre.dataset.running = "false";
      show(d.attempt).catch(() => {});  // its record as it ended
    });
  };
  show(null).catch((err) => section.append(el("p", {class: "error", text: String(err.message || err)})));
  return section;
}
