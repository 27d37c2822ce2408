// Rendering. Every task- or worker-supplied string is set with textContent, never parsed as HTML.
// Test hooks: body[data-phase|state|connection|turn|synced], chat items carry data-seq / data-client-id.

const byId = (id) => document.getElementById(id);
const NEAR_BOTTOM_PX = 80;
const TYPING_FADE_MS = 15_000;
const STEP_KINDS = new Set(["form", "fragment"]); // widgets shown as a step under the transcript

function item(className, children) {
  const li = document.createElement("li");
  li.className = className;
  li.append(...children);
  return li;
}

function span(className, text) {
  const node = document.createElement("span");
  node.className = className;
  node.textContent = text;
  return node;
}

/** `data.conversations` as [[side, turns]...] when it holds two or more lists of turns, else null. */
function pairOf(data) {
  const conversations = data && typeof data === "object" ? data.conversations : null;
  if (!conversations || typeof conversations !== "object" || Array.isArray(conversations)) return null;
  const sides = Object.entries(conversations).filter(([, turns]) => Array.isArray(turns));
  return sides.length >= 2 ? sides : null;
}

/** Conversations side by side (stacked when the pane is narrow), each turn with its speaker, as text. */
function pairView(data, sides) {
  const wrap = document.createElement("div");
  wrap.className = "pair";
  if (Number.isInteger(data.pair) && Number.isInteger(data.of)) {
    wrap.append(span("pair-heading", `Pair ${data.pair} of ${data.of}`));
  }
  if (typeof data.question === "string" && data.question) wrap.append(span("pair-question", data.question));
  const columns = document.createElement("div");
  columns.className = "conversations";
  for (const [side, turns] of sides) {
    const column = document.createElement("section");
    column.className = "conversation";
    column.dataset.side = side;
    const title = document.createElement("h3");
    title.textContent = `Conversation ${side}`;
    const list = document.createElement("ol");
    list.className = "turns";
    for (const turn of turns) {
      const speaker = turn && typeof turn === "object" ? String(turn.speaker ?? "") : "";
      const text = turn && typeof turn === "object" ? String(turn.text ?? "") : String(turn);
      const line = item("turn", [span("speaker", speaker), span("text", text)]);
      line.dataset.speaker = speaker;
      list.append(line);
    }
    column.append(title, list);
    columns.append(column);
  }
  wrap.append(columns);
  return wrap;
}

/** A task's pictures (`data.images`: [{asset, caption, alt}]) as figures; only the run's own assets load. */
function figures(images, assetBase) {
  if (!Array.isArray(images) || !assetBase) return [];
  return images.filter((image) => image && typeof image.asset === "string").map((image) => {
    const figure = document.createElement("figure");
    figure.className = "task-image";
    const img = document.createElement("img");
    img.src = assetBase + image.asset.split("/").map(encodeURIComponent).join("/");
    img.alt = typeof image.alt === "string" ? image.alt : "";
    figure.append(img);
    if (typeof image.caption === "string" && image.caption) {
      const caption = document.createElement("figcaption");
      caption.textContent = image.caption;
      figure.append(caption);
    }
    return figure;
  });
}

export class View {
  constructor() {
    this.body = document.body;
    this.log = byId("chat-log");
    this.typingTimer = null;
    this.countdownTimer = null;
    this.partnerTimer = null;
    this.inline = null; // {box, send}: a widget shown under a chat message
  }

  // ---- page-level ------------------------------------------------------------------------------

  setPhase(phase) {
    this.body.dataset.phase = phase;
  }

  setTaskInfo(info) {
    this.assetBase = `/task/${encodeURIComponent(info.run_id)}/assets/`;
    byId("task-title").textContent = info.title || "Task";
    document.title = info.title || "Parley task";
    byId("task-description").textContent = info.description || "";
    const reward = Number(info.reward);
    byId("task-reward").textContent = Number.isFinite(reward) ? `Reward: $${reward.toFixed(2)}` : "";
  }

  /** The banner: `tone` is one of info | live | final | submit | problem. */
  setStatus(text, tone = "info") {
    byId("status-text").textContent = text;
    byId("status-banner").dataset.tone = tone;
  }

  setAgentState(state) {
    this.body.dataset.state = state;
  }

  setConnection(status, detail = "") {
    this.body.dataset.connection = status;
    const labels = {
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: "Reconnecting…",
      offline: "Offline",
    };
    const node = byId("connection-indicator");
    node.textContent = labels[status] ?? status;
    node.title = detail;
  }

  setSynced(synced) {
    this.body.dataset.synced = String(synced);
  }

  showRetry(label, onClick) {
    const button = byId("retry-button");
    button.textContent = label;
    button.hidden = false;
    button.disabled = false;
    button.onclick = () => {
      button.disabled = true;
      onClick();
    };
  }

  hideRetry() {
    byId("retry-button").hidden = true;
  }

  setSubmit({ visible, busy = false, onClick }) {
    const button = byId("submit-button");
    button.hidden = !visible;
    button.disabled = busy;
    button.textContent = busy ? "Submitting…" : "Submit HIT";
    if (onClick) button.onclick = onClick;
  }

  showError(message) {
    const node = byId("error-text");
    node.textContent = message;
    node.hidden = !message;
  }

  // ---- task pane -------------------------------------------------------------------------------

  setContext(event) {
    const pane = byId("context-pane");
    const target = byId("context-text");
    target.replaceChildren();
    const pair = pairOf(event.data);
    this.body.dataset.context = pair ? "pair" : "text";
    if (pair) {
      target.append(pairView(event.data, pair));
    } else if (event.text) {
      target.textContent = event.text;
    } else if (event.data && typeof event.data === "object") {
      // No text: show the structured context's simple fields as a definition list.
      const list = document.createElement("dl");
      for (const [key, value] of Object.entries(event.data)) {
        if (value === null || typeof value === "object") continue;
        const term = document.createElement("dt");
        term.textContent = key;
        const detail = document.createElement("dd");
        detail.textContent = String(value);
        list.append(term, detail);
      }
      target.append(list);
    }
    target.append(...figures(event.data?.images, this.assetBase));
    target.dataset.seq = String(event.seq);
    pane.hidden = false;
  }

  // ---- chat ------------------------------------------------------------------------------------

  #nearBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < NEAR_BOTTOM_PX;
  }

  #append(node) {
    const nearBottom = this.#nearBottom();
    this.log.append(node);
    if (nearBottom) node.scrollIntoView({ block: "end" });
  }

  #bubble(sender, text, mine) {
    const body = span("text", text);
    return item(`message ${mine ? "mine" : "theirs"}`, [span("sender", sender), body, span("tick", "")]);
  }

  /** A message from the stream (someone else's, or a replayed own message with no local bubble). */
  addMessage(event) {
    if (event.message_id && this.log.querySelector(`[data-message-id="${CSS.escape(event.message_id)}"]`)) {
      return; // already shown (belt and braces: the connection already drops duplicate seqs)
    }
    const node = this.#bubble(event.mine ? "You" : event.sender, event.text, event.mine);
    node.append(...figures(event.data?.images, this.assetBase));
    node.dataset.seq = String(event.seq);
    node.dataset.messageId = event.message_id ?? "";
    if (event.mine) {
      node.dataset.status = "stored";
      if (event.client_id) node.dataset.clientId = event.client_id;
    }
    this.#append(node);
  }

  /** Our own message, shown at once; the stream's copy later upgrades it in place. */
  addPending(clientId, text) {
    const node = this.#bubble("You", text, true);
    node.dataset.clientId = clientId;
    node.dataset.status = "pending";
    node.querySelector(".tick").textContent = "sending…";
    this.#append(node);
  }

  #pending(clientId) {
    return clientId ? this.log.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`) : null;
  }

  markStored(clientId, messageId) {
    const node = this.#pending(clientId);
    if (!node || node.dataset.status === "failed") return;
    node.dataset.status = "stored";
    if (messageId && node.classList.contains("message")) node.dataset.messageId = messageId;
    const tick = node.querySelector(".tick");
    if (tick) tick.textContent = "✓ sent";
  }

  markFailed(clientId, reason) {
    const node = this.#pending(clientId);
    if (!node) return;
    node.dataset.status = "failed";
    const tick = node.querySelector(".tick") ?? node.querySelector(".annotation-value");
    tick.textContent = `not sent: ${reason}`;
  }

  /** The stream's copy of our own message: upgrade the local bubble, or add it (after a reload). */
  confirmOwn(event) {
    const node = this.#pending(event.client_id);
    if (!node) {
      this.addMessage(event);
      return;
    }
    node.dataset.seq = String(event.seq);
    node.querySelector(".text").textContent = event.text;
    this.markStored(event.client_id, event.message_id);
  }

  /** The qualification is over: fold its chat away under a summary and say how it ended, so the real
   *  chat starts on its own. Runs at the same point of the stream live and on a replay. */
  closeQualification(resultText) {
    const items = [...this.log.children].filter((node) => !node.matches("details.past-step"));
    const past = document.createElement("details");
    past.className = "past-step";
    const summary = document.createElement("summary");
    summary.textContent = `Qualification: ${items.filter((node) => node.matches(".message")).length} messages (passed)`;
    const list = document.createElement("ol");
    list.append(...items);
    past.append(summary, list);
    const result = item("step-result", [span("text", resultText)]);
    this.log.append(past, result);
    this.log.scrollTop = this.log.scrollHeight;
  }

  addNotice(event) {
    const node = item("notice", [span("text", event.text)]);
    node.dataset.seq = String(event.seq);
    this.#append(node);
  }

  /** A partner's turn, counted down; or a partner's page gone / back. Hidden by clearPartnerStatus. */
  showPartnerTurn(sender, timeoutS) {
    this.#partnerStatus(`${sender}'s turn`, "turn", timeoutS);
  }

  showPresence(sender, present, graceS) {
    const text = present
      ? `${sender} is back.`
      : `${sender}'s page closed or lost its connection. They have ${Math.round(graceS)} s to come back; `
        + "if they do not, the task ends here and you can submit.";
    this.#partnerStatus(text, present ? "back" : "away", null);
  }

  clearPartnerStatus() {
    clearInterval(this.partnerTimer);
    const node = byId("partner-status");
    node.hidden = true;
    node.textContent = "";
    delete node.dataset.kind;
  }

  /** A partner's turn is over (ours opened, or their message came): its countdown goes. A partner's page
   * gone or back stays: it says nothing about turns, and a turn frame may arrive just after it. */
  clearPartnerTurn() {
    if (byId("partner-status").dataset.kind === "turn") this.clearPartnerStatus();
  }

  #partnerStatus(text, kind, timeoutS) {
    this.clearPartnerStatus();
    const node = byId("partner-status");
    node.dataset.kind = kind;
    node.hidden = false;
    if (typeof timeoutS !== "number" || timeoutS <= 0) {
      node.textContent = text;
      return;
    }
    const deadline = Date.now() + timeoutS * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      node.textContent = `${text} · ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
      if (left === 0) clearInterval(this.partnerTimer);
    };
    tick();
    this.partnerTimer = setInterval(tick, 1000);
  }

  setTyping(sender, active) {
    const node = byId("typing-indicator");
    clearTimeout(this.typingTimer);
    node.hidden = !active;
    node.textContent = active ? `${sender} is typing…` : "";
    // The "stopped typing" frame is ephemeral and may be lost with a socket: fade out anyway.
    if (active) this.typingTimer = setTimeout(() => this.setTyping(sender, false), TYPING_FADE_MS);
  }

  // ---- composer --------------------------------------------------------------------------------

  /** Show a turn's widget: under the chat message it is about (`widget.about`) when that message is in
   *  the log, with its own Send button; otherwise in the composer. */
  mountWidget(widget, { onSend } = {}) {
    const nearBottom = this.#nearBottom();
    this.inline?.box.remove();
    this.inline = null;
    const anchor = widget.about ? this.#messageNode(widget.about) : null;
    byId("send-button").hidden = Boolean(anchor); // one send control at a time: the one by the boxes
    this.body.dataset.step = !anchor && STEP_KINDS.has(widget.kind) ? "form" : "";
    if (!anchor) {
      byId("widget").replaceChildren(widget.element);
      if (this.body.dataset.step) {
        // A survey is a step of its own under the transcript: the pane scrolls, the chat keeps its height.
        byId("composer").scrollIntoView({ block: "nearest" });
        return;
      }
      if (nearBottom) this.log.scrollTop = this.log.scrollHeight; // a taller widget must not hide the latest line
      return;
    }
    const send = document.createElement("button");
    send.type = "button";
    send.className = "primary annotation-send";
    send.textContent = "Send labels";
    send.disabled = true;
    send.addEventListener("click", () => onSend?.());
    const box = document.createElement("div");
    box.className = "annotation";
    box.dataset.annotates = widget.about;
    box.append(widget.element, send);
    anchor.querySelector(".annotation, .annotation-result")?.remove();
    anchor.append(box);
    this.inline = { box, send };
    const hint = span("widget-hint", "Tick the labels under the highlighted message above, then press Send labels there.");
    byId("widget").replaceChildren(hint);
    box.scrollIntoView({ block: "nearest" });
  }

  /** The labels given for a chat message, kept visible under it (`status`: pending, then stored). */
  showAnnotation(messageId, text, status, clientId = "") {
    const anchor = this.#messageNode(messageId);
    if (!anchor) return;
    anchor.querySelector(".annotation, .annotation-result")?.remove();
    const result = document.createElement("div");
    result.className = "annotation-result";
    result.dataset.annotates = messageId;
    result.dataset.status = status;
    if (clientId) result.dataset.clientId = clientId;
    result.append(span("annotation-label", "Your labels: "), span("annotation-value", text));
    anchor.append(result);
  }

  #messageNode(messageId) {
    return this.log.querySelector(`.message[data-message-id="${CSS.escape(messageId)}"]`);
  }

  /** data-turn: open; held (open, but the socket dropped and the server has not sent it again); closed. */
  setTurn({ open, prompt, held = false }) {
    this.body.dataset.turn = held ? "held" : open ? "open" : "closed";
    byId("turn-prompt").textContent = prompt;
  }

  setCanSend(enabled) {
    byId("send-button").disabled = !enabled;
    if (this.inline) this.inline.send.disabled = !enabled;
  }

  setCounter(counter) {
    const node = byId("char-counter");
    if (!counter) {
      node.textContent = "";
      return;
    }
    node.textContent = `${counter.used} / ${counter.limit}`;
    node.dataset.over = String(counter.used > counter.limit);
  }

  /** Count down `seconds` from now; `onExpire` runs once at zero. */
  startCountdown(seconds, onExpire) {
    this.stopCountdown();
    const node = byId("turn-countdown");
    const deadline = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      node.textContent = left > 0
        ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`
        : "Time is up";
      node.dataset.urgent = String(left <= 30);
      if (left === 0) {
        this.stopCountdown({ keepText: true });
        onExpire?.();
      }
    };
    node.hidden = false;
    tick();
    this.countdownTimer = setInterval(tick, 1000);
  }

  stopCountdown({ keepText = false } = {}) {
    clearInterval(this.countdownTimer);
    this.countdownTimer = null;
    if (!keepText) byId("turn-countdown").hidden = true;
  }
}
