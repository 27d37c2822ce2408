// The page after externalSubmit: tells the worker-site page that framed it what happened.
const { status, assignmentId, message } = document.body.dataset;
if (window.parent !== window) {
  window.parent.postMessage(
    { source: "parley-sandbox", type: status, assignmentId, message },
    window.location.origin,
  );
}
