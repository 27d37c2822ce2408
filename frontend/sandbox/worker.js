// The sandbox worker site, in MTurk's shapes: pick a worker id; HIT groups (the HITs of one HIT type, with
// how many are available); "Your HITs", the accepted ones, with Continue; the assignment being worked in the
// address (?assignment=..., so a reload returns to it); the lists refresh themselves.
// Every label and status comes from the server's JSON and is set with textContent.

const STORAGE_KEY = "parley-sandbox-worker-id";
const REFRESH_MS = 5000;
const $ = (selector) => document.querySelector(selector);

let workerId = "";
let task = null; // { mode: "preview" | "work", hitId, assignmentId, title }
let inProgress = []; // the worker's accepted assignments, from the last refresh

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error ? data.error.message : `The sandbox answered ${response.status}.`);
  }
  return data;
}

function notify(text, isError = false) {
  const notice = $("#notice");
  notice.textContent = text;
  notice.classList.toggle("error", isError);
}

function clock(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

function minutes(seconds) {
  return seconds >= 3600 ? `${Math.round(seconds / 360) / 10} h` : `${Math.round(seconds / 60)} min`;
}

// An HTMLQuestion is anyone's HTML: framed with an opaque origin (its page's CSP says the same), it runs its
// scripts and posts its form, but cannot reach this site. An ExternalQuestion is a site of its own.
const HTML_QUESTION_SANDBOX = "allow-scripts allow-forms";

function openTask(next, url, frameHeight, htmlQuestion) {
  task = next;
  $("#task-panel").hidden = false;
  $("#task-title").textContent = next.title;
  $("#task-mode").textContent = next.mode === "preview" ? "Preview" : "Working";
  $("#accept-previewed").hidden = next.mode !== "preview" || !next.canAccept;
  $("#return-task").hidden = next.mode !== "work";
  const frame = $("#task-frame");
  frame.height = String(frameHeight > 0 ? frameHeight : 600);
  if (htmlQuestion) frame.setAttribute("sandbox", HTML_QUESTION_SANDBOX);
  else frame.removeAttribute("sandbox"); // takes effect with the navigation below
  frame.src = url;
  showInAddress(next.mode === "work" ? next.assignmentId : "");
  $("#task-panel").scrollIntoView({ block: "nearest" });
}

function closeTask() {
  task = null;
  $("#task-panel").hidden = true;
  $("#task-frame").src = "about:blank";
  showInAddress("");
}

/** The assignment being worked, in the address: a reload (F5) opens it again. */
function showInAddress(assignmentId) {
  const url = new URL(window.location.href);
  if (assignmentId) url.searchParams.set("assignment", assignmentId);
  else url.searchParams.delete("assignment");
  if (url.href !== window.location.href) history.replaceState(null, "", url);
}

function continueWork(assignment) {
  openTask(
    { mode: "work", hitId: assignment.hit_id, assignmentId: assignment.assignment_id, title: assignment.title },
    assignment.work_url, assignment.frame_height, assignment.html_question,
  );
}

/** Accept & Work: any free HIT of the group (a list a moment old still works while one is left). */
async function accept(hit) {
  try {
    const accepted = await api("worker/accept", { worker_id: workerId, hit_type_id: hit.hit_type_id });
    openTask(
      { mode: "work", hitId: accepted.hit_id ?? hit.hit_id, assignmentId: accepted.assignment_id, title: hit.title },
      accepted.url, hit.frame_height, hit.html_question,
    );
    notify(`Accepted assignment ${accepted.assignment_id}.`);
  } catch (error) {
    notify(error.message, true);
  }
  await refresh();
}

async function returnTask() {
  if (!task || task.mode !== "work") return;
  try {
    await api("worker/return", { assignment_id: task.assignmentId });
    notify(`Returned assignment ${task.assignmentId}.`);
    closeTask();
  } catch (error) {
    notify(error.message, true);
  }
  await refresh();
}

function renderHits(groups) {
  const list = $("#hits");
  list.replaceChildren();
  $("#hits-empty").textContent = "No HITs available to you right now.";
  $("#hits-empty").hidden = groups.length > 0;
  for (const hit of groups) {
    const card = $("#hit-card").content.firstElementChild.cloneNode(true);
    card.dataset.hitTypeId = hit.hit_type_id;
    card.dataset.hitId = hit.hit_id; // the group's HIT that Preview shows
    const count = hit.hits_available;
    card.querySelector(".title").textContent = hit.title;
    card.querySelector(".description").textContent = hit.description;
    card.querySelector(".reward").textContent = `$${hit.reward}`;
    card.querySelector(".available").textContent = `${count} HIT${count === 1 ? "" : "s"} available`;
    card.querySelector(".duration").textContent = `${minutes(hit.assignment_duration_seconds)} allotted`;
    card.querySelector(".refusal").textContent = hit.refusal ? hit.refusal.message : "";
    const preview = card.querySelector(".preview");
    preview.disabled = !hit.preview_url;
    preview.addEventListener("click", () => openTask(
      { mode: "preview", hitId: hit.hit_id, title: hit.title, canAccept: hit.can_accept, hit },
      hit.preview_url, hit.frame_height, hit.html_question,
    ));
    const acceptButton = card.querySelector(".accept");
    acceptButton.disabled = !hit.can_accept;
    acceptButton.addEventListener("click", () => accept(hit));
    list.append(card);
  }
}

function cells(row, values) {
  for (const value of values) {
    const cell = document.createElement("td");
    cell.textContent = value;
    row.append(cell);
  }
}

function button(label, className, onClick) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = className;
  node.textContent = label;
  node.addEventListener("click", onClick);
  return node;
}

function timeLeft(deadline) {
  const left = Math.max(0, deadline - Date.now() / 1000);
  return left ? minutes(left) : "expired";
}

/** "Your HITs": accepted and not yet submitted or returned, each with Continue; then the past ones. */
function renderAssignments(assignments) {
  inProgress = assignments.filter((assignment) => assignment.work_url);
  const queue = $("#queue");
  queue.hidden = inProgress.length === 0;
  $("#queue-empty").hidden = inProgress.length > 0;
  queue.querySelector("tbody").replaceChildren(...inProgress.map((assignment) => {
    const row = document.createElement("tr");
    row.dataset.assignmentId = assignment.assignment_id;
    cells(row, [assignment.title, timeLeft(assignment.deadline)]);
    const actions = document.createElement("td");
    actions.append(button("Continue", "continue", () => continueWork(assignment)));
    row.append(actions);
    return row;
  }));

  const past = assignments.filter((assignment) => !assignment.work_url);
  const table = $("#assignments");
  table.hidden = past.length === 0;
  $("#assignments-empty").hidden = past.length > 0;
  table.querySelector("tbody").replaceChildren(...past.map((assignment) => {
    const row = document.createElement("tr");
    row.dataset.assignmentId = assignment.assignment_id;
    cells(row, [assignment.title, assignment.assignment_id, assignment.status, clock(assignment.accept_time),
      assignment.requester_feedback || ""]);
    row.children[2].className = "status";
    return row;
  }));
}

function renderMessages(messages) {
  const list = $("#messages");
  list.replaceChildren();
  $("#messages-empty").hidden = messages.length > 0;
  for (const message of messages) {
    const item = document.createElement("li");
    const subject = document.createElement("strong");
    subject.textContent = `${message.subject} (${clock(message.time)})`;
    const text = document.createElement("p");
    text.textContent = message.message_text;
    item.append(subject, text);
    list.append(item);
  }
}

async function refresh() {
  if (!workerId) return;
  const query = `?worker_id=${encodeURIComponent(workerId)}`;
  try {
    const [hits, assignments, messages] = await Promise.all([
      api(`worker/hits${query}`), api(`worker/assignments${query}`), api(`worker/messages${query}`),
    ]);
    renderHits(hits.groups);
    renderAssignments(assignments.assignments);
    renderMessages(messages.messages);
  } catch (error) {
    notify(error.message, true);
  }
}

// Picking a worker id binds it to this browser (a cookie): only this browser then works as it.
async function useWorker(id) {
  const wanted = id.trim().toUpperCase();
  $("#worker-id").value = wanted;
  closeTask();
  try {
    await api("worker/session", { worker_id: wanted });
  } catch (error) {
    notify(error.message, true);
    return;
  }
  workerId = wanted;
  localStorage.setItem(STORAGE_KEY, workerId);
  notify(`Working as ${workerId}.`);
  await refresh();
}

/** After a reload: open the assignment the address names, if it is still this worker's to work on. */
function reopen(assignmentId) {
  const assignment = inProgress.find((found) => found.assignment_id === assignmentId);
  if (assignment) continueWork(assignment);
  else notify(`Assignment ${assignmentId} is no longer in progress for ${workerId || "this worker"}.`, true);
}

window.addEventListener("message", (event) => {
  // The "Submitted" page in the task frame; in a sandboxed frame its origin is opaque ("null").
  const fromTask = event.source === $("#task-frame").contentWindow;
  const origin = event.origin === window.location.origin || event.origin === "null";
  if (!fromTask || !origin || !event.data || event.data.source !== "parley-sandbox") return;
  if (event.data.type === "submitted") {
    notify(`Submitted assignment ${event.data.assignmentId}.`);
    closeTask();
  } else {
    notify(event.data.message || "The submission was refused.", true);
  }
  refresh();
});

document.addEventListener("DOMContentLoaded", () => {
  $("#worker-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useWorker($("#worker-id").value);
  });
  $("#refresh").addEventListener("click", refresh);
  $("#close-task").addEventListener("click", closeTask);
  $("#return-task").addEventListener("click", returnTask);
  $("#accept-previewed").addEventListener("click", () => task && task.hit && accept(task.hit));
  const saved = localStorage.getItem(STORAGE_KEY);
  const working = new URLSearchParams(window.location.search).get("assignment");
  if (saved) useWorker(saved).then(() => working && reopen(working));
  setInterval(() => { if (document.visibilityState === "visible") refresh(); }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") refresh(); });
});
