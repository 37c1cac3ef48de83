// The ticket verbs an agent uses from the ticket view, one button each where the ticket's
// `allowedTransitions` lists it. A verb that takes arguments, or cannot be undone, asks in a
// modal dialog first. COMMENT is not here: the reply and note boxes are its form.

import { h, words } from "./dom.js";

const PRIORITIES = ["LOW", "MEDIUM", "HIGH", "URGENT"];

/** Each verb: its button, the mutation field it calls, what it asks for. */
export const VERBS = {
  ASSIGN: {
    label: "Assign",
    call: "assignTicket(id: $id, assignee: $assignee, expectedVersion: $version)",
    variables: "$assignee: ID!",
    fields: [{ name: "assignee", label: "Assign to", agents: true, required: true }],
  },
  UPDATE: {
    label: "Status and priority",
    call: "updateTicket(id: $id, input: $input, expectedVersion: $version)",
    variables: "$input: UpdateTicketInput!",
    input: true, // the fields that changed go in `input`
    fields: [
      { name: "status", label: "Status", options: ["OPEN", "PENDING", "IN_PROGRESS"] },
      { name: "priority", label: "Priority", options: PRIORITIES },
    ],
  },
  ESCALATE: {
    label: "Escalate",
    call: "escalateTicket(id: $id, reason: $reason, expectedVersion: $version)",
    variables: "$reason: String",
    fields: [{ name: "reason", label: "Reason (engineering sees it)", long: true }],
  },
  RESOLVE: {
    label: "Resolve",
    call: "resolveTicket(id: $id, resolution: $resolution, expectedVersion: $version)",
    variables: "$resolution: String",
    fields: [{ name: "resolution", label: "Resolution", long: true }],
  },
  REOPEN: {
    label: "Reopen",
    call: "reopenTicket(id: $id, reason: $reason, expectedVersion: $version)",
    variables: "$reason: String",
    fields: [{ name: "reason", label: "Reason", long: true }],
  },
  MERGE: {
    label: "Merge",
    call: "mergeTicket(id: $id, into: $into, comment: $comment, expectedVersion: $version)",
    variables: "$into: ID!, $comment: String",
    fields: [
      { name: "into", label: "Merge into ticket (its id)", required: true },
      { name: "comment", label: "Note on the ticket merged into", long: true },
    ],
  },
  CLOSE: {
    label: "Close",
    call: "closeTicket(id: $id, expectedVersion: $version)",
    confirm: "A closed ticket takes no more replies.",
    fields: [],
  },
  DELETE: {
    label: "Delete",
    call: "deleteTicket(id: $id, expectedVersion: $version)",
    confirm: "The ticket leaves every queue.",
    danger: true,
    fields: [],
  },
};

/** The mutation document of a verb, answering with the ticket's `fragment` (named TicketView). */
export function verbMutation(verb, fragment) {
  const spec = VERBS[verb];
  const declared = ["$id: ID!", "$version: Int", spec.variables].filter(Boolean).join(", ");
  return `mutation ${words(verb).replaceAll(" ", "")}Ticket(${declared}) { ticket: ${spec.call} { ...TicketView } }\n${fragment}`;
}

/**
 * Ask for a verb's arguments (or a confirmation) in `dialog`, then `run(variables)`; an error
 * stays in the dialog, success closes it. `agents` are the contacts a ticket can be assigned to.
 */
export function askVerb(dialog, { verb, ticket, agents, run }) {
  const spec = VERBS[verb];
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: spec.danger ? "danger" : "primary" }, spec.label);
  const form = h(
    "form",
    { class: "verb-form" },
    h("h2", { id: "verb-title" }, `${spec.label}: ${ticket.subject}`),
    spec.confirm ? h("p", {}, spec.confirm) : null,
    spec.fields.map((field) => control(field, ticket, agents)),
    error,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      await run(values(spec, form, ticket));
      dialog.close();
    } catch (failure) {
      error.textContent = failure.message;
    } finally {
      submit.disabled = false;
    }
  });
  dialog.replaceChildren(form);
  dialog.setAttribute("aria-labelledby", "verb-title");
  dialog.showModal();
}

function control(field, ticket, agents) {
  const id = `verb-${field.name}`;
  const common = { id, name: field.name, required: field.required };
  let input;
  if (field.agents) {
    const choices = agents.map((a) => h("option", { value: a.id, selected: ticket.assignee?.id === a.id }, a.name));
    input = h("select", common, h("option", { value: "" }, "Choose someone…"), choices);
  } else if (field.options) {
    input = h("select", common, field.options.map((o) => h("option", { value: o, selected: ticket[field.name] === o }, words(o))));
  } else if (field.long) {
    input = h("textarea", { ...common, rows: 3 });
  } else {
    input = h("input", { ...common, autocomplete: "off", spellcheck: "false" });
  }
  return h("p", { class: "field" }, h("label", { for: id }, field.label), input);
}

/** The variables the form gives: blank answers left out; for UPDATE, only what changed. */
function values(spec, form, ticket) {
  const given = [...new FormData(form)].filter(([, value]) => value !== "");
  if (!spec.input) return Object.fromEntries(given);
  return { input: Object.fromEntries(given.filter(([name, value]) => ticket[name] !== value)) };
}
