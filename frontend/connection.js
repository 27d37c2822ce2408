// One websocket to the agent's channel: hello/resume, heartbeat, reconnect with backoff, and the
// outbox of sent-but-unacked messages. Sequenced events reach `onEvent` exactly once, in order.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10_000];
const ATTEMPTS_BEFORE_OFFLINE = 4;
const DRAIN_WAIT_MS = 1000;

// Closes that must not be retried: the page shows the reason and stops. The server says which they are,
// with their words, in TaskInfo.close_codes (server/close_codes.py); these are what a page uses until then.
const FINAL_CLOSES = {
  4400: "The page and the server do not understand each other. Please reload this page.",
  4401: "Your session is no longer valid. Please reload this page.",
  4403: "This page is not allowed to join this conversation.",
  4409: "This task was opened in another tab or window. Please continue there; this page has stopped.",
};
const CLOSE_TOKEN_INVALID = 4401;

/** {code: text} of the final closes named in TaskInfo.close_codes, or the page's own table without them. */
export function finalCloses(closeCodes) {
  const named = Object.values(closeCodes ?? {}).filter((c) => c && typeof c.code === "number");
  if (!named.length) return { ...FINAL_CLOSES };
  return Object.fromEntries(named.filter((c) => c.final).map((c) => [c.code, c.text || FINAL_CLOSES[c.code] || ""]));
}

/** The number TaskInfo.close_codes gives `name`, or `fallback`. */
export function closeCode(closeCodes, name, fallback) {
  const found = closeCodes?.[name]?.code;
  return typeof found === "number" ? found : fallback;
}
const CLOSE_LOCAL_DROP = 4000; // our own close of a socket we consider dead (allowed range 4000-4999)

/** A client id the server accepts (^[A-Za-z0-9_.:-]{1,64}$), unique per message. */
export function newClientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `c-${Date.now().toString(36)}-${hex}`;
}

function socketUrl(wsPath) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${wsPath}`;
}

export class Connection {
  /**
   * handlers: onEvent(frame) for sequenced events; onWelcome, onAck, onError, onTyping, onPartnerTurn,
   * onPresence(frame);
   * onStatus(status, detail) with status "connecting" | "connected" | "reconnecting" | "offline";
   * onStopped({code, message}); renewToken() -> Promise<{token, ws_path} | null> (used once on 4401).
   */
  constructor({ token, wsPath, protocolVersion = 1, heartbeatMs = 20_000, closeCodes = null, handlers }) {
    this.finalCloses = finalCloses(closeCodes);
    this.tokenInvalid = closeCode(closeCodes, "token_invalid", CLOSE_TOKEN_INVALID);
    this.token = token;
    this.wsPath = wsPath;
    this.protocolVersion = protocolVersion;
    this.heartbeatMs = heartbeatMs;
    this.handlers = handlers;
    this.lastSeq = 0;
    this.outbox = new Map(); // client_id -> frame, in send order, until acked
    this.ws = null;
    this.welcomed = false;
    this.attempt = 0;
    this.renewedSinceWelcome = false;
    this.stopped = false;
    this.timers = { retry: null, ping: null, watchdog: null };
    this.lastFrameAt = 0;
    this.onOnline = () => this.reconnectNow();
  }

  start() {
    window.addEventListener("online", this.onOnline);
    this.#open();
  }

  /** Queue a client message; it is (re)sent on every new socket until acked. */
  send(frame) {
    this.outbox.set(frame.client_id, frame);
    if (this.welcomed) this.#write(frame);
  }

  /** The server has stored (ack) or refused (error) this client message: stop resending it. */
  settle(clientId) {
    this.outbox.delete(clientId);
  }

  /** Best effort, unsequenced and not retried (e.g. submit). Resolves once the bytes left or after 1 s. */
  async sendOnce(frame) {
    if (!this.welcomed || !this.ws) return false;
    this.#write(frame);
    const ws = this.ws;
    const deadline = Date.now() + DRAIN_WAIT_MS;
    while (ws.bufferedAmount > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return ws.bufferedAmount === 0;
  }

  /** Live and disposable (typing): written now if a socket is up, else dropped. */
  sendLive(frame) {
    if (this.welcomed) this.#write(frame);
  }

  /** Send every unacked message again (same client ids: the server stores each once). */
  resendPending() {
    if (!this.welcomed) return; // a new socket resends them after its welcome anyway
    for (const pending of this.outbox.values()) this.#write(pending);
  }

  reconnectNow() {
    if (this.stopped || this.welcomed) return;
    clearTimeout(this.timers.retry);
    this.#drop("reconnect now", { immediately: true });
  }

  stop(code, message) {
    if (this.stopped) return;
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    const ws = this.ws;
    this.#detach();
    if (ws) ws.close(1000, "page stopped");
    this.handlers.onStatus?.("offline", message);
    this.handlers.onStopped?.({ code, message });
  }

  #open() {
    if (this.stopped) return;
    this.#detach();
    const ws = new WebSocket(socketUrl(this.wsPath));
    this.ws = ws;
    this.lastFrameAt = Date.now();
    this.handlers.onStatus?.(this.attempt === 0 ? "connecting" : this.#troubleStatus());
    ws.onopen = () => {
      if (this.ws !== ws) return;
      ws.send(JSON.stringify({
        type: "hello", v: this.protocolVersion, token: this.token, last_seq: this.lastSeq,
      }));
    };
    ws.onmessage = (event) => {
      if (this.ws === ws) this.#onFrame(event.data);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.#onClose(event.code, event.reason);
    };
    ws.onerror = () => {}; // a close event always follows
    this.#startTimers();
  }

  #onFrame(raw) {
    this.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return; // not ours to interpret; the server never sends non-JSON
    }
    if (!frame || typeof frame !== "object") return;
    if (typeof frame.seq === "number") {
      this.#onSequenced(frame);
      return;
    }
    switch (frame.type) {
      case "welcome":
        this.welcomed = true;
        this.attempt = 0;
        this.renewedSinceWelcome = false;
        if (typeof frame.heartbeat_s === "number" && frame.heartbeat_s > 0) {
          this.heartbeatMs = frame.heartbeat_s * 1000;
          this.#startTimers();
        }
        this.handlers.onStatus?.("connected");
        this.handlers.onWelcome?.(frame);
        for (const pending of this.outbox.values()) this.#write(pending);
        break;
      case "ack":
        this.settle(frame.client_id);
        this.handlers.onAck?.(frame);
        break;
      case "error":
        if (frame.client_id) this.settle(frame.client_id);
        this.handlers.onError?.(frame);
        break;
      case "turn":
        this.handlers.onTurn?.(frame);
        break;
      case "typing":
        this.handlers.onTyping?.(frame);
        break;
      case "partner_turn":
        this.handlers.onPartnerTurn?.(frame);
        break;
      case "presence":
        this.handlers.onPresence?.(frame);
        break;
      default:
        break; // pong and future unsequenced frames only prove the socket is alive
    }
  }

  #onSequenced(frame) {
    if (frame.seq <= this.lastSeq) return; // a duplicate from a replay overlap
    if (frame.seq > this.lastSeq + 1) {
      // A gap: never render out of order. Resume from what we have; the server replays the rest.
      this.#drop(`gap: expected seq ${this.lastSeq + 1}, got ${frame.seq}`, { immediately: true });
      return;
    }
    this.lastSeq = frame.seq;
    this.handlers.onEvent?.(frame);
  }

  async #onClose(code, reason) {
    this.#detach();
    if (this.stopped) return;
    if (code === this.tokenInvalid && !this.renewedSinceWelcome && this.handlers.renewToken) {
      this.renewedSinceWelcome = true;
      this.handlers.onStatus?.("reconnecting");
      const renewed = await this.handlers.renewToken().catch(() => null);
      if (this.stopped) return;
      if (renewed) {
        this.token = renewed.token;
        this.wsPath = renewed.ws_path ?? this.wsPath;
        this.#open();
        return;
      }
    }
    if (code in this.finalCloses) {
      this.stop(code, this.finalCloses[code] || reason);
      return;
    }
    this.#scheduleReconnect();
  }

  /** Close a socket we no longer trust (silent, gap, forced retry) and open a new one. */
  #drop(why, { immediately = false } = {}) {
    const ws = this.ws;
    this.#detach();
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(CLOSE_LOCAL_DROP, why.slice(0, 120));
      } catch {
        // closing a socket that is still connecting can throw in some browsers; it is gone either way
      }
    }
    if (immediately) this.#open();
    else this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (this.stopped) return;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4)); // jitter: no thundering herd
    this.handlers.onStatus?.(this.#troubleStatus(), `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this.#open(), delay);
  }

  #troubleStatus() {
    return navigator.onLine === false || this.attempt > ATTEMPTS_BEFORE_OFFLINE ? "offline" : "reconnecting";
  }

  #startTimers() {
    clearInterval(this.timers.ping);
    clearInterval(this.timers.watchdog);
    this.timers.ping = setInterval(() => {
      if (this.welcomed) this.#write({ type: "ping" });
    }, this.heartbeatMs);
    this.timers.watchdog = setInterval(() => {
      if (Date.now() - this.lastFrameAt > 3 * this.heartbeatMs) this.#drop("no frame for 3 heartbeats");
    }, Math.min(1000, this.heartbeatMs / 4));
  }

  /** Forget the current socket: its late events are ignored from now on. */
  #detach() {
    this.ws = null;
    this.welcomed = false;
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.ping);
    clearInterval(this.timers.watchdog);
  }

  #write(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }
}
