// Input widgets for a turn, one builder per kind (worlds/base.py: text, rating, choice, checkboxes, form,
// fragment). A widget is {element, kind, value(), isValid(), summary(), focus(), setEnabled(on), counter?,
// about?} — `about` is the id of the chat message the widget annotates (checkboxes(..., about=id)).
// `answerOf(widget)` turns it into the message the page sends: {text, data}.

import { fragmentWidget } from "./fragments.js";

let instances = 0;

function make(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const CONTROLS = "input, textarea, button, select";

function controls(root) {
  const inside = [...root.querySelectorAll(CONTROLS)];
  return root.matches(CONTROLS) ? [root, ...inside] : inside;
}

function baseWidget(kind, element) {
  return {
    kind,
    element,
    focus() {
      controls(element)[0]?.focus();
    },
    setEnabled(on) {
      for (const control of controls(element)) control.disabled = !on;
    },
  };
}

/** Characters as the server counts them (code points: an emoji is one, not two). */
function charCount(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/** Free text up to the server's limit (or a task's lower `max_length`). Longer text is kept as typed or
 *  pasted, never cut: a note under the box says by how much it is over, and the answer is not valid. */
function textWidget(spec, { maxChars, onChange, onEnter, id }) {
  const requested = Number.isInteger(spec.max_length) && spec.max_length > 0 ? spec.max_length : maxChars;
  const limit = Math.min(requested, maxChars);
  const area = make("textarea", {
    rows: 2,
    placeholder: spec.placeholder || "Type your message…",
    dataset: { widgetKind: "text" },
  });
  if (id) area.id = id;
  const note = make("p", { className: "limit-note", role: "alert", hidden: true });
  const used = () => charCount(area.value.trim());
  const showLimit = () => {
    const over = used() - limit;
    note.hidden = over <= 0;
    note.textContent = over > 0
      ? `Too long to send: ${used().toLocaleString("en-US")} characters, and the limit is ${limit.toLocaleString("en-US")}. `
        + `Remove ${over.toLocaleString("en-US")} to send it.`
      : "";
    area.setAttribute("aria-invalid", String(over > 0));
  };
  area.addEventListener("input", () => {
    showLimit();
    onChange();
  });
  if (onEnter) {
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        onEnter();
      }
    });
  }
  const required = spec.required !== false;
  const element = make("div", { className: "text-field" }, [area, note]);
  return {
    ...baseWidget("text", element),
    counter: () => ({ used: used(), limit }),
    value: () => area.value.trim(),
    setValue(text) {
      area.value = text;
      showLimit();
      onChange();
    },
    isValid() {
      const count = used();
      return count <= limit && (!required || count > 0);
    },
    summary() {
      return area.value.trim();
    },
  };
}

const MAX_RATING_BUTTONS = 11;

function ratingWidget(spec, { onChange, name }) {
  const low = Number.isInteger(spec.min) ? spec.min : 1;
  const high = Number.isInteger(spec.max) && spec.max >= low ? spec.max : low + 4;
  const [lowLabel, highLabel] = Array.isArray(spec.labels) ? spec.labels : ["", ""];
  let chosen = null;
  const scale = make("div", { className: "rating-scale", role: "radiogroup" });
  if (high - low + 1 <= MAX_RATING_BUTTONS) {
    for (let value = low; value <= high; value += 1) {
      const button = make("button", {
        type: "button",
        className: "rating-option",
        text: String(value),
        dataset: { value: String(value) },
        "aria-pressed": "false",
        name,
      });
      button.addEventListener("click", () => {
        chosen = value;
        for (const other of scale.querySelectorAll("button")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        onChange();
      });
      scale.append(button);
    }
  } else {
    const input = make("input", { type: "number", min: low, max: high, step: 1, name });
    input.addEventListener("input", () => {
      const value = Number(input.value);
      chosen = input.value !== "" && Number.isInteger(value) && value >= low && value <= high ? value : null;
      onChange();
    });
    scale.append(input);
  }
  const element = make("div", { className: "rating", dataset: { widgetKind: "rating" } }, [
    make("span", { className: "rating-label low", text: lowLabel || "" }),
    scale,
    make("span", { className: "rating-label high", text: highLabel || "" }),
  ]);
  return {
    ...baseWidget("rating", element),
    value: () => chosen,
    isValid: () => chosen !== null || spec.required === false,
    summary: () => (chosen === null ? "(no rating)" : `${chosen} (scale ${low}–${high})`),
  };
}

function optionList(spec, { onChange, name }, type) {
  const options = Array.isArray(spec.options) ? spec.options.map(String) : [];
  const list = make("div", { className: `options ${type}`, dataset: { widgetKind: type === "radio" ? "choice" : "checkboxes" } });
  const inputs = options.map((option) => {
    const input = make("input", { type, name, value: option });
    input.addEventListener("change", onChange);
    list.append(make("label", { className: "option" }, [input, make("span", { text: option })]));
    return input;
  });
  return { list, inputs };
}

function choiceWidget(spec, options) {
  const { list, inputs } = optionList(spec, options, "radio");
  const value = () => inputs.find((input) => input.checked)?.value ?? null;
  return {
    ...baseWidget("choice", list),
    value,
    isValid: () => value() !== null || spec.required === false,
    summary: () => value() ?? "(no choice)",
  };
}

function checkboxesWidget(spec, options) {
  const { list, inputs } = optionList(spec, options, "checkbox");
  const value = () => inputs.filter((input) => input.checked).map((input) => input.value);
  const required = spec.required === true;
  return {
    ...baseWidget("checkboxes", list),
    about: typeof spec.message_id === "string" && spec.message_id ? spec.message_id : null,
    value,
    isValid: () => !required || value().length > 0,
    summary: () => (value().length ? value().join(", ") : "(none selected)"),
  };
}

function formWidget(spec, options) {
  const fields = (Array.isArray(spec.fields) ? spec.fields : []).filter((field) => field && field.name);
  const element = make("div", { className: "form", dataset: { widgetKind: "form" } });
  const parts = fields.map((field) => {
    const name = `${options.name}-${field.name}`;
    // Inside a survey a text field is optional unless it says `required: true` (a comment box);
    // a rating or a choice is required unless it says `required: false`.
    const kind = BUILDERS[field.kind] && !["form", "fragment"].includes(field.kind) ? field.kind : "text";
    const spec = kind === "text" ? { required: false, ...field, kind } : field;
    const part = build(spec, { ...options, onEnter: null, id: null, name });
    const label = make("span", { className: "field-label", text: field.label || field.name });
    element.append(make("div", { className: "field", dataset: { field: field.name } }, [label, part.element]));
    return { field, part };
  });
  return {
    ...baseWidget("form", element),
    value: () => Object.fromEntries(parts.map(({ field, part }) => [field.name, part.value()])),
    isValid: () => parts.every(({ part }) => part.isValid()),
    summary: () => parts.map(({ field, part }) => `${field.label || field.name}: ${part.summary()}`).join("\n"),
  };
}

const BUILDERS = {
  text: textWidget,
  rating: ratingWidget,
  choice: choiceWidget,
  checkboxes: checkboxesWidget,
  form: formWidget,
  fragment: fragmentWidget,
};

function build(spec, options) {
  const builder = BUILDERS[spec?.kind] ?? textWidget; // an unknown kind degrades to free text
  return builder(spec ?? {}, options);
}

/**
 * Build the widget for a turn. options: {maxChars, onChange, onEnter, id, loadFragment} — `id` goes on the
 * top-level text area (#chat-input) so tests and assistive tech find it; loadFragment(role) fetches a
 * task's fragment.
 */
export function createWidget(spec, options) {
  instances += 1;
  return build(spec ?? { kind: "text" }, { ...options, name: `w${instances}` });
}

/** The message a widget's answer becomes: readable text plus the structured answer. */
export function answerOf(widget) {
  switch (widget.kind) {
    case "rating":
      return { text: `Rating: ${widget.summary()}`, data: { rating: widget.value() } };
    case "choice":
      return { text: widget.summary(), data: { choice: widget.value() } };
    case "checkboxes": {
      const data = { checkboxes: widget.value() };
      if (widget.about) data.message_id = widget.about; // the message these labels are about
      return { text: widget.summary(), data };
    }
    case "form":
    case "fragment":
      return { text: widget.summary(), data: { form: widget.value() } };
    default:
      return { text: widget.value(), data: {} };
  }
}
