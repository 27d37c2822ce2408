// Actions on one worker, as the CLI has them: unblock, notify (MTurk message), compensate (a HIT only they see).
// What the worker is told is typed here and sent as JSON; nothing is rendered as HTML.

import { api, errorMessage } from "./api.js";

const $ = (id) => document.getElementById(id);

export function wireWorkerActions({ notify, current }) {
  const worker = () => $("worker-id").value.trim();
  const run = (label, send, done) => async () => {
    if (!worker()) {
      notify("Type a worker id first.", "error");
      return;
    }
    const reply = await send();
    if (reply.status !== 200) {
      notify(`${label} refused: ${errorMessage(reply)}`, "error");
      return;
    }
    notify(done(reply.body));
  };
  $("unblock").addEventListener("click", run("Unblock", () => api.unblock(worker()),
    () => `Unblocked ${worker()}.`));
  $("notify").addEventListener("click", run("Notify",
    () => api.notifyWorkers([worker()], $("notify-subject").value, $("notify-message").value),
    (body) => (body.notified.length ? `Notified ${worker()}.` : `Not notified: ${Object.values(body.failed)[0]}`)));
  $("compensate").addEventListener("click", run("Compensate",
    () => api.compensate(worker(), $("compensate-amount").value, $("compensate-reason").value, current() ?? ""),
    (body) => body.message));
}
