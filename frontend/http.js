// The two HTTP calls of the page: task info and join. Bounded waits, retries with backoff.

const REQUEST_TIMEOUT_MS = 10_000;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function requestJson(url, init = {}) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      ...init,
      signal: abort.signal,
      cache: "no-store",
      credentials: "same-origin",
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return { status: response.status, body };
  } finally {
    clearTimeout(timer);
  }
}

function errorOf(body, fallback) {
  const error = body && typeof body === "object" ? body.error : null;
  return {
    code: typeof error?.code === "string" ? error.code : "unknown",
    message: typeof error?.message === "string" && error.message ? error.message : fallback,
  };
}

/**
 * Call `url` until it answers something other than a network failure, a 5xx or a 429.
 * Resolves to {ok: true, body} | {ok: false, refused: true, code, message} (a definite 4xx answer)
 * | {ok: false, refused: false, message} (unreachable after every retry).
 */
async function callWithRetries(url, init) {
  let lastProblem = "The server could not be reached.";
  for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt += 1) {
    if (attempt > 0) await sleep(RETRY_DELAYS_MS[attempt - 1]);
    let result;
    try {
      result = await requestJson(url, init);
    } catch {
      continue; // network failure or timeout: retry
    }
    if (result.status >= 200 && result.status < 300) return { ok: true, body: result.body };
    const error = errorOf(result.body, `The server answered ${result.status}.`);
    if (result.status >= 500 || result.status === 429) {
      lastProblem = error.message;
      continue;
    }
    return { ok: false, refused: true, ...error };
  }
  return { ok: false, refused: false, message: lastProblem };
}

export function fetchTaskInfo(runId) {
  return callWithRetries(`/task/${encodeURIComponent(runId)}/info`, { method: "GET" });
}

/** What the task lets a previewing worker see of its context: {ok, body: {context: event-like | null}}. */
export function fetchPreview(runId) {
  return callWithRetries(`/task/${encodeURIComponent(runId)}/preview`, { method: "GET" });
}

/** Join (or join again) the assignment with this page's resume key: only the page holding it gets a token. */
export function joinTask(runId, params) {
  return callWithRetries(`/task/${encodeURIComponent(runId)}/join`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      assignment_id: params.assignmentId,
      hit_id: params.hitId,
      worker_id: params.workerId,
      turk_submit_to: params.turkSubmitTo,
      resume_key: resumeKey(runId, params.assignmentId),
    }),
  });
}

/** Prolific: where to send the participant now (the completion URL with the code that fits the end). */
export function prolificCompletion(runId, token) {
  return callWithRetries(`/task/${encodeURIComponent(runId)}/prolific/complete`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
}

/**
 * The key to this assignment, made here before the first join and kept in localStorage, so a reload, a
 * second tab of this browser, or a join retried after its reply was lost resumes the same agent, and nobody
 * else can. Without storage (blocked in some private modes) the key lasts as long as the page.
 */
const pageKeys = new Map();

function resumeKey(runId, assignmentId) {
  const name = `parley:resume:${runId}:${assignmentId}`;
  let key = pageKeys.get(name) ?? readStored(name);
  if (!key) {
    const bytes = new Uint8Array(24);
    crypto.getRandomValues(bytes);
    key = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    writeStored(name, key);
  }
  pageKeys.set(name, key);
  return key;
}

function readStored(name) {
  try {
    return window.localStorage.getItem(name);
  } catch {
    return null;
  }
}

function writeStored(name, value) {
  try {
    window.localStorage.setItem(name, value);
  } catch {
    // storage refused: the key lives in this page only
  }
}
