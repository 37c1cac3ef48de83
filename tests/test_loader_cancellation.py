"""A field that fails cancels its siblings, never the loads other fields share with them.

graphql-core runs the fields of an object (and the items of a list) together, and when one of
them raises it cancels the others still pending. A task cancelled while it awaits a future
cancels that future. The per-request loaders hand the same future to every field that asks
for the same row, so one failing field cancelled the load a sibling subtree (or a later field,
through the loader's cache) was waiting for: ``CancelledError`` then escaped the execution and
the client got a plain-text 500 instead of an answer with errors. Now a load's future refuses
to be cancelled (resolvers/loaders.py ``SharedLoader``); a task waiting for it still is.
"""

from __future__ import annotations

import asyncio
import uuid

from models.entities import Organization
from resolvers.loaders import Loaders
from tests.live import LiveServer


def _create(server: LiveServer, kind: str, values: dict) -> str:
    document = f"mutation($input: Create{kind}Input!) {{ create{kind}(input: $input) {{ id }} }}"
    return server.data(document, {"input": values})[f"create{kind}"]["id"]


def _ticket(server: LiveServer) -> dict[str, str]:
    """A ticket whose requester and assignee are one contact of an organization."""
    tag = uuid.uuid4().hex[:10]
    org = _create(server, "Organization", {"name": f"Org {tag}"})
    person = _create(server, "Contact", {"name": f"Contact {tag}", "email": f"{tag}@example.com", "organization": org})
    ticket = _create(
        server, "Ticket", {"subject": f"Help {tag}", "requester": person, "assignee": person, "organization": org}
    )
    return {"org": org, "contact": person, "ticket": ticket, "org_name": f"Org {tag}"}


def test_a_failing_field_does_not_cancel_the_load_a_sibling_subtree_shares(server: LiveServer):
    made = _ticket(server)
    # ``assignee`` and ``requester`` are the same row: one loader future. Under it, ``deals``
    # refuses ``first`` with ``last`` while ``organization`` waits for the organization's load,
    # which ``requester { organization }`` waits for too.
    document = """query($id: ID!) { ticket(id: $id) {
        id
        assignee { organization { name } deals(first: 2, last: 2) { totalCount } }
        requester { organization { name } }
    } }"""
    response = server.http.post("/graphql", json={"query": document, "variables": {"id": made["ticket"]}})
    assert response.headers["content-type"].startswith("application/"), response.text
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["path"] == ["ticket", "assignee", "deals"]
    ticket = body["data"]["ticket"]
    assert ticket["id"] == made["ticket"]
    assert ticket["assignee"] is None  # nullable: the error stops there
    assert ticket["requester"] == {"organization": {"name": made["org_name"]}}


def test_failing_rows_of_a_list_do_not_cancel_the_loads_a_sibling_list_shares(server: LiveServer):
    made = _ticket(server)
    more = [
        _create(server, "Ticket", {"subject": f"More {n}", "assignee": made["contact"], "organization": made["org"]})
        for n in range(2)
    ]
    # Both lists are one page (same loader, same arguments). Every row of the first fails through
    # non-null fields (``comments`` refuses ``first`` with ``last``) while its ``organization`` waits
    # for the load the rows of the second list wait for.
    document = """query($id: ID!) { ticket(id: $id) {
        assignee { assignedTickets { nodes { organization { name } comments(first: 1, last: 1) { totalCount } } } }
        requester { assignedTickets { nodes { id organization { name } } } }
    } }"""
    response = server.http.post("/graphql", json={"query": document, "variables": {"id": made["ticket"]}})
    assert response.headers["content-type"].startswith("application/"), response.text
    body = response.json()
    assert body["errors"], body
    for error in body["errors"]:
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        path = error["path"]
        assert path[:4] == ["ticket", "assignee", "assignedTickets", "nodes"] and path[5:] == ["comments"], path
    ticket = body["data"]["ticket"]
    assert ticket["assignee"] is None
    nodes = ticket["requester"]["assignedTickets"]["nodes"]
    assert sorted(n["id"] for n in nodes) == sorted([made["ticket"], *more])
    assert all(n["organization"] == {"name": made["org_name"]} for n in nodes)


def test_a_load_a_failing_field_stopped_waiting_for_is_still_there_for_later_fields(server: LiveServer):
    made = _ticket(server)
    deal = _create(
        server, "Deal", {"name": "A deal", "value": 100.0, "contact": made["contact"], "organization": made["org"]}
    )
    # ``assignee { organization }`` stops waiting for the organization's load when ``deals`` fails;
    # ``requester { deals { nodes { organization } } }`` asks the loader for it one read later,
    # and gets the load it cached.
    document = """query($id: ID!) { ticket(id: $id) {
        assignee { organization { name } deals(first: 2, last: 2) { totalCount } }
        requester { deals { nodes { id organization { name } } } }
    } }"""
    response = server.http.post("/graphql", json={"query": document, "variables": {"id": made["ticket"]}})
    assert response.headers["content-type"].startswith("application/"), response.text
    body = response.json()
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("BAD_USER_INPUT", ["ticket", "assignee", "deals"])
    ]
    assert body["data"]["ticket"] == {
        "assignee": None,
        "requester": {"deals": {"nodes": [{"id": deal, "organization": {"name": made["org_name"]}}]}},
    }


def test_a_waiter_cancelled_is_cancelled_and_the_others_get_the_row(server: LiveServer):
    made = _ticket(server)
    ((tenant,),) = server.sql("SELECT tenant FROM organization WHERE id = :id", id=made["org"])

    async def go() -> tuple[bool, str, str, bool]:
        loader = Loaders(server.services.db, tenant).by_id(Organization)

        async def resolve() -> Organization:  # a resolver's task awaiting the load
            return await loader.load(made["org"])

        leaving, staying = asyncio.create_task(resolve()), asyncio.create_task(resolve())
        await asyncio.sleep(0)  # both wait for the one load now, which has not run yet
        leaving.cancel()
        row = await staying
        cancelled = await asyncio.gather(leaving, return_exceptions=True)
        again = await loader.load(made["org"])  # from the cache
        return isinstance(cancelled[0], asyncio.CancelledError), row.id, again.id, leaving.cancelled()

    assert server.run(go()) == (True, made["org"], made["org"], True)
