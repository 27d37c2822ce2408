// The review dashboard: log in, pick a run, watch it live, open transcripts, review, export.

import { api, errorMessage } from "./api.js";
import { showFormAnswers } from "./forms.js";
import { wireWorkerActions } from "./workers.js";
import { watchRun } from "./live.js";
import { showTranscript } from "./transcript.js";

const $ = (id) => document.getElementById(id);
let stopWatching = null;
let currentRun = null;

function notify(message, kind = "info") {
  const notice = $("notice");
  notice.textContent = message;
  notice.dataset.kind = kind;
  notice.hidden = false;
}

function show(view) {
  document.body.dataset.view = view;
  $("login").hidden = view !== "login";
  $("dashboard").hidden = view !== "dashboard";
  $("run-picker").hidden = view !== "dashboard";
  $("logout").hidden = view !== "dashboard";
}

const dollars = (cents) => `$${(cents / 100).toFixed(2)}`;

function setCount(id, value) {
  const node = $(id);
  const next = String(value ?? 0);
  if (node.textContent !== next) node.textContent = next;
}

function renderSnapshot(snapshot) {
  $("run-title").textContent = snapshot.run.title;
  $("run-id").textContent = snapshot.run.id;
  $("run-status").textContent = snapshot.run.served ? snapshot.run.status : `${snapshot.run.status}, not served here`;
  setCount("count-onboarding", snapshot.workers.onboarding);
  setCount("count-waiting", snapshot.workers.waiting);
  setCount("count-in-conversation", snapshot.workers.in_conversation);
  setCount("count-connected", snapshot.workers.connected);
  setCount("count-live", snapshot.conversations.live);
  setCount("count-finished", snapshot.conversations.finished);
  setCount("count-target", snapshot.conversations.target ?? "–");
  setCount("count-messages", snapshot.messages);
  setCount("count-hits-open", snapshot.hits.open);
  setCount("count-hits-submitted", snapshot.hits.submitted);
  setCount("count-hits-approved", snapshot.hits.approved);
  setCount("count-submitted", snapshot.assignments.submitted);
  setCount("count-approved", snapshot.assignments.approved);
  setCount("count-rejected", snapshot.assignments.rejected);
  setCount("count-flagged", snapshot.flagged);
  $("spent").textContent = dollars(snapshot.spend.spent_cents);
  $("reserved").textContent = dollars(snapshot.spend.reserved_cents);
  $("budget").textContent = snapshot.spend.budget_cents ? dollars(snapshot.spend.budget_cents) : "no cap";
  renderConversations(snapshot.recent);
}

function renderConversations(conversations) {
  $("no-conversations").hidden = conversations.length > 0;
  const rows = conversations.map((conv) => {
    const row = document.createElement("tr");
    row.dataset.id = conv.id;
    row.dataset.state = conv.state;
    const cells = [
      `${conv.index}`, conv.state, conv.roles.join(", "), `${conv.messages}`,
      new Date(conv.created_at * 1000).toLocaleTimeString(),
    ];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = "Open";
    open.addEventListener("click", () => showTranscript(conv.id, { notify }));
    const cell = document.createElement("td");
    cell.append(open);
    row.append(cell);
    return row;
  });
  $("conversations").tBodies[0].replaceChildren(...rows);
}

function updateExportLinks() {
  const raw = $("export-raw").checked;
  for (const format of ["jsonl", "parlai", "csv"]) {
    $(`export-${format}`).href = api.exportUrl(currentRun, format, raw);
  }
}

function loadFormAnswers() {
  showFormAnswers(currentRun, { notify, current: () => currentRun });
}

function selectRun(runId) {
  if (stopWatching) stopWatching();
  currentRun = runId;
  $("transcript").hidden = true;
  $("form-answers").hidden = true;
  updateExportLinks();
  loadFormAnswers();
  const status = $("live-status");
  stopWatching = watchRun(runId, {
    onSnapshot: renderSnapshot,
    onStatus: (state) => {
      status.dataset.state = state;
      status.textContent = { live: "● live", connecting: "connecting…", offline: "offline, reconnecting…",
        unauthorized: "logged out" }[state];
      if (state === "unauthorized") show("login");
    },
  });
}

async function enterDashboard() {
  const reply = await api.runs();
  if (reply.status === 401 || reply.status === 403) {
    show("login");
    if (reply.status === 403) $("login-error").textContent = errorMessage(reply);
    $("login-error").hidden = reply.status !== 403;
    return;
  }
  if (reply.status !== 200) {
    notify(errorMessage(reply), "error");
    return;
  }
  show("dashboard");
  const select = $("run-select");
  select.replaceChildren(...reply.body.runs.map((run) => {
    const option = document.createElement("option");
    option.value = run.id;
    option.textContent = `${run.id} — ${run.title}`;
    return option;
  }));
  const wanted = new URLSearchParams(location.search).get("run");
  const first = reply.body.runs.find((run) => run.id === wanted) ?? reply.body.runs[0];
  if (first) {
    select.value = first.id;
    selectRun(first.id);
  } else {
    notify("No runs yet. Start one with `parley run` or PARLEY_DEMO_RUNS.");
  }
}

/** A one-click login link (`/admin#token=...`, logged at start-up): log in with it once, and take the token
 *  out of the address bar and its history whatever the answer. */
async function loginFromLink() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return false;
  history.replaceState(null, "", location.pathname + location.search);
  const reply = await api.login(token);
  if (reply.status === 200) return false;
  show("login");
  $("login-error").textContent = reply.status === 401
    ? "This login link is out of date: the server has another admin token now. Use the link in the server's "
      + "latest start-up log, or enter the token below."
    : errorMessage(reply);
  $("login-error").hidden = false;
  return true;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const reply = await api.login($("token").value);
  if (reply.status !== 200) {
    $("login-error").textContent = errorMessage(reply);
    $("login-error").hidden = false;
    return;
  }
  $("token").value = "";
  $("login-error").hidden = true;
  await enterDashboard();
});

$("logout").addEventListener("click", async () => {
  await api.logout();
  if (stopWatching) stopWatching();
  show("login");
});

$("run-select").addEventListener("change", (event) => selectRun(event.target.value));
$("export-raw").addEventListener("change", updateExportLinks);
$("form-refresh").addEventListener("click", loadFormAnswers);
$("approve-all").addEventListener("click", async () => {
  const reply = await api.approveRun(currentRun);
  if (reply.status !== 200) {
    notify(`Approve all refused: ${errorMessage(reply)}`, "error");
    return;
  }
  const failed = Object.keys(reply.body.failed).length;
  notify(`Approved ${reply.body.approved.length} assignment(s)${failed ? `; ${failed} could not be` : ""}.`);
});

wireWorkerActions({ notify, current: () => currentRun });
loginFromLink().then((refused) => {
  if (!refused) enterDashboard();
});
