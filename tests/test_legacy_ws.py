"""Queries, mutations and subscriptions over the legacy ``graphql-ws`` protocol, through ``gql``.

``gql``'s ``WebsocketsTransport`` speaking ``graphql-ws`` fetches the schema over the socket
(an introspection query), then runs a query, a mutation and a subscription on one connection,
as it does over ``graphql-transport-ws``. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests import ws_client as ws
from tests.ws_client import LEGACY_WS, PROTOCOLS, WAIT

LATEST = "{ events(orderBy: [{field: SEQUENCE, direction: DESC}], first: 1) { nodes { id sequence } } }"
CREATE = "mutation($subject: String!) { createTicket(input: {subject: $subject}) { id subject status version } }"
TICKET = "query($id: ID!) { ticket(id: $id) { id subject status } }"
UPDATE = 'mutation($id: ID!) { updateTicket(id: $id, input: {subject: "renamed"}) { id } }'
EVENTS_AFTER = 'subscription($after: ID) { events(after: $after, types: ["Ticket.Created"]) { id type target } }'


def _client(server, protocol: str) -> Client:
    transport = WebsocketsTransport(url=ws.ws_url(server.url), subprotocols=[protocol], ack_timeout=WAIT)
    return Client(transport=transport, fetch_schema_from_transport=True, execute_timeout=WAIT)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_gql_runs_query_mutation_and_subscription(server, protocol):
    subject = f"legacy {uuid.uuid4().hex[:8]}"
    async with _client(server, protocol) as session:
        assert session.transport.subprotocol == protocol
        # the schema came over the socket: gql validates documents against it
        assert session.client.schema is not None and session.client.schema.get_type("Ticket") is not None

        latest = await session.execute(GraphQLRequest(LATEST))
        nodes = latest["events"]["nodes"]
        if not nodes:
            await session.execute(GraphQLRequest(CREATE, variable_values={"subject": "first"}))
            nodes = (await session.execute(GraphQLRequest(LATEST)))["events"]["nodes"]
        cursor = nodes[0]["id"]

        created = (await session.execute(GraphQLRequest(CREATE, variable_values={"subject": subject})))["createTicket"]
        assert (created["subject"], created["status"], created["version"]) == (subject, "OPEN", 1)
        read = (await session.execute(GraphQLRequest(TICKET, variable_values={"id": created["id"]})))["ticket"]
        assert read == {"id": created["id"], "subject": subject, "status": "OPEN"}

        # a subscription on the same socket: the replay after the cursor, then live events
        stream = session.subscribe(GraphQLRequest(EVENTS_AFTER, variable_values={"after": cursor}))
        try:
            first = await asyncio.wait_for(anext(stream), WAIT)
            assert first["events"]["target"] == created["id"]
            other = await session.execute(GraphQLRequest(CREATE, variable_values={"subject": subject}))
            second = await asyncio.wait_for(anext(stream), WAIT)
            assert second["events"]["target"] == other["createTicket"]["id"]
        finally:
            await stream.aclose()


async def test_errors_over_graphql_ws_keep_their_codes(server):
    """A client's mistake over graphql-ws is its error, not INTERNAL."""
    async with _client(server, LEGACY_WS) as session:
        with pytest.raises(TransportQueryError) as raised:
            await session.execute(GraphQLRequest(UPDATE, variable_values={"id": "ticket_zzzzzzzz"}))
        codes = [e.get("extensions", {}).get("code") for e in raised.value.errors or []]
        assert codes and set(codes) <= {"NOT_FOUND", "BAD_USER_INPUT"}, raised.value.errors
