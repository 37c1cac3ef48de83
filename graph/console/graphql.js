// How the console talks to the server: queries and mutations as fetch POSTs to /graphql,
// subscriptions over one WebSocket at /graphql in the graphql-transport-ws protocol
// (github.com/enisdenjo/graphql-ws, PROTOCOL.md). Nothing else, nothing from anywhere else.

const ENDPOINT = "/graphql";
const KEY = "support-graph.apiKey";

/** The API key for this tab (sessionStorage: gone when the tab closes). */
export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => (key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY)),
};

/** A GraphQL answer with errors; `code` is the first error's `extensions.code`. */
export class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((error) => error.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code ?? "INTERNAL";
  }
}

function failure(message, code) {
  return new GraphQLError([{ message, extensions: { code } }]);
}

/** Run a query or mutation; its `data`, or a thrown GraphQLError. */
export async function request(query, variables = {}, key = apiKey.get()) {
  const headers = { "content-type": "application/json", accept: "application/graphql-response+json" };
  if (key) headers.authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(ENDPOINT, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch {
    throw failure("The server cannot be reached.", "UNAVAILABLE");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw failure(`The server answered HTTP ${response.status}.`, "INTERNAL");
  }
  if (body.errors?.length) throw new GraphQLError(body.errors);
  return body.data;
}

// close codes after which trying again with the same key is pointless
const REFUSED = new Set([4401, 4403]);

/**
 * One WebSocket for every subscription of the page. It connects with the API key in
 * `connection_init`, answers pings, and after a dropped connection reconnects (waiting
 * longer each time) and subscribes again, asking each operation for its payload anew so
 * an operation can resume from its last cursor.
 */
export class LiveSocket {
  /** `onState("connecting" | "live" | "offline")`; `onRefused()` when the key is refused. */
  constructor({ onState = () => {}, onRefused = () => {} } = {}) {
    this.onState = onState;
    this.onRefused = onRefused;
    this.operations = new Map();
    this.nextId = 1;
    this.failures = 0;
    this.ready = false;
    this.stopped = false;
    this.open();
  }

  open() {
    const url = new URL(ENDPOINT, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.onState("connecting");
    const socket = (this.socket = new WebSocket(url, "graphql-transport-ws"));
    socket.onopen = () => {
      const key = apiKey.get();
      this.send({ type: "connection_init", payload: key ? { authorization: `Bearer ${key}` } : {} });
    };
    socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    socket.onclose = (closed) => this.closed(socket, closed.code);
  }

  send(message) {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  receive(message) {
    const operation = this.operations.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.ready = true;
        this.failures = 0;
        this.onState("live");
        for (const [id, { payload }] of this.operations) this.send({ id, type: "subscribe", payload: payload() });
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        operation?.sink.next(message.payload);
        break;
      case "error":
        this.operations.delete(message.id);
        operation?.sink.error(new GraphQLError(message.payload));
        break;
      case "complete":
        this.operations.delete(message.id);
        operation?.sink.complete?.();
        break;
    }
  }

  closed(socket, code) {
    if (socket !== this.socket) return;
    this.ready = false;
    if (this.stopped) return;
    if (REFUSED.has(code)) {
      this.stopped = true;
      this.onState("offline");
      this.onRefused();
      return;
    }
    this.onState("offline");
    const wait = Math.min(30_000, 500 * 2 ** this.failures++) * (0.5 + Math.random() / 2);
    setTimeout(() => this.stopped || this.open(), wait);
  }

  /**
   * Subscribe; `payload()` gives `{query, variables}` (asked again on every reconnect),
   * `sink` has `next(payload)`, `error(GraphQLError)` and optionally `complete()`.
   * Returns the function that ends the subscription.
   */
  subscribe(payload, sink) {
    const id = String(this.nextId++);
    this.operations.set(id, { payload, sink });
    if (this.ready) this.send({ id, type: "subscribe", payload: payload() });
    return () => {
      if (this.operations.delete(id) && this.ready) this.send({ id, type: "complete" });
    };
  }

  /** Close for good (signing out). */
  close() {
    this.stopped = true;
    this.operations.clear();
    this.socket.close(1000);
  }
}
