// coord web view: what a signed-in user may do to a sweep (loaded before app.js; uses its
// el and postJSON): pause, resume or cancel it, and retry a failed todo. Each is a POST
// carrying the page's CSRF token; the server calls the same SweepService method the CLI
// calls and writes the audit entry (as that user, via web). Nobody signed in: no buttons.
"use strict";

// Pause (a queued or running sweep), resume (a paused one), cancel (any live one).
function steerButtons(s, user, onDone) {
  if (!user) return "";
  const live = ["queued", "running", "paused"].includes(s.status);
  if (!live) return "";
  const msg = el("span", {class: "error", id: "steer-error"});
  const act = (action, ask) => async () => {
    msg.textContent = "";
    if (ask && !window.confirm(ask)) return;
    try {
      await postJSON(`/api/sweeps/${encodeURIComponent(s.sweep_id)}/steer/${action}`, {});
      onDone();
    } catch (err) { msg.textContent = String(err.message || err); }
  };
  const buttons = [];
  if (s.status === "paused") buttons.push(el("button", {type: "button", "data-action": "resume",
    text: "Resume", title: "coord sweep unpause: send what waits again", onclick: act("resume")}));
  else buttons.push(el("button", {type: "button", "data-action": "pause", text: "Pause",
    title: "coord sweep pause: running todos finish, nothing new starts", onclick: act("pause")}));
  buttons.push(el("button", {type: "button", "data-action": "cancel", text: "Cancel",
    title: "coord sweep cancel: running todos are killed", onclick: act("cancel",
      `Cancel sweep ${s.sweep_id}? Its running todos are killed.`)}));
  return el("div", {class: "steer", id: "steer"}, el("span", {class: "muted", text: "as " + user + ":"}),
    ...buttons, msg);
}

// Retry: a failed, skipped or cancelled todo of an ended sweep runs again
// (coord sweep resume ID --only TODO).
function retryButton(sweepId, todoId, status, sweepStatus, user, onDone) {
  if (!user || !["failed", "skipped", "cancelled"].includes(status)) return "";
  if (["queued", "running", "paused"].includes(sweepStatus)) return "";
  const msg = el("span", {class: "error", id: "retry-error"});
  const button = el("button", {type: "button", "data-action": "retry", text: "Retry " + todoId,
    title: `coord sweep resume ${sweepId} --only ${todoId}`, onclick: async () => {
      msg.textContent = "";
      try {
        await postJSON(`/api/sweeps/${encodeURIComponent(sweepId)}/todos/${encodeURIComponent(todoId)}/retry`, {});
        onDone();
      } catch (err) { msg.textContent = String(err.message || err); }
    }});
  return el("p", {class: "retry"}, button, " ", msg);
}
