// The query MTurk puts on an ExternalQuestion URL, read once.

const PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE";

/** Read run id (from /task/{run_id}) and MTurk's parameters from a location. */
export function readParams(location) {
  const query = new URLSearchParams(location.search);
  const segments = location.pathname.split("/").filter(Boolean);
  const at = segments.indexOf("task");
  const runId = at >= 0 && segments[at + 1] ? decodeURIComponent(segments[at + 1]) : "";
  const assignmentId = query.get("assignmentId") ?? "";
  return {
    runId,
    assignmentId,
    hitId: query.get("hitId") ?? "",
    workerId: query.get("workerId") ?? "",
    turkSubmitTo: query.get("turkSubmitTo") ?? "",
    preview: assignmentId === "" || assignmentId === PREVIEW_ASSIGNMENT,
  };
}
