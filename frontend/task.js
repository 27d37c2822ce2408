// The worker page: load the task, preview or join, then follow the agent's event stream.
// State names, texts and flags all come from the server's TaskInfo.states; none are retyped here.

import { Composer } from "./composer.js";
import { Connection, closeCode } from "./connection.js";
import { loadFragment } from "./fragments.js";
import { fetchPreview, fetchTaskInfo, joinTask, prolificCompletion } from "./http.js";
import { readParams } from "./params.js";
import { externalSubmitUrl, postExternalSubmit } from "./submit.js";
import { View } from "./view.js";

const TYPING_EVERY_MS = 2500; // while typing, tell the partner at most this often (the server relays it)
const TYPING_IDLE_MS = 4000; // no key for this long: stopped typing

/** "I am typing" to the partners: live frames, throttled, never stored. */
class TypingSignal {
  constructor(send) {
    this.send = send;
    this.active = false;
    this.sentAt = 0;
    this.idle = null;
  }

  input() {
    const now = Date.now();
    if (!this.active || now - this.sentAt >= TYPING_EVERY_MS) {
      this.send({ type: "typing", active: true });
      this.active = true;
      this.sentAt = now;
    }
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop(), TYPING_IDLE_MS);
  }

  stop() {
    clearTimeout(this.idle);
    if (this.active) this.send({ type: "typing", active: false });
    this.active = false;
  }
}

const DEFAULT_LIMITS = { max_message_chars: 2000, max_frame_bytes: 65536, heartbeat_ms: 20000 };

const params = readParams(window.location);
const view = new View();
const page = {
  info: null,
  limits: DEFAULT_LIMITS,
  composer: null,
  connection: null,
  agentState: null,
  streamState: null, // the last state event of the stream (agentState may come from a join or a welcome)
  canSubmit: false,
  headSeq: 0,
  ownMessages: 0,
  refused: false,
  stoppedCode: null,
  token: null,
  submitting: false,
  submitted: false,
};

function stateMeta(state) {
  return page.info?.states?.[state] ?? {};
}

function problem(phase, message, retry) {
  view.setPhase(phase);
  view.setStatus(message, "problem");
  if (retry) view.showRetry("Retry", retry);
}

async function boot() {
  view.hideRetry();
  if (!params.runId) {
    problem("unavailable", "This page address has no task id. Please return this HIT.");
    return;
  }
  view.setStatus("Loading the task…");
  const info = await fetchTaskInfo(params.runId);
  if (!info.ok) {
    const message = info.refused ? info.message : `The task could not be loaded: ${info.message}`;
    problem("unavailable", message, info.refused ? null : boot);
    return;
  }
  page.info = info.body;
  page.limits = { ...DEFAULT_LIMITS, ...(info.body.limits ?? {}) };
  view.setTaskInfo(info.body);
  page.composer = new Composer({
    view,
    maxChars: page.limits.max_message_chars,
    maxFrameBytes: page.limits.max_frame_bytes,
    send: (frame) => page.connection?.send(frame),
    typing: new TypingSignal((frame) => page.connection?.sendLive(frame)),
    loadFragment: (role) => loadFragment(params.runId, role),
  });
  if (params.preview) {
    view.setPhase("preview");
    view.setStatus("Accept the HIT to start.", "info");
    page.composer.idle("Accept the HIT to start");
    const preview = await fetchPreview(params.runId);
    if (preview.ok && preview.body?.context) view.setContext({ ...preview.body.context, seq: 0 });
    return;
  }
  if (!params.workerId) {
    problem("unavailable", "This page must be opened from Mechanical Turk or Prolific (the worker id is missing).");
    return;
  }
  await join();
}

async function join() {
  view.hideRetry();
  view.setPhase("joining");
  view.setStatus("Joining the task…");
  const result = await joinTask(params.runId, params);
  if (result.ok) {
    connect(result.body);
  } else if (result.refused) {
    refuse(result);
  } else {
    problem("join_failed", `We could not reach the task server (${result.message}) Check your connection, then press Retry.`, join);
  }
}

function refuse({ code, message }) {
  page.refused = true;
  document.body.dataset.refusal = code;
  view.setPhase("refused");
  view.setStatus(message, "problem");
  page.composer.setLive(false);
  refreshSubmit();
}

function connect(reply) {
  page.token = reply.token;
  view.setPhase("live");
  applyState(reply.state);
  page.connection = new Connection({
    token: reply.token,
    wsPath: reply.ws_path,
    protocolVersion: page.info.protocol_version ?? 1,
    heartbeatMs: page.limits.heartbeat_ms,
    closeCodes: page.info.close_codes,
    handlers: {
      onEvent,
      onWelcome,
      onTurn: (frame) => page.composer.openTurn(frame),
      onAck: (frame) => view.markStored(frame.client_id, frame.message_id),
      onError,
      onTyping: (frame) => view.setTyping(frame.sender, frame.active),
      onPartnerTurn,
      onPresence: (frame) => view.showPresence(frame.sender, frame.present, frame.grace_s),
      onStatus: (status, detail) => {
        view.setConnection(status, detail);
        if (status !== "connected") page.composer.hold();
      },
      onStopped,
      renewToken,
    },
  });
  page.connection.start();
}

/** Apply an agent state; `text` and `canSubmit` from a state event override the TaskInfo defaults. */
function applyState(state, text, canSubmit) {
  const meta = stateMeta(state);
  const live = meta.live === true;
  page.agentState = state;
  page.canSubmit = typeof canSubmit === "boolean" ? canSubmit : meta.can_submit === true;
  view.setAgentState(state);
  if (!page.refused && page.stoppedCode === null) {
    view.setStatus(text || meta.text || state, live ? "live" : page.canSubmit ? "submit" : "final");
  }
  page.composer.setLive(live && page.stoppedCode === null && !page.submitted);
  refreshSubmit();
}

function onWelcome(frame) {
  page.headSeq = frame.head_seq ?? 0;
  if (frame.state && frame.state !== page.agentState) applyState(frame.state);
  view.setSynced(page.connection.lastSeq >= page.headSeq);
}

const QUALIFIED = "You passed the qualification. The task itself starts now; the qualification's chat is folded above.";

function onEvent(event) {
  if (event.type === "state") {
    // The stream's own order (live or replayed): leaving onboarding for the waiting room is a pass.
    if (page.streamState === "onboarding" && event.state === "waiting") view.closeQualification(QUALIFIED);
    page.streamState = event.state;
    applyState(event.state, event.text, event.can_submit);
    if (event.state !== "in_task") view.clearPartnerStatus();
    // The pairing, with the worker's role (and the partners'), stays in the chat as where it began.
    else if (event.text && event.text !== stateMeta("in_task").text) view.addNotice(event);
  }
  else if (event.type === "turn") page.composer.openTurn(event); // stored by an earlier version
  else if (event.type === "message") onMessage(event);
  if (event.seq >= page.headSeq) view.setSynced(true);
}

/** Labels about a chat message ({checkboxes, message_id}): shown under that message, not as a bubble. */
function labelsOf(event) {
  const data = event.data ?? {};
  return typeof data.message_id === "string" && Array.isArray(data.checkboxes) ? data.message_id : null;
}

function onMessage(event) {
  const about = event.mine ? labelsOf(event) : null;
  if (event.kind === "context") view.setContext(event);
  else if (event.kind === "system") view.addNotice(event);
  else if (about) view.showAnnotation(about, event.text, "stored", event.client_id ?? ""); // also after a reload
  else if (event.mine) view.confirmOwn(event);
  else {
    view.addMessage(event);
    view.setTyping(event.sender, false);
    view.clearPartnerTurn(); // their turn is over
  }
  if (event.mine) {
    page.ownMessages += 1;
    if (event.client_id) page.connection.settle(event.client_id); // stored, even if its ack was lost
    page.composer.onOwnMessage(event);
  }
}

/** A partner's turn: shown while the worker has no turn of their own (in a survey both answer at once). */
function onPartnerTurn(frame) {
  if (!page.composer.turn) view.showPartnerTurn(frame.sender, frame.timeout_s);
}

const RATE_LIMIT_RETRY_MS = 1500;

function onError(frame) {
  view.showError(frame.message || frame.code);
  if (frame.client_id) {
    view.markFailed(frame.client_id, frame.message || frame.code);
    page.composer.restore(frame.client_id, frame.code);
  } else if (frame.code === "rate_limited") {
    // Refused before the server read which message it was: resend what is unacked, a little later.
    setTimeout(() => page.connection?.resendPending(), RATE_LIMIT_RETRY_MS);
  }
}

function onStopped({ code, message }) {
  page.stoppedCode = code;
  document.body.dataset.stopped = String(code);
  page.composer.setLive(false);
  if (!page.refused) problem("stopped", message);
  refreshSubmit();
}

/** A 4401 close: join again once for a fresh token (the server resumes the same agent). */
async function renewToken() {
  const result = await joinTask(params.runId, params);
  if (result.ok) {
    page.token = result.body.token;
    return result.body;
  }
  if (result.refused) refuse(result);
  return null;
}

function refreshSubmit() {
  const visible = page.canSubmit && !page.submitted && page.stoppedCode !== closeCode(page.info?.close_codes, "replaced", 4409) && !page.refused;
  view.setSubmit({ visible, busy: page.submitting, onClick: submit });
}

const SUBMIT_NAVIGATION_MS = 8000;

function submitDidNotLeave() {
  page.submitting = false;
  refreshSubmit();
  view.showError("The HIT could not be submitted to Mechanical Turk. Please press Submit HIT again.");
}

/** Prolific: ask which completion code fits (before submitting, while the state says how it ended),
 * submit, then go to Prolific's completion URL. */
async function submitToProlific() {
  page.submitting = true;
  refreshSubmit();
  const completion = await prolificCompletion(params.runId, page.token ?? "");
  if (!completion.ok) {
    page.submitting = false;
    refreshSubmit();
    view.showError(`Your submission could not be finished: ${completion.message} Please press Submit again.`);
    return;
  }
  await page.connection?.sendOnce({ type: "submit" }).catch(() => false);
  page.submitted = true;
  document.body.dataset.submitted = "true";
  window.location.assign(completion.body.url);
}

async function submit() {
  if (page.submitting || page.submitted) return;
  if (params.provider === "prolific") {
    await submitToProlific();
    return;
  }
  const action = externalSubmitUrl(params.turkSubmitTo);
  if (params.turkSubmitTo && !action) {
    view.showError("This page cannot submit: its turkSubmitTo address is not a web address.");
    return;
  }
  // The state the worker submits from (the server may answer the submit frame with "submitted").
  const summary = `messages_sent=${page.ownMessages}; state=${page.agentState}`;
  page.submitting = true;
  refreshSubmit();
  await page.connection?.sendOnce({ type: "submit" }).catch(() => false);
  if (action) {
    // The iframe navigates away. If it stays, the post was blocked (e.g. by a CSP form-action): say so
    // and allow a retry, rather than leave the worker on "Submitting…".
    const timer = setTimeout(submitDidNotLeave, SUBMIT_NAVIGATION_MS);
    const onBlocked = (event) => {
      if (!event.effectiveDirective.startsWith("form-action")) return;
      document.removeEventListener("securitypolicyviolation", onBlocked);
      clearTimeout(timer);
      submitDidNotLeave();
    };
    document.addEventListener("securitypolicyviolation", onBlocked);
    postExternalSubmit(action, { assignmentId: params.assignmentId, summary });
    return;
  }
  page.submitting = false;
  page.submitted = true;
  document.body.dataset.submitted = "true";
  view.setStatus(stateMeta("submitted").text || "Submitted. Thank you!", "final");
  page.composer.setLive(false);
  refreshSubmit();
}

boot();
