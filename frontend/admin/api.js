// The dashboard's HTTP calls: JSON in, {status, body} out, bounded by a timeout. Errors keep the server's shape.

const TIMEOUT_MS = 15_000;

export async function call(method, url, body) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      method,
      signal: abort.signal,
      cache: "no-store",
      credentials: "same-origin",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let parsed = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
    return { status: response.status, body: parsed };
  } catch (error) {
    return { status: 0, body: { error: { code: "network", message: `The server did not answer (${error.name}).` } } };
  } finally {
    clearTimeout(timer);
  }
}

export function errorMessage(reply) {
  const message = reply.body?.error?.message;
  return typeof message === "string" && message ? message : `The server answered ${reply.status}.`;
}

export const api = {
  login: (token) => call("POST", "/admin/api/session", { token }),
  logout: () => call("DELETE", "/admin/api/session"),
  whoami: () => call("GET", "/admin/api/whoami"),
  runs: () => call("GET", "/admin/api/runs"),
  formAnswers: (runId) => call("GET", `/admin/api/runs/${encodeURIComponent(runId)}/form`),
  conversation: (id) => call("GET", `/admin/api/conversations/${encodeURIComponent(id)}`),
  approve: (agentId, feedback) => call("POST", `/admin/api/agents/${encodeURIComponent(agentId)}/approve`, { feedback }),
  reject: (agentId, reason) => call("POST", `/admin/api/agents/${encodeURIComponent(agentId)}/reject`, { reason }),
  bonus: (agentId, amount, reason, key) =>
    call("POST", `/admin/api/agents/${encodeURIComponent(agentId)}/bonus`, { amount, reason, key }),
  block: (workerId, reason) => call("POST", `/admin/api/workers/${encodeURIComponent(workerId)}/block`, { reason }),
  unblock: (workerId) => call("POST", `/admin/api/workers/${encodeURIComponent(workerId)}/unblock`, {}),
  notifyWorkers: (workerIds, subject, message) =>
    call("POST", "/admin/api/workers/notify", { worker_ids: workerIds, subject, message }),
  compensate: (workerId, amount, reason, runId) =>
    call("POST", `/admin/api/workers/${encodeURIComponent(workerId)}/compensate`, { amount, reason, run_id: runId }),
  approveAnswer: (assignmentId, feedback) =>
    call("POST", `/admin/api/form-answers/${encodeURIComponent(assignmentId)}/approve`, { feedback }),
  rejectAnswer: (assignmentId, reason) =>
    call("POST", `/admin/api/form-answers/${encodeURIComponent(assignmentId)}/reject`, { reason }),
  approveRun: (runId) => call("POST", `/admin/api/runs/${encodeURIComponent(runId)}/approve`, {}),
  exportUrl: (runId, format, raw) =>
    `/admin/api/runs/${encodeURIComponent(runId)}/export?format=${format}&raw_worker_ids=${raw ? "true" : "false"}`,
};
