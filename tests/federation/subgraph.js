// "billing": a second team's subgraph, in memory, for tests/test_federation_gateway.py.
// It extends support-graph's Ticket with billingNotes, and its BillingNote points back at
// support-graph's Ticket and Organization entities (references the gateway resolves there).
// Prints {"ready": url} on stdout once listening (PORT, default 0: the kernel picks one).
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.0", import: ["@key"])

  "A support ticket (owned by support-graph), with what billing knows about it."
  type Ticket @key(fields: "id") {
    id: ID!
    billingNotes: [BillingNote!]!
  }

  "An organization (owned by support-graph): billing only refers to it."
  type Organization @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type BillingNote @key(fields: "id") {
    id: ID!
    text: String!
    batch: String!
    ticket: Ticket
    organization: Organization
  }

  type Query {
    billingNotes(batch: String!): [BillingNote!]!
  }

  type Mutation {
    addBillingNote(batch: String!, ticket: ID!, organization: ID, text: String!): BillingNote!
  }
`);

const notes = [];

const resolvers = {
  Query: {
    billingNotes: (_, { batch }) => notes.filter((note) => note.batch === batch),
  },
  Mutation: {
    addBillingNote: (_, { batch, ticket, organization, text }) => {
      const note = { id: `note_${notes.length + 1}`, batch, ticketId: ticket, organizationId: organization, text };
      notes.push(note);
      return note;
    },
  },
  Ticket: {
    __resolveReference: (reference) => ({ id: reference.id }),
    billingNotes: (ticket) => notes.filter((note) => note.ticketId === ticket.id),
  },
  BillingNote: {
    __resolveReference: (reference) => notes.find((note) => note.id === reference.id) ?? null,
    ticket: (note) => ({ __typename: "Ticket", id: note.ticketId }),
    organization: (note) => (note.organizationId ? { __typename: "Organization", id: note.organizationId } : null),
  },
};

const server = new ApolloServer({ schema: buildSubgraphSchema({ typeDefs, resolvers }) });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: Number(process.env.PORT ?? 0) },
});
console.log(JSON.stringify({ ready: url }));
