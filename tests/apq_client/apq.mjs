// Apollo Client with its persisted-query link, against a live support-graph.
//
// Usage: node apq.mjs GRAPHQL_URL SCENARIO TAG
// Runs the scenario's operations in order with a fresh client each (no cache between them),
// and prints one JSON object: the result of each operation and every HTTP exchange the links
// made (method, whether the document travelled, the persisted-query hash, status, error codes).
// SCENARIO "manifest" sends nothing: it prints Apollo's persisted-query manifest of the
// documents the client would send (as generate-persisted-query-manifest writes it).
import { createHash } from "node:crypto";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { print } from "graphql";
import { of } from "rxjs";

const [url, scenario, tag] = process.argv.slice(2);
const exchanges = [];
const JSON_PARAMETERS = new Set(["variables", "extensions"]);

async function recordingFetch(input, init = {}) {
  const target = new URL(typeof input === "string" ? input : input.url);
  const method = (init.method || "GET").toUpperCase();
  const sent = method === "GET"
    ? Object.fromEntries([...target.searchParams].map(([k, v]) => [k, JSON_PARAMETERS.has(k) ? JSON.parse(v) : v]))
    : JSON.parse(init.body);
  const response = await fetch(input, init);
  const text = await response.clone().text();
  let codes = [];
  try {
    codes = (JSON.parse(text).errors || []).map((e) => e.extensions?.code);
  } catch {}
  exchanges.push({
    method,
    withQuery: typeof sent.query === "string",
    hash: sent.extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
    codes,
  });
  return response;
}

function client({ get = false } = {}) {
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: get,
  });
  const http = new HttpLink({ uri: url, fetch: recordingFetch });
  return new ApolloClient({ link: persisted.concat(http), cache: new InMemoryCache() });
}

// named after TAG, so that each run's documents are new to the server
const TICKETS = gql(`query ApqTickets_${tag}($first: Int) { tickets(first: $first) { totalCount } }`);
const ORGANIZATIONS = gql(`query ApqOrganizations_${tag} { organizations(first: 3) { totalCount } }`);
const CREATE = gql(`mutation ApqCreate_${tag}($subject: String!) { createTicket(input: { subject: $subject }) { subject } }`);
const UNREGISTERED = gql(`query ApqUnregistered_${tag} { contacts(first: 1) { totalCount } }`);

async function run(operation) {
  try {
    const result = await operation();
    return { data: result.data ?? null };
  } catch (error) {
    const errors = error.errors || error.result?.errors || [];
    return { error: error.message, codes: errors.map((e) => e.extensions?.code) };
  }
}

const scenarios = {
  // automatic persisted queries over POST, then by GET, then a mutation
  automatic: [
    () => client().query({ query: TICKETS, variables: { first: 2 } }),
    () => client().query({ query: TICKETS, variables: { first: 2 } }),
    () => client({ get: true }).query({ query: ORGANIZATIONS }),
    () => client({ get: true }).query({ query: ORGANIZATIONS }),
    () => client().mutate({ mutation: CREATE, variables: { subject: "Sent by hash" } }),
  ],
  // a server started with --persisted-only: a registered document runs at once, another is refused
  registered: [
    () => client().query({ query: TICKETS, variables: { first: 2 } }),
    () => client({ get: true }).query({ query: TICKETS, variables: { first: 1 } }),
    () => client().query({ query: UNREGISTERED }),
  ],
};

// what the client sends for a document (the cache adds __typename): register exactly that
async function manifest(documents) {
  const operations = new Map();
  const capture = new ApolloLink((operation) => {
    const body = print(operation.query);
    const definition = operation.query.definitions.find((d) => d.kind === "OperationDefinition");
    const id = createHash("sha256").update(body).digest("hex");
    operations.set(id, { id, body, name: operation.operationName, type: definition.operation });
    return of({ data: null });
  });
  const capturing = new ApolloClient({ link: capture, cache: new InMemoryCache() });
  for (const query of documents) {
    await capturing.query({ query, fetchPolicy: "no-cache" }).catch(() => null);
  }
  return { format: "apollo-persisted-query-manifest", version: 1, operations: [...operations.values()] };
}

if (scenario === "manifest") {
  process.stdout.write(JSON.stringify(await manifest([TICKETS])));
  process.exit(0);
}

const results = [];
for (const operation of scenarios[scenario]) {
  results.push(await run(operation));
}
process.stdout.write(JSON.stringify({ results, exchanges }));
