"""The limits of graph/validation.py as graphql-core validation rules, run alike by the door, the
schema itself and the compiled path.

- to-many lists (``ticket.issues``, ``ticket.activities``) count in the node budget as
  ``LIST_SIZE`` items each, multiplied like connections;
- the schema refuses an operation over the limits on its own (any transport, any caller);
- the compiled path declines what the schema refuses, so the two cannot disagree;
- fragments are measured once however often they are spread (no 2ⁿ walk).
"""

from __future__ import annotations

import pytest
from graphql import validate

from graph.fastpath import compile_plan
from graph.schema import build_schema
from graph.validation import LIST_SIZE, Limits, limit_rules, parsed, too_complex
from tests.live import LiveServer

NESTED_LISTS = "{ tickets(first: 100) { nodes { activities { ticket { issues { id } } } } } }"
SIDE_BY_SIDE = "{ tickets(first: 100) { nodes { id issues { id } activities { id } } } }"


def test_to_many_lists_count_in_the_node_budget(server: LiveServer):
    error = server.error(NESTED_LISTS)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    # 100 tickets × (LIST_SIZE activities × (1 ticket × LIST_SIZE issues)), each level counted
    assert error["extensions"]["nodes"] == 100 + 100 * (LIST_SIZE + LIST_SIZE * LIST_SIZE)
    assert "nodes" in error["message"] and str(Limits().max_nodes) in error["message"]
    # two lists side by side fit: 100 + 100 × (100 + 100) = 20,100 of 25,000
    assert "tickets" in server.data(SIDE_BY_SIDE)


def test_a_connections_own_nodes_and_edges_are_not_counted_twice():
    schema = build_schema()._schema
    document = parsed("{ tickets(first: 30) { nodes { id } edges { node { id } } } }")
    (error,) = validate(schema, document, limit_rules(Limits(max_nodes=29), {}))
    assert error.extensions["nodes"] == 30


def test_the_schema_refuses_an_operation_over_the_limits_by_itself():
    """No door in front: ``schema.execute_sync`` (as any transport) runs the same rules."""
    tight = build_schema(Limits(max_depth=3, max_aliases=1, max_nodes=50))
    deep = tight.execute_sync("{ tickets { nodes { requester { name } } } }")
    assert [e.extensions["code"] for e in deep.errors] == ["QUERY_TOO_COMPLEX"]
    assert "4 levels deep; the limit is 3" in deep.errors[0].message
    aliased = tight.execute_sync("{ a: __typename b: __typename }")
    assert "2 aliases; the limit is 1" in aliased.errors[0].message
    query = "query($n: Int) { tickets(first: $n) { totalCount } }"
    over = tight.execute_sync(query, variable_values={"n": 51})
    assert over.errors[0].extensions == {"code": "QUERY_TOO_COMPLEX", "depth": 2, "aliases": 0, "nodes": 51}
    within = tight.execute_sync("{ a: __typename }")
    assert within.errors is None and within.data == {"a": "Query"}


def test_the_door_and_the_schema_give_the_same_error():
    limits = Limits(max_nodes=50)
    query = "query($n: Int) { tickets(first: $n) { totalCount } }"
    schema = build_schema(limits)
    at_door = too_complex(limits, parsed(query), schema._schema, {"n": 60}, None)
    in_schema = schema.execute_sync(query, variable_values={"n": 60}).errors[0]
    assert (at_door.message, at_door.extensions) == (in_schema.message, in_schema.extensions)


@pytest.mark.parametrize(
    "document",
    [
        # valid for the compiled path's own checks, but not GraphQL: Strawberry refuses them
        "query($n: Int, $unused: Int) { tickets(first: $n) { nodes { id } } }",
        "{ tickets(first: 5) { nodes { id id: subject } } }",
        # over the limits
        "{ tickets(first: 5) { nodes { " + " ".join(f"a{i}: id" for i in range(31)) + " } } }",
    ],
)
def test_the_compiled_path_declines_what_the_schema_refuses(document: str):
    assert compile_plan(document, None) is None
    assert build_schema().execute_sync(document).errors


def test_the_compiled_path_holds_variable_page_sizes_to_the_budget():
    plan = compile_plan("query($n: Int) { tickets(first: $n) { nodes { id } } }", None, Limits(max_nodes=50))
    assert plan is not None and plan.limits == Limits(max_nodes=50)


def test_fragments_spread_many_times_are_measured_once():
    """Each fragment spreads the next twice: 2⁴⁰ paths, measured in 41 steps."""
    n = 40
    query = "query { ...F0 }\n" + "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    query += f"\nfragment F{n} on Query {{ a: __typename }}"
    error = too_complex(Limits(), parsed(query), build_schema()._schema, {}, None)
    assert error is not None and error.extensions["aliases"] == 2**n
