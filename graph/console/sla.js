// Service levels as an agent reads them: which target runs next and how long until it is due,
// counted down once a second on every due time shown.

import { h, when, words } from "./dom.js";

const TARGETS = [
  { name: "First response", due: "firstResponseDueAt", breached: "firstResponseBreachedAt", done: "firstResponseAt" },
  { name: "Resolution", due: "resolutionDueAt", breached: "resolutionBreachedAt", done: "resolvedAt" },
];

/** The targets of a ticket still running (not met, not breached), earliest first. */
export function runningTargets(ticket) {
  const sla = ticket.sla;
  if (!sla || !["ACTIVE", "BREACHED"].includes(sla.state)) return [];
  return TARGETS.filter((t) => sla[t.due] && !sla[t.breached] && !ticket[t.done])
    .map((t) => ({ name: t.name, dueAt: sla[t.due] }))
    .sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt));
}

/** `due in 1h 05m` / `overdue by 3m 02s`, for milliseconds until the due time. */
export function countdown(ms) {
  const seconds = Math.floor(Math.abs(ms) / 1000);
  const [d, hh, mm, ss] = [Math.floor(seconds / 86400), Math.floor((seconds % 86400) / 3600), Math.floor((seconds % 3600) / 60), seconds % 60];
  const pad = (n) => String(n).padStart(2, "0");
  const span = d ? `${d}d ${hh}h` : hh ? `${hh}h ${pad(mm)}m` : `${mm}m ${pad(ss)}s`;
  return ms < 0 ? `overdue by ${span}` : `due in ${span}`;
}

/** A due time that counts itself down (see `tick`). */
export function dueTime(iso) {
  const element = h("time", { class: "due", datetime: iso, "data-due": iso, title: when(iso) });
  tick(element);
  return element;
}

/** Bring every countdown under `root` up to now. */
export function tick(root = document) {
  const now = Date.now();
  const times = root.matches?.("time[data-due]") ? [root] : root.querySelectorAll("time[data-due]");
  for (const time of times) {
    const left = Date.parse(time.dataset.due) - now;
    time.textContent = countdown(left);
    time.classList.toggle("overdue", left < 0);
  }
}

/** Count down every due time on the page, once a second. */
export function startClock() {
  setInterval(() => tick(document), 1000);
}

/** The SLA line of a queue row: the state where it is not plainly running, the next target. */
export function slaBadge(ticket) {
  if (!ticket.sla) return null;
  const { state } = ticket.sla;
  const next = runningTargets(ticket)[0];
  return h(
    "span",
    { class: `sla sla-${state.toLowerCase()}` },
    state === "ACTIVE" ? null : h("span", { class: "sla-state" }, `SLA ${words(state).toLowerCase()}`),
    next ? [` ${next.name} `, dueTime(next.dueAt)] : null,
  );
}
