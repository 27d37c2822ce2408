// Live snapshots of one run over a websocket, reconnecting with backoff. Calls onSnapshot(snapshot) and
// onStatus("live" | "connecting" | "offline" | "unauthorized").

const BACKOFF_MS = [500, 1000, 2000, 5000, 10000];

export function watchRun(runId, { onSnapshot, onStatus }) {
  let socket = null;
  let attempt = 0;
  let stopped = false;
  let timer = null;

  function open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    onStatus("connecting");
    socket = new WebSocket(`${scheme}//${location.host}/admin/live/${encodeURIComponent(runId)}`);
    socket.addEventListener("message", (event) => {
      attempt = 0;
      onStatus("live");
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "snapshot") onSnapshot(frame);
    });
    socket.addEventListener("close", (event) => {
      socket = null;
      if (stopped) return;
      if (event.code === 4401 || event.code === 4403) {
        onStatus("unauthorized");
        return;
      }
      onStatus("offline");
      const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt += 1;
      timer = setTimeout(open, delay);
    });
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (socket) socket.close(1000, "switched run");
  };
}
