// The console's start: sign in where the server asks for a key, then the queue and, at
// #/ticket/<id>, a ticket beside it (or instead of it, on a narrow screen).

import { apiKey, LiveSocket, request } from "./graphql.js";
import { Queue } from "./queue.js";
import { startClock } from "./sla.js";
import { TicketView } from "./ticket.js";

const $ = (id) => document.getElementById(id);
const AGENTS = `query Agents { contacts(first: 100, orderBy: [{field: NAME}]) { nodes { id name } } }`;
const CONNECTION = { connecting: "Connecting…", live: "Live", offline: "Offline: reconnecting…" };

/** Whether the server serves this key (or no key); false where it asks for another. */
async function admitted(key) {
  try {
    await request("query Probe { __typename }", {}, key);
    return true;
  } catch (error) {
    if (error.code === "UNAUTHENTICATED") return false;
    throw error;
  }
}

async function start() {
  startClock();
  const key = apiKey.get();
  try {
    if (await admitted(key)) return openConsole();
    apiKey.set(null);
    if (key && (await admitted(null))) return openConsole(); // a key the server no longer asks for
    showSignIn(key ? "That API key is no longer accepted: sign in again." : "");
  } catch (error) {
    showSignIn(`The server cannot be reached: ${error.message}`);
  }
}

function showSignIn(message = "") {
  $("sign-in").hidden = false;
  $("workspace").hidden = true;
  $("sign-in-error").textContent = message;
  $("api-key").focus();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  try {
    if (!(await admitted(key))) {
      $("sign-in-error").textContent = "The server does not accept that key.";
      return;
    }
  } catch (error) {
    $("sign-in-error").textContent = `The server cannot be reached: ${error.message}`;
    return;
  }
  apiKey.set(key);
  $("api-key").value = "";
  $("sign-out").hidden = false;
  openConsole();
});

// the skip link moves focus without touching the address, which routes the page
$("skip").addEventListener("click", (event) => {
  event.preventDefault();
  $("main").focus();
});

$("sign-out").addEventListener("click", () => {
  apiKey.set(null);
  location.hash = "";
  location.reload();
});

function openConsole() {
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = !apiKey.get();
  const live = new LiveSocket({
    onState: (state) => {
      $("connection").textContent = CONNECTION[state];
      $("connection").dataset.state = state;
    },
    onRefused: () => {
      apiKey.set(null);
      location.reload();
    },
  });
  let agents = [];
  const queue = new Queue(live, {
    form: $("filters"),
    list: $("queue-list"),
    count: $("queue-count"),
    status: $("queue-status"),
    error: $("queue-error"),
  });
  const ticket = new TicketView(live, { root: $("ticket"), dialog: $("verb-dialog"), agents: () => agents });
  request(AGENTS).then(
    (data) => {
      agents = data.contacts.nodes;
      queue.setAgents(agents);
    },
    () => {}, // the assignee filter then offers "anyone" and "unassigned" only
  );
  queue.start();

  const route = () => {
    const id = location.hash.match(/^#\/ticket\/([\w-]+)$/)?.[1] ?? null;
    document.body.classList.toggle("viewing-ticket", id !== null);
    queue.select(id);
    if (id === null && ticket.id !== null) {
      ticket.close(); // back from a ticket: on to the queue
      $("queue-heading").focus({ preventScroll: true });
    } else if (id !== null && id !== ticket.id) {
      ticket.open(id);
    }
  };
  window.addEventListener("hashchange", route);
  route();
}

start();
