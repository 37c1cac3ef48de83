// The queue: a page of tickets that the `ticketQueue` subscription keeps current — a snapshot
// first, then each ticket added, removed or changed at its new position — under the filters
// of the form above it. Changes are announced through a polite live region.

import { announce, h, words } from "./dom.js";
import { slaBadge, tick } from "./sla.js";

/** The fields a queue row shows. */
const QUEUE_FIELDS = `id subject status priority createdAt updatedAt firstResponseAt resolvedAt
  requester { id name } assignee { id name }
  sla { state firstResponseDueAt resolutionDueAt firstResponseBreachedAt resolutionBreachedAt }`;

const SUBSCRIPTION = `subscription Queue($where: TicketWhere, $orderBy: [TicketOrder!], $first: Int, $after: ID) {
  ticketQueue(where: $where, orderBy: $orderBy, first: $first, after: $after) {
    kind position cursor remaining event { id type } tickets { ${QUEUE_FIELDS} }
  }
}`;

const PAGE = 50;
const FILTERS = "support-graph.queueFilters";

const ORDERS = {
  due: [{ field: "SLA_DUE_AT" }, { field: "PRIORITY", direction: "DESC" }, { field: "CREATED_AT" }],
  priority: [{ field: "PRIORITY", direction: "DESC" }, { field: "CREATED_AT" }],
  newest: [{ field: "CREATED_AT", direction: "DESC" }],
  updated: [{ field: "UPDATED_AT", direction: "DESC" }],
};

/** The `TicketWhere` of the filter form's values. */
function ticketWhere({ status, priority, assignee, sla }) {
  const where = {};
  if (status === "OPEN_WORK") where.status = { nin: ["RESOLVED", "CLOSED"] };
  else if (status) where.status = { eq: status };
  if (priority) where.priority = { eq: priority };
  if (assignee === "NOBODY") where.assignee = { isNull: true };
  else if (assignee) where.assignee = { eq: assignee };
  if (sla) where.slaState = { eq: sla };
  return where;
}

export class Queue {
  /** `elements`: the form, list, count, live region and error paragraph of the queue. */
  constructor(live, elements) {
    this.live = live;
    this.elements = elements;
    this.tickets = [];
    this.selected = null;
    this.cursor = null;
    this.stop = null;
    this.restoreFilters();
    elements.form.addEventListener("change", () => this.filtersChanged());
    elements.form.addEventListener("submit", (event) => event.preventDefault());
    elements.list.addEventListener("keydown", (event) => this.moveFocus(event));
  }

  /** (Re)subscribe with the current filters: a snapshot comes first. */
  start() {
    this.stop?.();
    this.cursor = null;
    this.loaded = false;
    this.elements.count.textContent = "loading…";
    this.stop = this.live.subscribe(() => ({ query: SUBSCRIPTION, variables: this.variables() }), {
      next: (payload) => this.receive(payload),
      error: (error) => this.failed(error),
    });
  }

  variables() {
    const filters = this.filters();
    const variables = { where: ticketWhere(filters), orderBy: ORDERS[filters.order] ?? ORDERS.due, first: PAGE };
    if (this.cursor) variables.after = this.cursor; // a reconnect resumes where it left off
    return variables;
  }

  filters() {
    return Object.fromEntries(new FormData(this.elements.form));
  }

  filtersChanged() {
    sessionStorage.setItem(FILTERS, JSON.stringify(this.filters()));
    this.start();
  }

  restoreFilters() {
    const saved = JSON.parse(sessionStorage.getItem(FILTERS) ?? "{}");
    for (const [name, value] of Object.entries(saved)) {
      const field = this.elements.form.elements[name];
      if (field) field.value = value;
    }
  }

  /** Offer the agents (contacts) in the assignee filter, keeping the current choice. */
  setAgents(agents) {
    const select = this.elements.form.elements.assignee;
    const chosen = select.value || JSON.parse(sessionStorage.getItem(FILTERS) ?? "{}").assignee || "";
    select.replaceChildren(
      h("option", { value: "" }, "Anyone"),
      h("option", { value: "NOBODY" }, "Unassigned"),
      ...agents.map((agent) => h("option", { value: agent.id }, agent.name)),
    );
    select.value = chosen;
  }

  receive(payload) {
    if (payload.errors?.length) return this.failed({ message: payload.errors.map((e) => e.message).join("; ") });
    const update = payload.data.ticketQueue;
    this.elements.error.textContent = "";
    if (update.cursor && update.remaining === 0) this.cursor = update.cursor;
    if (update.kind === "SNAPSHOT") {
      this.tickets = update.tickets;
      this.render();
      announce(this.elements.status, `Queue ${this.loaded ? "refreshed" : "loaded"}: ${this.counted()}.`);
      this.loaded = true;
      return;
    }
    const [ticket] = update.tickets; // ADDED, CHANGED, REMOVED: the one ticket
    this.tickets = this.tickets.filter((t) => t.id !== ticket.id);
    if (update.kind !== "REMOVED") {
      this.tickets.splice(Math.max(0, Math.min(update.position ?? 0, this.tickets.length)), 0, ticket);
    }
    this.render(update.kind === "REMOVED" ? null : ticket.id);
    const said = {
      ADDED: `New in the queue: ${ticket.subject}.`,
      CHANGED: `Updated: ${ticket.subject} (${words(ticket.status).toLowerCase()}).`,
      REMOVED: `Left the queue: ${ticket.subject}.`,
    };
    announce(this.elements.status, said[update.kind]);
  }

  failed(error) {
    this.elements.count.textContent = "";
    this.elements.error.textContent = `The queue cannot be shown: ${error.message}`;
  }

  counted() {
    const n = this.tickets.length;
    return n === PAGE ? `the first ${PAGE} tickets` : `${n} ticket${n === 1 ? "" : "s"}`;
  }

  /** Mark the ticket open in the ticket view. */
  select(id) {
    this.selected = id;
    for (const link of this.elements.list.querySelectorAll("a")) {
      if (link.closest("li").dataset.id === id) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  render(fresh = null) {
    const { list, count } = this.elements;
    const focused = document.activeElement?.closest?.("#queue-list li")?.dataset.id;
    list.replaceChildren(...this.tickets.map((ticket) => row(ticket, ticket.id === this.selected, ticket.id === fresh)));
    count.textContent = this.counted();
    if (focused) list.querySelector(`li[data-id="${CSS.escape(focused)}"] a`)?.focus();
    tick(list);
  }

  /** Arrow keys, Home and End move between the rows. */
  moveFocus(event) {
    const links = [...this.elements.list.querySelectorAll("a")];
    const here = links.indexOf(document.activeElement);
    const to = { ArrowDown: here + 1, ArrowUp: here - 1, Home: 0, End: links.length - 1 }[event.key];
    if (to === undefined || !links.length) return;
    event.preventDefault();
    links[Math.max(0, Math.min(to, links.length - 1))].focus();
  }
}

function row(ticket, current, fresh) {
  const status = ticket.status.toLowerCase();
  const people = [ticket.requester?.name ?? "No requester", ticket.assignee ? `→ ${ticket.assignee.name}` : "→ unassigned"];
  return h(
    "li",
    { "data-id": ticket.id, class: fresh ? "fresh" : null },
    h(
      "a",
      { href: `#/ticket/${ticket.id}`, "aria-current": current ? "true" : null },
      h("span", { class: "subject" }, ticket.subject),
      h(
        "span",
        { class: "facts" },
        h("span", { class: `status status-${status}` }, words(ticket.status)),
        ticket.priority ? h("span", { class: `priority priority-${ticket.priority.toLowerCase()}` }, words(ticket.priority)) : null,
        h("span", { class: "people" }, people.join(" ")),
      ),
      slaBadge(ticket),
    ),
  );
}
