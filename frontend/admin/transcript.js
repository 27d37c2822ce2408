// The transcript view: participants with review actions, messages with their annotations, saved world data.
// Worker text is set with textContent only.

import { api, errorMessage } from "./api.js";

const $ = (id) => document.getElementById(id);

function text(tag, value, className) {
  const node = document.createElement(tag);
  node.textContent = value;
  if (className) node.className = className;
  return node;
}

function hasData(value) {
  return value && typeof value === "object" && Object.keys(value).length > 0;
}

function renderParticipant(participant, { notify, reload }) {
  const node = $("participant-template").content.firstElementChild.cloneNode(true);
  node.dataset.agentId = participant.agent_id ?? "";
  node.querySelector(".role").textContent = participant.role;
  node.querySelector(".worker").textContent = participant.kind === "human" ? participant.worker_id : "bot";
  node.querySelector(".state").textContent = participant.state ?? "bot";
  const review = node.querySelector(".review");
  if (participant.kind !== "human") {
    review.remove();
    return node;
  }
  const reason = () => node.querySelector(".feedback").value.trim();
  const worker = participant.worker_id;
  const where = (body) => (body.via === "parley" ? " (recorded in Parley: this work is not on MTurk)" : "");
  // What each action did, in words; `refused` names the action when the server says no.
  const said = {
    approve: { refused: "Not approved", done: (b) => `Approved the work of ${worker}${where(b)}.`,
      again: () => `The work of ${worker} was approved already.` },
    reject: { refused: "Not rejected", done: (b) => `Rejected the work of ${worker}${where(b)}.`,
      again: () => `The work of ${worker} was rejected already.` },
    bonus: { refused: "Bonus not paid", done: () => `Paid ${worker} a bonus of $${amountShown()}.`,
      again: () => `This bonus was paid to ${worker} already; it was not paid twice.` },
    block: { refused: "Not blocked", done: (b) => `Blocked ${worker}: Parley turns them away from now on${where(b)}.`,
      again: () => `${worker} was blocked already.` },
  };
  const amountShown = () => Number(node.querySelector(".amount").value.trim().replace(/^\$/, "")).toFixed(2);
  const act = async (action, request) => {
    const reply = await request();
    const words = said[action];
    if (reply.status === 200) {
      notify(reply.body.duplicate ? words.again(reply.body) : words.done(reply.body));
      await reload();
    } else {
      notify(`${words.refused}: ${errorMessage(reply)}`, "error");
    }
  };
  node.querySelector(".approve").addEventListener("click", () =>
    act("approve", () => api.approve(participant.agent_id, reason())));
  node.querySelector(".reject").addEventListener("click", () =>
    act("reject", () => api.reject(participant.agent_id, reason())));
  node.querySelector(".bonus").addEventListener("click", () => {
    const amount = node.querySelector(".amount").value.trim();
    // One key per click intent: a retried request is paid once; a second click with the same fields too.
    const key = `${amount}:${reason()}`;
    act("bonus", () => api.bonus(participant.agent_id, amount, reason(), key));
  });
  node.querySelector(".block").addEventListener("click", () =>
    act("block", () => api.block(participant.worker_id, reason())));
  const history = node.querySelector(".history");
  for (const entry of participant.reviews) {
    const amount = entry.amount_cents ? ` $${(entry.amount_cents / 100).toFixed(2)}` : "";
    history.append(text("li", `${entry.action}${amount}: ${entry.reason || "(no reason)"}`));
  }
  return node;
}

function renderMessage(message) {
  const item = document.createElement("li");
  if (message.kind !== "chat") item.classList.add("system");
  item.append(text("span", message.sender, "sender"), text("span", message.text, "text"));
  if (hasData(message.annotations)) item.append(text("span", JSON.stringify(message.annotations), "annotations"));
  return item;
}

export async function showTranscript(conversationId, { notify }) {
  const reply = await api.conversation(conversationId);
  if (reply.status !== 200) {
    notify(errorMessage(reply), "error");
    return;
  }
  const { conversation, participants, messages, world_data: worldData, truncated } = reply.body;
  const reload = () => showTranscript(conversationId, { notify });
  $("transcript").hidden = false;
  $("transcript").dataset.conversationId = conversation.id;
  $("transcript-title").textContent = `#${conversation.index} (${conversation.state})`;
  const ended = conversation.end_reason ? ` · ${conversation.end_reason}` : "";
  $("transcript-meta").textContent =
    `${conversation.id} · started ${new Date(conversation.created_at * 1000).toLocaleString()}${ended}` +
    (truncated ? " · showing the first messages only; export for all" : "");
  $("participants").replaceChildren(...participants.map((p) => renderParticipant(p, { notify, reload })));
  $("messages").replaceChildren(...messages.map(renderMessage));
  $("world-data").textContent = worldData ? JSON.stringify(worldData, null, 2) : "(none saved)";
}
