// A task's own page fragment for a role (Task(ui={role: "fragment.html"})), used as a turn's input.
// Fragments are HTML and CSS only: the server refuses scripts and inline handlers when the task is built,
// and this module keeps only an allowlist of elements and attributes before anything is mounted. The
// fragment's named fields become the answer {"form": {name: value}}, sent like every other widget's.

const REQUEST_TIMEOUT_MS = 10_000;
const RETRY_DELAYS_MS = [500, 1000, 2000];
const ID_PREFIX = "ui-";

const KEEP = new Set([
  "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "details", "div", "dl", "dt", "em",
  "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
  "hr", "i", "img", "input", "label", "legend", "li", "ol", "optgroup", "option", "output", "p", "pre",
  "q", "s", "section", "select", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody",
  "td", "textarea", "tfoot", "th", "thead", "tr", "u", "ul",
]);
// Dropped with everything inside them; any other unknown element is unwrapped (its content kept).
const DROP = new Set([
  "script", "style", "iframe", "frame", "object", "embed", "template", "noscript", "link", "meta", "base",
  "svg", "math", "button", "dialog", "audio", "video", "canvas",
]);
const ATTRIBUTES = new Set([
  "class", "id", "for", "name", "type", "value", "checked", "selected", "required", "min", "max", "step",
  "minlength", "maxlength", "pattern", "placeholder", "rows", "cols", "multiple", "title", "alt", "src",
  "href", "colspan", "rowspan", "lang", "dir", "open", "role", "size", "label",
]);
const INPUT_TYPES = new Set([
  "text", "number", "range", "radio", "checkbox", "email", "url", "date", "time", "hidden", "search", "tel",
]);

const cache = new Map(); // role -> Promise<{template, stylesheet}>

async function fetchOnce(url) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(url, { signal: abort.signal, cache: "no-store", credentials: "same-origin" });
    const body = await response.json().catch(() => null);
    return { status: response.status, body };
  } finally {
    clearTimeout(timer);
  }
}

async function fetchFragment(runId, role) {
  const url = `/task/${encodeURIComponent(runId)}/ui/${encodeURIComponent(role)}`;
  let problem = "the server could not be reached";
  for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt += 1) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt - 1]));
    let result;
    try {
      result = await fetchOnce(url);
    } catch {
      continue;
    }
    if (result.status === 200 && typeof result.body?.html === "string") return result.body;
    problem = result.body?.error?.message || `the server answered ${result.status}`;
    if (result.status < 500 && result.status !== 429) break; // a definite answer: retrying will not help
  }
  throw new Error(problem);
}

/** The role's fragment, fetched once per page and kept sanitized as a template. */
export function loadFragment(runId, role) {
  if (!cache.has(role)) {
    const loading = fetchFragment(runId, role).then((body) => ({
      template: sanitize(body.html),
      stylesheet: typeof body.stylesheet === "string" ? body.stylesheet : null,
    }));
    loading.catch(() => cache.delete(role)); // a failure may be retried by the next turn
    cache.set(role, loading);
  }
  return cache.get(role);
}

function safeUrl(value, { images }) {
  const url = value.trim();
  if (images) return /^data:image\//i.test(url) || /^\/(?!\/)/.test(url) ? url : null;
  return /^https:\/\//i.test(url) ? url : null;
}

function cleanAttributes(node) {
  const tag = node.localName;
  for (const { name, value } of [...node.attributes]) {
    const keep = ATTRIBUTES.has(name) || name.startsWith("aria-") || name.startsWith("data-");
    if (!keep || name === "data-widget-kind") node.removeAttribute(name);
    else if (name === "id" || name === "for") node.setAttribute(name, ID_PREFIX + value);
    else if (name === "src" && (tag !== "img" || !safeUrl(value, { images: true }))) node.removeAttribute(name);
    else if (name === "href" && (tag !== "a" || !safeUrl(value, { images: false }))) node.removeAttribute(name);
  }
  if (tag === "a" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
}

function cleanTree(parent) {
  for (const child of [...parent.children]) {
    const tag = child.localName;
    if (DROP.has(tag) || (tag === "input" && !INPUT_TYPES.has((child.getAttribute("type") || "text").toLowerCase()))) {
      child.remove();
      continue;
    }
    if (!KEEP.has(tag)) {
      cleanTree(child);
      child.replaceWith(...child.childNodes);
      continue;
    }
    cleanAttributes(child);
    cleanTree(child);
    if (tag === "form") {
      // The page's composer is the form: a nested <form> would capture Enter and its fields.
      const box = document.createElement("div");
      for (const { name, value } of [...child.attributes]) box.setAttribute(name, value);
      box.dataset.parleyForm = "";
      box.append(...child.childNodes);
      child.replaceWith(box);
    }
  }
}

/** Parse untrusted fragment HTML into an inert template holding only allowlisted elements and attributes. */
export function sanitize(html) {
  // DOMParser documents never run scripts or load anything; the cleaned nodes move into a <template>.
  const doc = new DOMParser().parseFromString(`<!doctype html><body>${html}`, "text/html");
  cleanTree(doc.body);
  const template = document.createElement("template");
  template.content.append(...[...doc.body.childNodes].map((node) => document.importNode(node, true)));
  return template;
}

function useStylesheet(href) {
  if (!href || document.head.querySelector(`link[data-fragment-css="${CSS.escape(href)}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  link.dataset.fragmentCss = href;
  document.head.append(link);
}

const FIELDS = "input[name], select[name], textarea[name]";

/** {name: value}: text as typed (trimmed), numbers as numbers, radio groups as one value or null,
 *  checkboxes as the list of ticked values, multiple selects as a list. */
function collect(root) {
  const values = {};
  for (const field of root.querySelectorAll(FIELDS)) {
    const { name, type } = field;
    if (type === "checkbox") {
      values[name] = Array.isArray(values[name]) ? values[name] : [];
      if (field.checked) values[name].push(field.value);
    } else if (type === "radio") {
      if (!(name in values)) values[name] = null;
      if (field.checked) values[name] = field.value;
    } else if (type === "number" || type === "range") {
      values[name] = field.value === "" ? null : Number(field.value);
    } else if (field.localName === "select" && field.multiple) {
      values[name] = [...field.selectedOptions].map((option) => option.value);
    } else {
      values[name] = field.value.trim();
    }
  }
  return values;
}

function show(value) {
  if (Array.isArray(value)) return value.length ? value.join(", ") : "(none)";
  return value === null || value === "" ? "(no answer)" : String(value);
}

/** The widget for {kind: "fragment", role, fields?}; options.loadFragment(role) gives the template. */
export function fragmentWidget(spec, { loadFragment: load, onChange }) {
  const role = typeof spec.role === "string" ? spec.role : "";
  const required = Array.isArray(spec.fields) ? spec.fields.map(String) : [];
  const element = document.createElement("div");
  element.className = "fragment";
  element.dataset.widgetKind = "fragment";
  element.dataset.role = role;
  element.dataset.state = "loading";
  element.textContent = "Loading the form…";
  let enabled = false;
  const fields = () => [...element.querySelectorAll(FIELDS)];

  Promise.resolve()
    .then(() => (load ? load(role) : Promise.reject(new Error("this page cannot load task fragments"))))
    .then(({ template, stylesheet }) => {
      useStylesheet(stylesheet);
      element.replaceChildren(template.content.cloneNode(true));
      element.dataset.state = "ready";
      element.addEventListener("input", onChange);
      element.addEventListener("change", onChange);
      for (const field of fields()) field.disabled = !enabled;
      onChange();
    })
    .catch((error) => {
      element.dataset.state = "failed";
      element.textContent = `The form could not be loaded (${error.message}). Please reload the page.`;
      onChange();
    });

  return {
    kind: "fragment",
    element,
    focus() {
      fields().find((field) => field.type !== "hidden")?.focus();
    },
    setEnabled(on) {
      enabled = on;
      for (const field of fields()) field.disabled = !on;
    },
    value: () => collect(element),
    isValid() {
      if (element.dataset.state !== "ready") return false;
      const values = collect(element);
      const filled = (name) => ![undefined, null, ""].includes(values[name]) && !(Array.isArray(values[name]) && !values[name].length);
      return fields().every((field) => field.disabled || field.checkValidity()) && required.every(filled);
    },
    summary() {
      return Object.entries(collect(element))
        .filter(([, value]) => !(Array.isArray(value) && !value.length) && value !== null && value !== "")
        .map(([name, value]) => `${name}: ${show(value)}`)
        .join("\n") || "(no answers)";
    },
  };
}
