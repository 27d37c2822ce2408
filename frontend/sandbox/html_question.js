// Injected at the end of an HTMLQuestion page, as MTurk does: the page's form posts to
// turkSubmitTo + "/mturk/externalSubmit" and carries the assignmentId in a hidden field.
(() => {
  const params = new URLSearchParams(window.location.search);
  const assignmentId = params.get("assignmentId") || "ASSIGNMENT_ID_NOT_AVAILABLE";
  const submitTo = params.get("turkSubmitTo");
  const preview = assignmentId === "ASSIGNMENT_ID_NOT_AVAILABLE";
  const forms = Array.from(document.forms);
  const marked = forms.filter((form) => form.id === "mturk_form" || form.name === "mturk_form"
    || (form.getAttribute("action") || "").includes("externalSubmit"));
  for (const form of marked.length ? marked : forms) {
    if (submitTo) form.action = `${submitTo}/mturk/externalSubmit`;
    form.method = "post";
    let field = form.querySelector("input[name='assignmentId']");
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "assignmentId";
      form.prepend(field);
    }
    field.value = assignmentId;
    if (preview) {
      for (const button of form.querySelectorAll("button, input[type='submit']")) button.disabled = true;
    }
  }
})();
