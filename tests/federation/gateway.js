// Apollo Gateway composing support-graph with the billing subgraph (subgraph.js), for
// tests/test_federation_gateway.py. SUPPORT_URL and BILLING_URL are the subgraphs' GraphQL
// endpoints; the supergraph is composed from their `_service { sdl }` at start (IntrospectAndCompose).
// The caller's Authorization header goes on to the subgraphs: support-graph answers per tenant.
// Prints {"ready": url} on stdout once composed and listening (PORT, default 0: the kernel picks one).
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

// The gateway reports usage metrics to Apollo unless told not to; a test talks to nothing outside.
process.env.APOLLO_TELEMETRY_DISABLED ??= "true";

for (const name of ["SUPPORT_URL", "BILLING_URL"]) {
  if (!process.env[name]) {
    console.error(`${name} must name a subgraph's GraphQL endpoint`);
    process.exit(2);
  }
}

class ForwardingAuthorization extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) {
      request.http.headers.set("authorization", context.authorization);
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: [
      { name: "support", url: process.env.SUPPORT_URL },
      { name: "billing", url: process.env.BILLING_URL },
    ],
  }),
  buildService: ({ url }) => new ForwardingAuthorization({ url }),
});

const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: Number(process.env.PORT ?? 0) },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
console.log(JSON.stringify({ ready: url }));
