// The ticket view: facts and service levels, the thread, a reply box and an internal-note box
// (commentTicket), and a button per verb its state allows. It follows its own events
// (ticketEvents) and loads itself again when someone else changes it.

import { GraphQLError, request } from "./graphql.js";
import { h, when, words } from "./dom.js";
import { dueTime, tick } from "./sla.js";
import { askVerb, VERBS, verbMutation } from "./verbs.js";

const THREAD = 100; // the newest comments shown; the count says how many there are

const FRAGMENT = `fragment TicketView on Ticket {
  id version subject description status priority channel category tags
  createdAt updatedAt firstResponseAt resolvedAt closedAt allowedTransitions
  requester { id name email } assignee { id name } organization { id name tier } mergedInto { id subject }
  sla { state firstResponseDueAt resolutionDueAt firstResponseBreachedAt resolutionBreachedAt policy { name } }
  comments(last: ${THREAD}) { totalCount nodes { id body public authorRole createdAt createdBy author { id name } } }
}`;

const LOAD = `query Ticket($id: ID!) { ticket(id: $id) { ...TicketView } }\n${FRAGMENT}`;
const COMMENT = `mutation CommentTicket($id: ID!, $version: Int, $input: CommentInput!) {
  ticket: commentTicket(id: $id, input: $input, expectedVersion: $version) { ...TicketView }
}\n${FRAGMENT}`;
const FOLLOW = `subscription FollowTicket($where: TicketWhere) { ticketEvents(where: $where) { event { id type version } } }`;

export class TicketView {
  /** `root`: the section to fill; `dialog`: the verbs' dialog; `agents()`: contacts to assign. */
  constructor(live, { root, dialog, agents }) {
    Object.assign(this, { live, root, dialog, agents, id: null, ticket: null, stop: null });
  }

  /** Show a ticket and follow its changes. */
  async open(id) {
    this.close();
    this.id = id;
    this.heading = h("h2", { id: "ticket-heading", tabindex: "-1" }, "Loading…");
    this.parts = { facts: h("div"), verbs: h("div", { class: "verbs", role: "group", "aria-label": "Ticket actions" }), thread: h("div") };
    this.compose = h("div", { class: "compose" }, this.commentBox(true), this.commentBox(false));
    this.error = h("p", { class: "error", role: "alert" });
    this.root.replaceChildren(
      h("a", { class: "back", href: "#/" }, "← Queue"),
      this.heading,
      this.error,
      this.parts.verbs,
      this.parts.facts,
      this.parts.thread,
      this.compose,
    );
    this.root.hidden = false;
    this.heading.focus();
    this.stop = this.live.subscribe(() => ({ query: FOLLOW, variables: { where: { id: { eq: id } } } }), {
      next: (payload) => this.followed(payload),
      error: () => {}, // the view still works without following; a reload shows the news
    });
    await this.load();
  }

  close() {
    this.stop?.();
    this.stop = null;
    this.ticket = null;
    this.id = null;
    this.root.hidden = true;
    document.title = "Support console";
  }

  async load() {
    const id = this.id;
    try {
      const { ticket } = await request(LOAD, { id });
      if (id !== this.id) return;
      if (ticket === null) {
        this.heading.textContent = "No such ticket";
        this.error.textContent = `There is no ticket ${id} here.`;
        this.compose.hidden = true;
        return;
      }
      this.show(ticket);
    } catch (error) {
      this.error.textContent = `The ticket cannot be loaded: ${error.message}`;
    }
  }

  followed(payload) {
    const version = payload.data?.ticketEvents?.event?.version;
    if (this.ticket && version > this.ticket.version) this.load();
  }

  /** Run a mutation answering `ticket`; a stale version reloads the ticket and says so. */
  async change(mutation, variables) {
    try {
      const { ticket } = await request(mutation, { id: this.ticket.id, version: this.ticket.version, ...variables });
      this.error.textContent = "";
      this.show(ticket);
    } catch (error) {
      if (error instanceof GraphQLError && error.code === "VERSION_CONFLICT") {
        await this.load();
        throw new Error("Someone else changed this ticket just now: have a look and try again.");
      }
      throw error;
    }
  }

  show(ticket) {
    if (ticket.id !== this.id) return;
    const focusedVerb = document.activeElement?.dataset?.verb;
    this.ticket = ticket;
    this.heading.textContent = ticket.subject;
    document.title = `${ticket.subject} · Support console`;
    this.parts.facts.replaceChildren(facts(ticket), serviceLevels(ticket));
    this.parts.thread.replaceChildren(thread(ticket));
    this.parts.verbs.replaceChildren(...this.verbButtons(ticket));
    this.compose.hidden = !ticket.allowedTransitions.includes("COMMENT");
    tick(this.root);
    if (focusedVerb) (this.parts.verbs.querySelector(`[data-verb="${focusedVerb}"]`) ?? this.heading).focus();
  }

  verbButtons(ticket) {
    return Object.keys(VERBS) // in the order of VERBS, the one that cannot be undone last
      .filter((verb) => ticket.allowedTransitions.includes(verb))
      .map((verb) =>
        h("button", { type: "button", "data-verb": verb, class: VERBS[verb].danger ? "danger" : null, onclick: () => this.ask(verb) }, VERBS[verb].label),
      );
  }

  ask(verb) {
    askVerb(this.dialog, {
      verb,
      ticket: this.ticket,
      agents: this.agents(),
      run: async (variables) => {
        if (variables.input && !Object.keys(variables.input).length) return; // nothing changed
        await this.change(verbMutation(verb, FRAGMENT), variables);
        if (verb === "DELETE") location.hash = "#/"; // nothing left to look at
        else if (!this.root.contains(document.activeElement)) this.heading.focus();
      },
    });
  }

  /** A reply (public) or internal-note box. */
  commentBox(isPublic) {
    const kind = isPublic ? "reply" : "note";
    const label = isPublic ? "Reply to the requester" : "Internal note (agents only)";
    const body = h("textarea", { id: `${kind}-body`, name: "body", rows: 4, required: true });
    const error = h("p", { class: "error", role: "alert" });
    const submit = h("button", { type: "submit", class: isPublic ? "primary" : null }, isPublic ? "Send reply" : "Add note");
    const form = h("form", { class: `comment-form ${kind}` }, h("label", { for: body.id }, label), body, error, submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      try {
        await this.change(COMMENT, { input: { body: body.value, public: isPublic } });
        body.value = "";
        error.textContent = "";
      } catch (failure) {
        error.textContent = failure.message;
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }
}

function facts(ticket) {
  const rows = [
    ["Status", words(ticket.status)],
    ["Priority", words(ticket.priority) || "—"],
    ["Requester", ticket.requester ? `${ticket.requester.name}${ticket.requester.email ? ` <${ticket.requester.email}>` : ""}` : "—"],
    ["Assignee", ticket.assignee?.name ?? "Unassigned"],
    ["Organization", ticket.organization ? `${ticket.organization.name} (${words(ticket.organization.tier)})` : "—"],
    ["Channel", words(ticket.channel) || "—"],
    ["Opened", when(ticket.createdAt)],
    ["First response", ticket.firstResponseAt ? when(ticket.firstResponseAt) : "not yet"],
  ];
  if (ticket.resolvedAt) rows.push(["Resolved", when(ticket.resolvedAt)]);
  if (ticket.mergedInto) rows.push(["Merged into", ticket.mergedInto.subject]);
  if (ticket.tags.length) rows.push(["Tags", ticket.tags.join(", ")]);
  return h(
    "div",
    {},
    h("dl", { class: "facts" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    ticket.description ? h("p", { class: "description" }, ticket.description) : null,
  );
}

function serviceLevels(ticket) {
  const sla = ticket.sla;
  if (!sla) return h("p", { class: "sla-none" }, "No service-level policy applies.");
  const target = (name, due, breached, done) =>
    h(
      "li",
      {},
      `${name}: `,
      breached ? h("strong", { class: "overdue" }, `breached ${when(breached)}`)
        : done ? `met ${when(done)}`
        : sla.state === "PAUSED" ? `paused (while pending)`
        : due ? dueTime(due) : "no target",
    );
  return h(
    "section",
    { class: `sla-panel sla-${sla.state.toLowerCase()}`, "aria-labelledby": "sla-heading" },
    h("h3", { id: "sla-heading" }, `Service level: ${sla.policy.name} — ${words(sla.state)}`),
    h(
      "ul",
      {},
      target("First response", sla.firstResponseDueAt, sla.firstResponseBreachedAt, ticket.firstResponseAt),
      target("Resolution", sla.resolutionDueAt, sla.resolutionBreachedAt, ticket.resolvedAt),
    ),
  );
}

function thread(ticket) {
  const { totalCount, nodes } = ticket.comments;
  const earlier = totalCount - nodes.length;
  return h(
    "section",
    { class: "thread", "aria-labelledby": "thread-heading" },
    h("h3", { id: "thread-heading" }, `Conversation (${totalCount})`),
    earlier > 0 ? h("p", {}, `${earlier} earlier comments are not shown.`) : null,
    nodes.length ? h("ol", { class: "comments" }, nodes.map(comment)) : h("p", {}, "No replies or notes yet."),
  );
}

function comment(c) {
  const author = c.author?.name ?? (c.authorRole === "AGENT" ? c.createdBy : "Requester");
  return h(
    "li",
    { class: c.public ? "comment reply" : "comment note" },
    h(
      "article",
      { "aria-label": `${c.public ? "Reply" : "Internal note"} by ${author}` },
      h(
        "header",
        {},
        h("strong", {}, author),
        " ",
        h("span", { class: "kind" }, c.public ? `${words(c.authorRole)} reply` : "Internal note"),
        " ",
        h("time", { datetime: c.createdAt }, when(c.createdAt)),
      ),
      h("p", { class: "body" }, c.body),
    ),
  );
}
