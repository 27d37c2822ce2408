// A form run's answers (HTMLQuestion, one HIT per item): counts, agreement per field, the latest answers.
// Worker text is set with textContent only. Shown only for a run that has answers or is a form task.

import { api, errorMessage } from "./api.js";

const $ = (id) => document.getElementById(id);

function row(values) {
  const tr = document.createElement("tr");
  for (const value of values) {
    const cell = document.createElement("td");
    cell.textContent = value;
    tr.append(cell);
  }
  return tr;
}

const figure = (value) => (value === null || value === undefined ? "n/a" : value.toFixed(3));

function reviewCell(answer, { notify, reload }) {
  const cell = document.createElement("td");
  if (answer.status !== "Submitted" && answer.status !== "Rejected") return cell;
  const text = document.createElement("input");
  text.type = "text";
  text.className = "answer-reason";
  text.placeholder = "Reason or feedback";
  text.setAttribute("aria-label", `Reason or feedback for ${answer.assignment_id}`);
  const act = (label, cls, send) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = cls;
    button.textContent = label;
    button.addEventListener("click", async () => {
      const reply = await send(answer.assignment_id, text.value);
      if (reply.status !== 200) {
        notify(`${label} refused: ${errorMessage(reply)}`, "error");
        return;
      }
      notify(`${label}d ${answer.assignment_id} (${reply.body.status}).`);
      reload();
    });
    return button;
  };
  cell.append(text, act("Approve", "approve", api.approveAnswer));
  if (answer.status === "Submitted") cell.append(act("Reject", "reject", api.rejectAnswer));
  return cell;
}

function render(form, hooks) {
  const statuses = Object.entries(form.by_status).map(([status, count]) => `${count} ${status.toLowerCase()}`);
  $("form-summary").textContent =
    `${form.answers} answer(s) to ${form.items} item(s) from ${form.workers} worker(s)` +
    (statuses.length ? ` (${statuses.join(", ")})` : "") +
    (form.unreadable ? `; ${form.unreadable} could not be read` : "") +
    (form.form_task ? "" : "; agreement needs the run's task, which cannot be loaded here");
  $("form-agreement").tBodies[0].replaceChildren(...form.agreement.map((f) => {
    const tr = row([f.field, `${f.items}`, `${f.answers}`, figure(f.percent_agreement), figure(f.fleiss_kappa)]);
    tr.dataset.field = f.field;
    return tr;
  }));
  $("form-agreement").hidden = form.agreement.length === 0;
  $("form-latest").tBodies[0].replaceChildren(...form.latest.map((a) => {
    const answers = a.error ? `unreadable: ${a.error}` : Object.entries(a.answers).map(([k, v]) => `${k}: ${v}`).join("; ");
    const tr = row([a.item_id, a.worker_id, answers, a.status]);
    tr.dataset.assignment = a.assignment_id;
    tr.append(reviewCell(a, hooks));
    return tr;
  }));
}

export async function showFormAnswers(runId, { notify, current }) {
  const reply = await api.formAnswers(runId);
  if (current() !== runId) return; // another run was picked while this one loaded
  if (reply.status !== 200) {
    $("form-answers").hidden = true;
    notify(`Form answers could not be loaded: ${errorMessage(reply)}`, "error");
    return;
  }
  const form = reply.body;
  $("form-answers").hidden = !(form.form_task || form.answers > 0);
  const reload = () => showFormAnswers(runId, { notify, current });
  if (!$("form-answers").hidden) render(form, { notify, reload });
}
