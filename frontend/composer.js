// The input area: whose turn it is, which widget to show, sending an answer, and giving the turn back
// when the server refuses the answer. Input is enabled iff a turn is open and the agent is live.

import { newClientId } from "./connection.js";
import { answerOf, createWidget } from "./widgets.js";

const IDLE_PLACEHOLDER = "Please wait for your turn…";
const encoder = new TextEncoder();

// Parley stores no NUL and no unpaired surrogate; the server refuses a message holding one (`bad_text`).
// Both are invisible in an input, so the page drops them from what it sends: a pasted control character
// cannot leave the worker unable to send.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function storable(value) {
  if (typeof value === "string") return value.replace(UNSTORABLE, "");
  if (Array.isArray(value)) return value.map(storable);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [storable(key), storable(item)]));
  }
  return value;
}

export class Composer {
  /** send(frame) queues a message frame; loadFragment(role) fetches a task's own fragment for a role. */
  constructor({ view, maxChars, maxFrameBytes, send, loadFragment = null, typing = null }) {
    this.typing = typing; // {input(), stop()}: tells the partners the worker is typing
    this.view = view;
    this.loadFragment = loadFragment;
    this.maxChars = maxChars;
    this.maxFrameBytes = maxFrameBytes;
    this.send = send;
    this.live = false;
    this.turn = null; // the open turn: {id, prompt, widget, deadline}
    this.lastTurnId = null;
    this.consumed = new Map(); // client_id -> {turn, text}: what to restore if the server refuses it
    this.draft = null; // the text of an answer the server refused as out of turn: put in the next text turn
    this.widget = null;
    document.getElementById("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendAnswer();
    });
    this.idle();
  }

  setLive(live) {
    const changed = live !== this.live;
    this.live = live;
    if ((!live && this.turn) || (changed && !this.turn)) this.idle();
    else this.#refresh();
  }

  /** A turn frame: sent when the turn opens and again after every reconnect while it is open. */
  openTurn(event) {
    const timeout = typeof event.timeout_s === "number" && event.timeout_s > 0 ? event.timeout_s : null;
    const id = event.turn_id ?? event.seq; // streams stored before turns were live carry them as events
    const deadline = timeout === null ? null : Date.now() + timeout * 1000;
    const prompt = event.prompt || "";
    const widget = event.widget || { kind: "text" };
    if (this.turn && (this.turn.id === id || sameTurn(this.turn, prompt, widget))) {
      // The same turn again (after a reconnect), or the world opened it anew: after a server restart the
      // replayed world asks the same question under a new id. Keep what the worker has typed.
      this.turn.id = this.lastTurnId = id;
      this.turn.deadline = deadline;
      this.turn.held = false;
      this.view.setTurn({ open: true, prompt });
      if (deadline !== null) this.view.startCountdown(timeout);
      this.#refresh();
      return;
    }
    for (const entry of this.consumed.values()) {
      if (entry.turn && entry.turn.id === id) return; // answered already: the answer is being resent
    }
    this.lastTurnId = id;
    this.view.clearPartnerTurn(); // it is our turn now
    this.#show({ id, prompt, widget, deadline, held: false });
    if (this.draft !== null) this.#fillEmptyText(this.draft);
    this.draft = null;
  }

  /** The socket dropped. An open turn is held: what the worker typed stays and may still be edited, but
   * sending waits until the server sends the turn again, right after the reconnect, or, after a server
   * restart, when the replayed world reaches it. An answer sent in between would be refused. */
  hold() {
    if (!this.turn || this.turn.held) return;
    this.turn.held = true;
    this.view.setTurn({ open: false, held: true, prompt: this.turn.prompt });
    this.#refresh();
  }

  /** Our own message is in the stream: the turn it answered is over. */
  onOwnMessage(event) {
    if (event.client_id) this.consumed.delete(event.client_id);
    if (this.turn) this.idle();
  }

  /** The server refused one of our messages: give its turn back unless a newer one came or it was not ours. */
  restore(clientId, code) {
    const entry = this.consumed.get(clientId);
    this.consumed.delete(clientId);
    if (!entry) return;
    if (code === "not_your_turn" && entry.text !== null) {
      // Sent into a turn the server no longer had open (it ran out, or a restart took it): the text is not
      // lost but put in the open text turn, if still empty, or else the next one.
      if (this.turn) this.#fillEmptyText(entry.text);
      else this.draft = entry.text;
      return;
    }
    if (this.turn || code === "not_your_turn" || entry.turn.id !== this.lastTurnId) return;
    this.#show(entry.turn);
    if (entry.text !== null && this.widget.setValue) this.widget.setValue(entry.text);
  }

  /** No turn: a disabled text box with a hint (by default: wait, while live; nothing once over). */
  idle(placeholder = this.live ? IDLE_PLACEHOLDER : "") {
    this.turn = null;
    this.typing?.stop();
    this.view.stopCountdown();
    this.#mount({ kind: "text", placeholder });
    this.view.setTurn({ open: false, prompt: "" });
    this.#refresh();
  }

  sendAnswer() {
    if (!this.#canSend()) return;
    const answer = storable(answerOf(this.widget));
    const frame = { type: "message", client_id: newClientId(), text: answer.text, data: answer.data };
    if (encoder.encode(JSON.stringify(frame)).length > this.maxFrameBytes) {
      this.view.showError("This answer is too long to send. Please shorten it.");
      return;
    }
    this.view.showError("");
    const about = this.widget.about;
    // Labels about a message are shown once, under that message where the boxes were; anything else is a bubble.
    if (!about) this.view.addPending(frame.client_id, answer.text);
    this.consumed.set(frame.client_id, {
      turn: this.turn,
      text: this.widget.kind === "text" ? answer.text : null,
    });
    this.idle();
    if (about) this.view.showAnnotation(about, answer.text, "pending", frame.client_id);
    this.send(frame);
  }

  #show(turn) {
    this.turn = turn;
    this.#mount(turn.widget);
    this.view.setTurn({ open: true, prompt: turn.prompt });
    if (turn.deadline !== null) {
      this.view.startCountdown(Math.max(0, (turn.deadline - Date.now()) / 1000));
    } else {
      this.view.stopCountdown();
    }
    this.#refresh();
    if (this.#enabled() && document.hasFocus()) this.widget.focus();
  }

  #mount(spec) {
    this.widget = createWidget(spec, {
      maxChars: this.maxChars,
      id: "chat-input",
      onChange: () => {
        if (this.#enabled() && this.widget?.kind === "text") this.typing?.input();
        this.#refresh();
      },
      onEnter: () => this.sendAnswer(),
      loadFragment: this.loadFragment,
    });
    // A widget about a chat message (annotation checkboxes) sits under that message when it is shown.
    this.view.mountWidget(this.widget, { onSend: () => this.sendAnswer() });
  }

  #enabled() {
    return this.live && this.turn !== null;
  }

  /** Put `text` in the open turn's input if it is a text box the worker has left empty. */
  #fillEmptyText(text) {
    if (this.widget.kind === "text" && this.widget.setValue && !this.widget.value()) this.widget.setValue(text);
  }

  #canSend() {
    return this.#enabled() && !this.turn.held && this.widget.isValid();
  }

  #refresh() {
    const enabled = this.#enabled();
    this.widget.setEnabled(enabled);
    this.view.setCanSend(this.#canSend());
    this.view.setCounter(this.widget.counter && enabled ? this.widget.counter() : null);
  }
}

/** Whether a turn frame asks what the open turn asks: the same prompt and the same widget. */
function sameTurn(turn, prompt, widget) {
  return turn.prompt === prompt && JSON.stringify(turn.widget) === JSON.stringify(widget);
}
