// The query MTurk puts on an ExternalQuestion URL, or Prolific on a study URL, read once.

const PREVIEW_ASSIGNMENT = "ASSIGNMENT_ID_NOT_AVAILABLE";

/** Read run id (from /task/{run_id}) and MTurk's (or Prolific's) parameters from a location. */
export function readParams(location) {
  const query = new URLSearchParams(location.search);
  const segments = location.pathname.split("/").filter(Boolean);
  const at = segments.indexOf("task");
  const runId = at >= 0 && segments[at + 1] ? decodeURIComponent(segments[at + 1]) : "";
  const prolificPid = query.get("PROLIFIC_PID") ?? "";
  if (prolificPid) {
    // Prolific: the participant, the study and the session (one submission) map onto worker, HIT and
    // assignment; there is no preview (a participant who opens the study has taken a place).
    return {
      runId,
      provider: "prolific",
      assignmentId: query.get("SESSION_ID") ?? "",
      hitId: query.get("STUDY_ID") ?? "",
      workerId: prolificPid,
      turkSubmitTo: "",
      preview: false,
    };
  }
  const assignmentId = query.get("assignmentId") ?? "";
  return {
    provider: "mturk",
    runId,
    assignmentId,
    hitId: query.get("hitId") ?? "",
    workerId: query.get("workerId") ?? "",
    turkSubmitTo: query.get("turkSubmitTo") ?? "",
    preview: assignmentId === "" || assignmentId === PREVIEW_ASSIGNMENT,
  };
}
