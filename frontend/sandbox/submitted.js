// The page after externalSubmit: tells the worker-site page that framed it what happened.
// A classic script, not a module: in a sandboxed (opaque-origin) frame a module would need CORS to load.
// Any target origin: this page may be framed by this site only (frame-ancestors 'self').
(() => {
  const { status, assignmentId, message } = document.body.dataset;
  if (window.parent !== window) {
    window.parent.postMessage({ source: "parley-sandbox", type: status, assignmentId, message }, "*");
  }
})();
