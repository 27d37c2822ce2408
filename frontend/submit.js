// Handing the assignment back to MTurk: POST a real form so the iframe navigates as MTurk expects.

/** turkSubmitTo + "/mturk/externalSubmit", or null when turkSubmitTo is empty or not http(s). */
export function externalSubmitUrl(turkSubmitTo) {
  if (!turkSubmitTo) return null;
  let parsed;
  try {
    parsed = new URL(turkSubmitTo);
  } catch {
    return null;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
  return `${turkSubmitTo.replace(/\/+$/, "")}/mturk/externalSubmit`;
}

export function postExternalSubmit(action, fields) {
  const form = document.createElement("form");
  form.method = "POST";
  form.action = action;
  form.hidden = true;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}
