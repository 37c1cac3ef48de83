"""Reading the graph: filters, ordering, cursors, soft deletes, node(id), reverse relations,
the event log and time travel (asOf), all through the real server.

Every test works on rows it created itself and scopes its queries to them (by id, by a fresh
organization, or by event target), so rows other tests leave in the shared database never
change what it sees. Expected results are computed in Python from the created data.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.live import create_many

# --- helpers -----------------------------------------------------------------------------------

TICKET_FIELDS = """id subject description status priority category channel tags satisfaction
    createdAt updatedAt resolvedAt version requester { id } assignee { id } organization { id }"""

#: Sort rank of a priority: no priority sorts lowest, then LOW < MEDIUM < HIGH < URGENT.
RANK = {None: 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "URGENT": 4}


def uid() -> str:
    return uuid.uuid4().hex[:10]


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def create(server, kind: str, values: dict, fields: str = "id") -> dict:
    """``create{kind}(input: values)``; the fields asked for."""
    op = f"create{kind}"
    document = f"mutation($input: Create{kind}Input!) {{ {op}(input: $input) {{ {fields} }} }}"
    return server.data(document, {"input": values})[op]


def organization(server, **values) -> str:
    return create(server, "Organization", {"name": f"Org {uid()}", **values})["id"]


def contact(server, **values) -> str:
    tag = uid()
    return create(server, "Contact", {"name": f"Contact {tag}", "email": f"{tag}@example.com", **values})["id"]


def flat(ticket: dict) -> dict:
    """A returned ticket with relations as ids and timestamps as datetimes."""
    row = dict(ticket)
    for relation in ("requester", "assignee", "organization"):
        row[relation] = (ticket.get(relation) or {}).get("id")
    for stamp in ("createdAt", "updatedAt", "resolvedAt"):
        row[stamp] = when(ticket.get(stamp))
    return row


def listing(server, plural: str, where: dict | None = None, order_by: list | None = None, **args) -> dict:
    """One page of ``plural``: ``{ids, edges, pageInfo, totalCount}``."""
    kind = "Activity" if plural == "activities" else plural[:-1].capitalize()
    params = {"where": where, "orderBy": order_by, **args}
    types = {
        "where": f"{kind}Where", "orderBy": f"[{kind}Order!]", "first": "Int", "after": "String",
        "last": "Int", "before": "String", "includeDeleted": "Boolean",
    }  # fmt: skip
    given = {k: v for k, v in params.items() if v is not None}
    declared = ", ".join(f"${k}: {types[k]}" for k in given)
    passed = ", ".join(f"{k}: ${k}" for k in given)
    document = f"""query{f"({declared})" if declared else ""} {{ {plural}{f"({passed})" if passed else ""} {{
        edges {{ cursor node {{ id }} }} nodes {{ id }}
        pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} totalCount }} }}"""
    page = server.data(document, given)[plural]
    assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
    return {**page, "ids": [n["id"] for n in page["nodes"]]}


def ticket_ids(server, where: dict, order_by: list | None = None) -> list[str]:
    """All matching tickets (at most 100), checking that totalCount agrees."""
    page = listing(server, "tickets", where, order_by, first=100)
    assert page["totalCount"] == len(page["ids"]), "totalCount must count what the filter matches"
    return page["ids"]


def only(ids: list[str], where: dict) -> dict:
    """``where`` restricted to the given ids (isolation from other tests' rows)."""
    return {"and": [{"id": {"in": ids}}, where]}


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --- the filter catalogue ------------------------------------------------------------------------


@dataclass
class Catalogue:
    """Tickets and deals created for the filter tests, with the ids they reference."""

    tickets: list[dict]
    deals: list[dict]
    c1: str
    c2: str
    org_a: str
    org_b: str

    @property
    def ticket_ids(self) -> list[str]:
        return [t["id"] for t in self.tickets]

    @property
    def deal_ids(self) -> list[str]:
        return [d["id"] for d in self.deals]


@pytest.fixture(scope="module")
def catalogue(server) -> Catalogue:
    """Nine tickets covering every kind of value, nulls included, and five deals."""
    org_a, org_b = organization(server), organization(server)
    c1, c2 = contact(server), contact(server)
    specs = [
        # subject, description, priority, category, channel, tags, satisfaction, requester, assignee, org
        ("Printer jams on tray two", "Paper everywhere", "HIGH", "hardware", "EMAIL", ["printer", "jam"], 2, c1, c2, org_a),
        ("printer offline", None, "LOW", "hardware", "CHAT", ["printer"], 5, c1, None, org_a),
        ("Login fails with SSO", "SAML error 500", "URGENT", "auth", "WEB", ["sso", "login"], 1, c2, c1, org_a),
        ("Invoice total wrong", None, None, "billing", "EMAIL", [], None, None, None, org_a),
        ("Password reset mail missing", "No MAIL arrives", "MEDIUM", None, None, ["login", "mail"], 4, c2, c2, org_a),
        ("Export is 50% slower", "since Tuesday", "HIGH", "performance", "API", ["export"], 3, c1, None, org_a),
        ("export 100% broken", None, None, "performance", "PHONE", ["export", "login"], None, None, c1, org_a),
        ("Other org ticket", None, "LOW", "billing", "EMAIL", ["invoice"], 5, c2, None, org_b),
        ("Orphan ticket", "no org", "MEDIUM", "auth", "CHAT", [], 2, None, None, None),
    ]  # fmt: skip
    keys = ("subject", "description", "priority", "category", "channel", "tags", "satisfaction",
            "requester", "assignee", "organization")  # fmt: skip
    inputs = [{k: v for k, v in zip(keys, spec) if v is not None} for spec in specs]
    tickets = [flat(t) for t in create_many(server, "Ticket", inputs, TICKET_FIELDS)]
    # Give the status and resolvedAt columns some variety.
    moved = server.data(
        f"""mutation($a: ID!, $b: ID!) {{
            a: updateTicket(id: $a, input: {{status: IN_PROGRESS}}) {{ {TICKET_FIELDS} }}
            b: resolveTicket(id: $b) {{ {TICKET_FIELDS} }} }}""",
        {"a": tickets[1]["id"], "b": tickets[2]["id"]},
    )
    tickets[1], tickets[2] = flat(moved["a"]), flat(moved["b"])
    assert [t["status"] for t in tickets[:3]] == ["OPEN", "IN_PROGRESS", "RESOLVED"]
    deal_org = organization(server)
    deals = create_many(
        server,
        "Deal",
        [
            {
                "name": f"Deal {i}",
                "value": value,
                "organization": deal_org,
                **({"probability": p} if p is not None else {}),
            }
            for i, (value, p) in enumerate([(0, None), (99.5, 10), (100, 50), (100.25, None), (2500, 90)])
        ],
        "id value probability",
    )
    return Catalogue(tickets, deals, c1, c2, org_a, org_b)


Case = tuple[str, Callable[[Catalogue], dict], Callable[[Catalogue, dict], bool]]

TICKET_CASES: list[Case] = [
    # strings
    ("subject_eq", lambda d: {"subject": {"eq": "printer offline"}}, lambda d, r: r["subject"] == "printer offline"),
    ("subject_eq_is_exact_case", lambda d: {"subject": {"eq": "Printer Offline"}}, lambda d, r: False),
    ("category_ne_includes_null", lambda d: {"category": {"ne": "hardware"}}, lambda d, r: r["category"] != "hardware"),
    ("category_in", lambda d: {"category": {"in": ["auth", "billing"]}}, lambda d, r: r["category"] in ("auth", "billing")),
    ("category_nin_includes_null", lambda d: {"category": {"nin": ["hardware", "performance"]}},
     lambda d, r: r["category"] not in ("hardware", "performance")),
    ("category_gt", lambda d: {"category": {"gt": "billing"}}, lambda d, r: r["category"] is not None and r["category"] > "billing"),
    ("category_gte", lambda d: {"category": {"gte": "billing"}}, lambda d, r: r["category"] is not None and r["category"] >= "billing"),
    ("category_lt", lambda d: {"category": {"lt": "hardware"}}, lambda d, r: r["category"] is not None and r["category"] < "hardware"),
    ("category_lte", lambda d: {"category": {"lte": "hardware"}}, lambda d, r: r["category"] is not None and r["category"] <= "hardware"),
    ("subject_contains_ignores_case", lambda d: {"subject": {"contains": "PRINTER"}}, lambda d, r: "printer" in r["subject"].lower()),
    ("subject_contains_percent_literally", lambda d: {"subject": {"contains": "0%"}}, lambda d, r: "0%" in r["subject"]),
    ("subject_contains_percent_is_not_a_wildcard", lambda d: {"subject": {"contains": "5%"}}, lambda d, r: False),
    ("subject_contains_underscore_is_not_a_wildcard", lambda d: {"subject": {"contains": "h_S"}}, lambda d, r: False),
    ("description_contains_on_nullable", lambda d: {"description": {"contains": "mail"}},
     lambda d, r: r["description"] is not None and "mail" in r["description"].lower()),
    ("category_isNull_true", lambda d: {"category": {"isNull": True}}, lambda d, r: r["category"] is None),
    ("category_isNull_false", lambda d: {"category": {"isNull": False}}, lambda d, r: r["category"] is not None),
    ("description_isNull_true", lambda d: {"description": {"isNull": True}}, lambda d, r: r["description"] is None),
    # enums
    ("priority_eq", lambda d: {"priority": {"eq": "HIGH"}}, lambda d, r: r["priority"] == "HIGH"),
    ("priority_ne_includes_null", lambda d: {"priority": {"ne": "HIGH"}}, lambda d, r: r["priority"] != "HIGH"),
    ("priority_in", lambda d: {"priority": {"in": ["LOW", "URGENT"]}}, lambda d, r: r["priority"] in ("LOW", "URGENT")),
    ("priority_nin_includes_null", lambda d: {"priority": {"nin": ["HIGH", "MEDIUM"]}},
     lambda d, r: r["priority"] not in ("HIGH", "MEDIUM")),
    ("priority_isNull_true", lambda d: {"priority": {"isNull": True}}, lambda d, r: r["priority"] is None),
    ("priority_isNull_false", lambda d: {"priority": {"isNull": False}}, lambda d, r: r["priority"] is not None),
    ("status_eq", lambda d: {"status": {"eq": "OPEN"}}, lambda d, r: r["status"] == "OPEN"),
    ("status_ne", lambda d: {"status": {"ne": "OPEN"}}, lambda d, r: r["status"] != "OPEN"),
    ("status_in", lambda d: {"status": {"in": ["IN_PROGRESS", "RESOLVED"]}}, lambda d, r: r["status"] in ("IN_PROGRESS", "RESOLVED")),
    ("status_nin", lambda d: {"status": {"nin": ["OPEN"]}}, lambda d, r: r["status"] != "OPEN"),
    ("channel_eq", lambda d: {"channel": {"eq": "EMAIL"}}, lambda d, r: r["channel"] == "EMAIL"),
    ("channel_ne_includes_null", lambda d: {"channel": {"ne": "EMAIL"}}, lambda d, r: r["channel"] != "EMAIL"),
    ("channel_in", lambda d: {"channel": {"in": ["CHAT", "PHONE"]}}, lambda d, r: r["channel"] in ("CHAT", "PHONE")),
    ("channel_nin_includes_null", lambda d: {"channel": {"nin": ["EMAIL", "CHAT"]}}, lambda d, r: r["channel"] not in ("EMAIL", "CHAT")),
    ("channel_isNull_true", lambda d: {"channel": {"isNull": True}}, lambda d, r: r["channel"] is None),
    # ints
    ("satisfaction_eq", lambda d: {"satisfaction": {"eq": 5}}, lambda d, r: r["satisfaction"] == 5),
    ("satisfaction_ne_includes_null", lambda d: {"satisfaction": {"ne": 5}}, lambda d, r: r["satisfaction"] != 5),
    ("satisfaction_in", lambda d: {"satisfaction": {"in": [1, 2]}}, lambda d, r: r["satisfaction"] in (1, 2)),
    ("satisfaction_nin_includes_null", lambda d: {"satisfaction": {"nin": [1, 2]}}, lambda d, r: r["satisfaction"] not in (1, 2)),
    ("satisfaction_gt", lambda d: {"satisfaction": {"gt": 3}}, lambda d, r: r["satisfaction"] is not None and r["satisfaction"] > 3),
    ("satisfaction_gte", lambda d: {"satisfaction": {"gte": 3}}, lambda d, r: r["satisfaction"] is not None and r["satisfaction"] >= 3),
    ("satisfaction_lt", lambda d: {"satisfaction": {"lt": 3}}, lambda d, r: r["satisfaction"] is not None and r["satisfaction"] < 3),
    ("satisfaction_lte", lambda d: {"satisfaction": {"lte": 3}}, lambda d, r: r["satisfaction"] is not None and r["satisfaction"] <= 3),
    ("satisfaction_isNull_true", lambda d: {"satisfaction": {"isNull": True}}, lambda d, r: r["satisfaction"] is None),
    ("satisfaction_isNull_false", lambda d: {"satisfaction": {"isNull": False}}, lambda d, r: r["satisfaction"] is not None),
    ("satisfaction_range_two_operators", lambda d: {"satisfaction": {"gte": 2, "lt": 5}},
     lambda d, r: r["satisfaction"] is not None and 2 <= r["satisfaction"] < 5),
    # datetimes: pivot on the fourth ticket's createdAt
    ("createdAt_eq", lambda d: {"createdAt": {"eq": d.tickets[3]["createdAt"].isoformat()}},
     lambda d, r: r["createdAt"] == d.tickets[3]["createdAt"]),
    ("createdAt_ne", lambda d: {"createdAt": {"ne": d.tickets[3]["createdAt"].isoformat()}},
     lambda d, r: r["createdAt"] != d.tickets[3]["createdAt"]),
    ("createdAt_in", lambda d: {"createdAt": {"in": [d.tickets[0]["createdAt"].isoformat(), d.tickets[6]["createdAt"].isoformat()]}},
     lambda d, r: r["createdAt"] in (d.tickets[0]["createdAt"], d.tickets[6]["createdAt"])),
    ("createdAt_nin", lambda d: {"createdAt": {"nin": [d.tickets[0]["createdAt"].isoformat(), d.tickets[6]["createdAt"].isoformat()]}},
     lambda d, r: r["createdAt"] not in (d.tickets[0]["createdAt"], d.tickets[6]["createdAt"])),
    ("createdAt_gt", lambda d: {"createdAt": {"gt": d.tickets[3]["createdAt"].isoformat()}},
     lambda d, r: r["createdAt"] > d.tickets[3]["createdAt"]),
    ("createdAt_gte", lambda d: {"createdAt": {"gte": d.tickets[3]["createdAt"].isoformat()}},
     lambda d, r: r["createdAt"] >= d.tickets[3]["createdAt"]),
    ("createdAt_lt", lambda d: {"createdAt": {"lt": d.tickets[3]["createdAt"].isoformat()}},
     lambda d, r: r["createdAt"] < d.tickets[3]["createdAt"]),
    ("createdAt_lte", lambda d: {"createdAt": {"lte": d.tickets[3]["createdAt"].isoformat()}},
     lambda d, r: r["createdAt"] <= d.tickets[3]["createdAt"]),
    ("createdAt_in_another_zone", lambda d: {"createdAt": {"eq": d.tickets[3]["createdAt"].astimezone(
        datetime.fromisoformat("2026-01-01T00:00:00+05:30").tzinfo).isoformat()}},
     lambda d, r: r["createdAt"] == d.tickets[3]["createdAt"]),
    ("resolvedAt_isNull_false", lambda d: {"resolvedAt": {"isNull": False}}, lambda d, r: r["resolvedAt"] is not None),
    ("resolvedAt_lte_excludes_null", lambda d: {"resolvedAt": {"lte": d.tickets[2]["resolvedAt"].isoformat()}},
     lambda d, r: r["resolvedAt"] is not None and r["resolvedAt"] <= d.tickets[2]["resolvedAt"]),
    # relations, by id
    ("requester_eq", lambda d: {"requester": {"eq": d.c1}}, lambda d, r: r["requester"] == d.c1),
    ("requester_ne_includes_null", lambda d: {"requester": {"ne": d.c1}}, lambda d, r: r["requester"] != d.c1),
    ("requester_in", lambda d: {"requester": {"in": [d.c1, d.c2]}}, lambda d, r: r["requester"] in (d.c1, d.c2)),
    ("requester_nin_includes_null", lambda d: {"requester": {"nin": [d.c2]}}, lambda d, r: r["requester"] != d.c2),
    ("requester_isNull_true", lambda d: {"requester": {"isNull": True}}, lambda d, r: r["requester"] is None),
    ("assignee_eq", lambda d: {"assignee": {"eq": d.c2}}, lambda d, r: r["assignee"] == d.c2),
    ("assignee_isNull_false", lambda d: {"assignee": {"isNull": False}}, lambda d, r: r["assignee"] is not None),
    ("organization_eq", lambda d: {"organization": {"eq": d.org_b}}, lambda d, r: r["organization"] == d.org_b),
    ("organization_ne_includes_null", lambda d: {"organization": {"ne": d.org_a}}, lambda d, r: r["organization"] != d.org_a),
    ("organization_in", lambda d: {"organization": {"in": [d.org_a, d.org_b]}}, lambda d, r: r["organization"] in (d.org_a, d.org_b)),
    ("organization_nin_includes_null", lambda d: {"organization": {"nin": [d.org_b]}}, lambda d, r: r["organization"] != d.org_b),
    ("organization_isNull_true", lambda d: {"organization": {"isNull": True}}, lambda d, r: r["organization"] is None),
    ("organization_unknown_id_matches_nothing", lambda d: {"organization": {"eq": "organization_zzzzzzzz"}}, lambda d, r: False),
    # ids
    ("id_eq", lambda d: {"id": {"eq": d.ticket_ids[0]}}, lambda d, r: r["id"] == d.ticket_ids[0]),
    ("id_ne", lambda d: {"id": {"ne": d.ticket_ids[0]}}, lambda d, r: r["id"] != d.ticket_ids[0]),
    ("id_nin", lambda d: {"id": {"nin": d.ticket_ids[1:3]}}, lambda d, r: r["id"] not in d.ticket_ids[1:3]),
    # tags
    ("tags_hasAny_one", lambda d: {"tags": {"hasAny": ["login"]}}, lambda d, r: "login" in r["tags"]),
    ("tags_hasAny_several", lambda d: {"tags": {"hasAny": ["printer", "export"]}},
     lambda d, r: bool({"printer", "export"} & set(r["tags"]))),
    ("tags_hasAny_unknown", lambda d: {"tags": {"hasAny": ["no-such-tag"]}}, lambda d, r: False),
    ("tags_hasAny_empty_matches_nothing", lambda d: {"tags": {"hasAny": []}}, lambda d, r: False),
    # combinators
    ("two_fields_are_anded", lambda d: {"priority": {"eq": "HIGH"}, "channel": {"eq": "API"}},
     lambda d, r: r["priority"] == "HIGH" and r["channel"] == "API"),
    ("and", lambda d: {"and": [{"priority": {"in": ["HIGH", "URGENT"]}}, {"category": {"eq": "hardware"}}]},
     lambda d, r: r["priority"] in ("HIGH", "URGENT") and r["category"] == "hardware"),
    ("and_empty_matches_all", lambda d: {"and": []}, lambda d, r: True),
    ("or", lambda d: {"or": [{"priority": {"eq": "URGENT"}}, {"satisfaction": {"eq": 5}}]},
     lambda d, r: r["priority"] == "URGENT" or r["satisfaction"] == 5),
    ("or_empty_matches_nothing", lambda d: {"or": []}, lambda d, r: False),
    ("not_on_non_null_field", lambda d: {"not": {"status": {"eq": "OPEN"}}}, lambda d, r: r["status"] != "OPEN"),
    ("not_of_tags", lambda d: {"not": {"tags": {"hasAny": ["login"]}}}, lambda d, r: "login" not in r["tags"]),
    ("not_of_isNull", lambda d: {"not": {"priority": {"isNull": True}}}, lambda d, r: r["priority"] is not None),
    ("nested_or_of_and_and_not", lambda d: {"or": [
        {"and": [{"channel": {"eq": "EMAIL"}}, {"priority": {"isNull": False}}]},
        {"not": {"or": [{"status": {"eq": "OPEN"}}, {"tags": {"hasAny": ["login"]}}]}},
    ]}, lambda d, r: (r["channel"] == "EMAIL" and r["priority"] is not None)
        or not (r["status"] == "OPEN" or "login" in r["tags"])),
]  # fmt: skip

#: ``not`` over a nullable column: SQL's three-valued logic turns NOT(NULL = x) into NULL, so a
#: naive NOT drops the rows where the column is null although they do not match the inner filter.
NOT_NULLABLE_CASES: list[Case] = [
    ("not_eq_includes_null", lambda d: {"not": {"priority": {"eq": "HIGH"}}}, lambda d, r: r["priority"] != "HIGH"),
    ("not_gt_includes_null", lambda d: {"not": {"satisfaction": {"gt": 3}}},
     lambda d, r: not (r["satisfaction"] is not None and r["satisfaction"] > 3)),
    ("not_contains_includes_null", lambda d: {"not": {"description": {"contains": "mail"}}},
     lambda d, r: not (r["description"] is not None and "mail" in r["description"].lower())),
    ("not_relation_eq_includes_null", lambda d: {"not": {"requester": {"eq": d.c1}}}, lambda d, r: r["requester"] != d.c1),
    ("or_of_x_and_not_x_is_everything", lambda d: {"or": [{"category": {"eq": "auth"}}, {"not": {"category": {"eq": "auth"}}}]},
     lambda d, r: True),
]  # fmt: skip


def _check_ticket_case(server, catalogue: Catalogue, build, predicate) -> None:
    where = build(catalogue)
    expected = [t["id"] for t in catalogue.tickets if predicate(catalogue, t)]
    assert ticket_ids(server, only(catalogue.ticket_ids, where)) == expected, where


@pytest.mark.parametrize(("build", "predicate"), [c[1:] for c in TICKET_CASES], ids=[c[0] for c in TICKET_CASES])
def test_ticket_filter(server, catalogue, build, predicate):
    _check_ticket_case(server, catalogue, build, predicate)


@pytest.mark.parametrize(
    ("build", "predicate"), [c[1:] for c in NOT_NULLABLE_CASES], ids=[c[0] for c in NOT_NULLABLE_CASES]
)
def test_ticket_filter_not_over_nullable_column(server, catalogue, build, predicate):
    _check_ticket_case(server, catalogue, build, predicate)


def test_catalogue_filters_are_not_vacuous(catalogue):
    """Every case above selects a proper, non-trivial subset unless it says it matches nothing/all."""
    trivial = {"subject_eq_is_exact_case", "subject_contains_percent_is_not_a_wildcard",
               "subject_contains_underscore_is_not_a_wildcard", "tags_hasAny_unknown",
               "tags_hasAny_empty_matches_nothing", "or_empty_matches_nothing", "and_empty_matches_all",
               "organization_unknown_id_matches_nothing"}  # fmt: skip
    for name, _build, predicate in TICKET_CASES + NOT_NULLABLE_CASES:
        matched = sum(predicate(catalogue, t) for t in catalogue.tickets)
        if name not in trivial and name != "or_of_x_and_not_x_is_everything":
            assert 0 < matched < len(catalogue.tickets), name


DEAL_CASES = [
    ("value_eq", {"value": {"eq": 100.25}}, lambda r: r["value"] == 100.25),
    ("value_eq_int_literal", {"value": {"eq": 100}}, lambda r: r["value"] == 100),
    ("value_ne", {"value": {"ne": 100}}, lambda r: r["value"] != 100),
    ("value_in", {"value": {"in": [0, 2500]}}, lambda r: r["value"] in (0, 2500)),
    ("value_nin", {"value": {"nin": [0, 2500]}}, lambda r: r["value"] not in (0, 2500)),
    ("value_gt", {"value": {"gt": 100}}, lambda r: r["value"] > 100),
    ("value_gte", {"value": {"gte": 100}}, lambda r: r["value"] >= 100),
    ("value_lt", {"value": {"lt": 100}}, lambda r: r["value"] < 100),
    ("value_lte", {"value": {"lte": 99.5}}, lambda r: r["value"] <= 99.5),
    ("value_between_fractions", {"value": {"gt": 99.75, "lt": 100.5}}, lambda r: 99.75 < r["value"] < 100.5),
    ("probability_ne_includes_null", {"probability": {"ne": 50}}, lambda r: r["probability"] != 50),
    ("probability_isNull_true", {"probability": {"isNull": True}}, lambda r: r["probability"] is None),
]


@pytest.mark.parametrize(("where", "predicate"), [c[1:] for c in DEAL_CASES], ids=[c[0] for c in DEAL_CASES])
def test_deal_float_filter(server, catalogue, where, predicate):
    expected = [d["id"] for d in catalogue.deals if predicate(d)]
    assert 0 < len(expected) < len(catalogue.deals), "a case that selects a proper subset"
    page = listing(server, "deals", only(catalogue.deal_ids, where), first=100)
    assert page["ids"] == expected and page["totalCount"] == len(expected)


def test_filter_of_an_unknown_enum_value_is_refused(server):
    err = server.error("{ tickets(where: {priority: {eq: CRITICAL}}) { totalCount } }")
    assert err["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED")


# --- ordering ------------------------------------------------------------------------------------


def expected_order(rows: list[dict], keys: list[tuple[str, bool]]) -> list[str]:
    """Rows sorted by ``keys`` ([(field, descending)]); the id breaks ties, in the last key's direction.
    No keys: oldest first."""
    keys = keys or [("CREATED_AT", False)]
    value = {
        "PRIORITY": lambda r: RANK[r["priority"]],
        "SUBJECT": lambda r: r["subject"],
        "CREATED_AT": lambda r: r["createdAt"],
    }
    ordered = sorted(rows, key=lambda r: r["id"], reverse=keys[-1][1] if keys else False)
    for field, descending in reversed(keys):
        ordered = sorted(ordered, key=value[field], reverse=descending)  # stable
    return [r["id"] for r in ordered]


@pytest.fixture(scope="module")
def ordered(server) -> tuple[str, list[dict]]:
    """Tickets of one fresh organization with ties in subject and priority (lowercase subjects,
    so byte order and collation order agree)."""
    org = organization(server)
    specs = [("delta", "HIGH"), ("alpha", None), ("charlie", "LOW"), ("bravo", "URGENT"), ("alpha", "MEDIUM"),
             ("echo", "HIGH"), ("bravo", None), ("foxtrot", "LOW"), ("delta", "HIGH")]  # fmt: skip
    inputs = [{"subject": s, "organization": org, **({"priority": p} if p else {})} for s, p in specs]
    rows = [flat(t) for t in create_many(server, "Ticket", inputs, TICKET_FIELDS)]
    assert [(r["subject"], r["priority"]) for r in rows] == specs
    return org, rows


ORDERS = [
    [("PRIORITY", False)],
    [("PRIORITY", True)],
    [("SUBJECT", False)],
    [("SUBJECT", True)],
    [("CREATED_AT", False)],
    [("CREATED_AT", True)],
    [("PRIORITY", True), ("SUBJECT", False)],
    [("SUBJECT", False), ("PRIORITY", True)],
    [("PRIORITY", False), ("CREATED_AT", True)],
    [("SUBJECT", True), ("PRIORITY", False)],
]


def order_arg(keys: list[tuple[str, bool]]) -> list[dict]:
    return [{"field": f, "direction": "DESC" if d else "ASC"} for f, d in keys]


@pytest.mark.parametrize(
    "keys", ORDERS, ids=lambda keys: "_then_".join(f"{f}_{'DESC' if d else 'ASC'}" for f, d in keys)
)
def test_order_by(server, ordered, keys):
    org, rows = ordered
    assert ticket_ids(server, {"organization": {"eq": org}}, order_arg(keys)) == expected_order(rows, keys)


def test_default_order_is_oldest_first(server, ordered):
    org, rows = ordered
    assert ticket_ids(server, {"organization": {"eq": org}}) == [r["id"] for r in rows]
    assert ticket_ids(server, {"organization": {"eq": org}}, []) == [r["id"] for r in rows]


def test_priority_order_is_enum_order_with_null_lowest(server, ordered):
    org, rows = ordered
    ids = ticket_ids(server, {"organization": {"eq": org}}, order_arg([("PRIORITY", False)]))
    by_id = {r["id"]: r for r in rows}
    priorities = [by_id[i]["priority"] for i in ids]
    assert priorities == [None, None, "LOW", "LOW", "MEDIUM", "HIGH", "HIGH", "HIGH", "URGENT"]
    # Ties (the two LOWs, the three HIGHs) come in id order.
    for level in (None, "LOW", "HIGH"):
        group = [i for i in ids if by_id[i]["priority"] == level]
        assert group == sorted(group)
    descending = ticket_ids(server, {"organization": {"eq": org}}, order_arg([("PRIORITY", True)]))
    assert descending == ids[::-1]


def test_direction_defaults_to_asc(server, ordered):
    org, _ = ordered
    where = {"organization": {"eq": org}}
    assert ticket_ids(server, where, [{"field": "SUBJECT"}]) == ticket_ids(
        server, where, order_arg([("SUBJECT", False)])
    )


# --- pagination ----------------------------------------------------------------------------------


def walk(server, where: dict, order_by: list | None, size: int, *, backward: bool = False) -> list[dict]:
    """Every page, following the cursors forward (first/after) or backward (last/before)."""
    size_arg, cursor_arg, more, cursor_field = (
        ("last", "before", "hasPreviousPage", "startCursor") if backward
        else ("first", "after", "hasNextPage", "endCursor")
    )  # fmt: skip
    pages, cursor = [], None
    for _ in range(50):
        page = listing(server, "tickets", where, order_by, **{size_arg: size, cursor_arg: cursor})
        pages.append(page)
        if not page["pageInfo"][more]:
            return pages
        cursor = page["pageInfo"][cursor_field]
    raise AssertionError(f"{'backward' if backward else 'forward'} walk did not end")


def check_page_cursors(page: dict) -> None:
    info, edges = page["pageInfo"], page["edges"]
    assert info["startCursor"] == edges[0]["cursor"] and info["endCursor"] == edges[-1]["cursor"]


@pytest.mark.parametrize(
    "keys",
    [pytest.param([], id="default"),
     pytest.param([("PRIORITY", True), ("SUBJECT", False)], id="PRIORITY_DESC_then_SUBJECT"),
     pytest.param([("SUBJECT", True)], id="SUBJECT_DESC"),
     pytest.param([("CREATED_AT", True)], id="CREATED_AT_DESC")],
)  # fmt: skip
@pytest.mark.parametrize("size", [1, 2, 4])
def test_walk_all_pages_both_ways(server, ordered, keys, size):
    org, rows = ordered
    where = {"organization": {"eq": org}}
    order_by = order_arg(keys) if keys else None
    full = expected_order(rows, keys) if keys else [r["id"] for r in rows]
    assert ticket_ids(server, where, order_by) == full
    pages_needed = -(-len(full) // size)

    forward = walk(server, where, order_by, size)
    assert [i for p in forward for i in p["ids"]] == full
    assert len(forward) == pages_needed
    for n, page in enumerate(forward):
        assert page["totalCount"] == len(full)
        assert page["ids"] == full[n * size : (n + 1) * size]
        assert page["pageInfo"]["hasNextPage"] == (n < pages_needed - 1)
        assert page["pageInfo"]["hasPreviousPage"] == (n > 0)
        check_page_cursors(page)

    backward = walk(server, where, order_by, size, backward=True)
    assert [i for p in reversed(backward) for i in p["ids"]] == full
    assert len(backward) == pages_needed
    for n, page in enumerate(backward):
        end = len(full) - n * size
        assert page["ids"] == full[max(0, end - size) : end]
        assert page["totalCount"] == len(full)
        assert page["pageInfo"]["hasPreviousPage"] == (n < pages_needed - 1)
        assert page["pageInfo"]["hasNextPage"] == (n > 0)
        check_page_cursors(page)


@pytest.mark.parametrize(
    "keys",
    [pytest.param([("PRIORITY", False), ("SUBJECT", True)], id="PRIORITY_then_SUBJECT_DESC"),
     pytest.param([("PRIORITY", False), ("CREATED_AT", True)], id="PRIORITY_then_CREATED_AT_DESC"),
     pytest.param([], id="default")],
)  # fmt: skip
def test_every_cursor_splits_the_list(server, ordered, keys):
    """after: X gives everything past X; before: X everything ahead of it — for every edge."""
    org, rows = ordered
    where = {"organization": {"eq": org}}
    full = listing(server, "tickets", where, order_arg(keys), first=100)
    assert full["ids"] == expected_order(rows, keys)
    for i, edge in enumerate(full["edges"]):
        after = listing(server, "tickets", where, order_arg(keys), first=100, after=edge["cursor"])
        assert after["ids"] == full["ids"][i + 1 :]
        assert after["totalCount"] == len(full["ids"]), "totalCount ignores the cursor"
        before = listing(server, "tickets", where, order_arg(keys), last=100, before=edge["cursor"])
        assert before["ids"] == full["ids"][:i]


def test_empty_pages(server, ordered):
    org, rows = ordered
    where = {"organization": {"eq": org}}
    by_subject = order_arg([("SUBJECT", False)])
    last = listing(server, "tickets", where, by_subject, first=100)["pageInfo"]["endCursor"]
    past = listing(server, "tickets", where, by_subject, first=5, after=last)
    assert past["ids"] == [] and past["totalCount"] == len(rows)
    assert past["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True, "startCursor": None, "endCursor": None}
    nothing = listing(server, "tickets", {"organization": {"eq": "organization_zzzzzzzz"}}, first=5)
    assert nothing["ids"] == [] and nothing["totalCount"] == 0
    assert nothing["pageInfo"]["hasNextPage"] is False and nothing["pageInfo"]["hasPreviousPage"] is False
    zero = listing(server, "tickets", where, first=0)
    assert zero["ids"] == [] and zero["totalCount"] == len(rows)


def test_default_page_size_is_20(server):
    org = organization(server)
    made = create_many(server, "Ticket", [{"subject": f"page {n:02}", "organization": org} for n in range(25)])
    page = listing(server, "tickets", {"organization": {"eq": org}})
    assert page["ids"] == [t["id"] for t in made[:20]]
    assert page["totalCount"] == 25 and page["pageInfo"]["hasNextPage"] is True
    by_subject = order_arg([("SUBJECT", False)])  # "page 00" … "page 24": creation order again
    ordered_page = listing(server, "tickets", {"organization": {"eq": org}}, by_subject)
    assert ordered_page["ids"] == page["ids"]
    rest = listing(
        server, "tickets", {"organization": {"eq": org}}, by_subject, after=ordered_page["pageInfo"]["endCursor"]
    )
    assert rest["ids"] == [t["id"] for t in made[20:]] and rest["pageInfo"]["hasNextPage"] is False
    nested = server.data(
        "query($id: ID!) { organization(id: $id) { tickets { nodes { id } totalCount } } }", {"id": org}
    )
    assert len(nested["organization"]["tickets"]["nodes"]) == 20
    assert nested["organization"]["tickets"]["totalCount"] == 25
    hundred = listing(server, "tickets", {"organization": {"eq": org}}, first=100)
    assert len(hundred["ids"]) == 25


@pytest.mark.parametrize(
    "args",
    [{"first": 101}, {"first": -1}, {"last": 101}, {"last": -1}, {"first": 5, "last": 5}],
    ids=["first_101", "first_negative", "last_101", "last_negative", "first_and_last"],
)
def test_page_size_out_of_range_is_bad_input(server, args):
    params = ", ".join(f"{k}: {v}" for k, v in args.items())
    for document in (
        f"{{ tickets({params}) {{ nodes {{ id }} }} }}",
        f"{{ organizations({params}) {{ nodes {{ id }} }} }}",
        f"{{ events({params}) {{ nodes {{ id }} }} }}",
    ):
        err = server.error(document)
        assert err["extensions"]["code"] == "BAD_USER_INPUT", (document, err)
    org = organization(server)
    err = server.error(
        f"query($id: ID!) {{ organization(id: $id) {{ contacts({params}) {{ totalCount }} }} }}", {"id": org}
    )
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_huge_page_is_refused(server):
    """Far past the cap, the complexity limit may answer before the page-size check does."""
    err = server.error("{ tickets(first: 1000000) { nodes { id } } }")
    assert err["extensions"]["code"] in ("BAD_USER_INPUT", "QUERY_TOO_COMPLEX")


MALFORMED_CURSORS = {
    "not_base64": "!!!not a cursor!!!",
    "base64_of_garbage": base64.urlsafe_b64encode(b"\x00\xffnot json").decode(),
    "json_not_a_list": b64({"created_at": "2026-01-01"}),
    "wrong_length": b64(["2026-01-01T00:00:00+00:00", "ticket_abcdefgh", 3]),
    "wrong_type": b64([12, 34]),
    "null_values": b64([None, None]),
}


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS.values(), ids=MALFORMED_CURSORS.keys())
@pytest.mark.parametrize("direction", ["after", "before"])
def test_malformed_cursor_is_bad_input(server, cursor, direction):
    size = "first" if direction == "after" else "last"
    err = server.error(
        f"query($c: String) {{ tickets({size}: 5, {direction}: $c) {{ nodes {{ id }} }} }}", {"c": cursor}
    )
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


def test_cursor_with_a_non_date_where_a_date_belongs_is_bad_input(server):
    cursor = b64(["not a date", "ticket_abcdefgh"])
    err = server.error("query($c: String) { tickets(first: 5, after: $c) { nodes { id } } }", {"c": cursor})
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


def test_cursor_of_another_ordering_is_bad_input(server, ordered):
    org, _ = ordered
    where = {"organization": {"eq": org}}
    cursor = listing(server, "tickets", where, order_arg([("PRIORITY", False), ("SUBJECT", False)]), first=2)[
        "pageInfo"
    ]["endCursor"]
    err = server.error(
        "query($w: TicketWhere, $c: String) { tickets(where: $w, first: 2, after: $c) { nodes { id } } }",
        {"w": where, "c": cursor},
    )
    assert err["extensions"]["code"] == "BAD_USER_INPUT"


# --- soft deletes ---------------------------------------------------------------------------------


def test_deleted_rows_are_hidden_unless_asked_for(server):
    org = organization(server)
    made = create_many(server, "Ticket", [{"subject": f"deletable {n}", "organization": org} for n in range(3)])
    ids = [t["id"] for t in made]
    gone = server.data("mutation($id: ID!) { deleteTicket(id: $id) { id deletedAt } }", {"id": ids[1]})["deleteTicket"]
    assert gone["deletedAt"] is not None
    where = {"organization": {"eq": org}}

    visible = listing(server, "tickets", where, first=10)
    assert visible["ids"] == [ids[0], ids[2]] and visible["totalCount"] == 2
    everything = listing(server, "tickets", where, first=10, includeDeleted=True)
    assert everything["ids"] == ids and everything["totalCount"] == 3
    assert listing(server, "tickets", where, first=10, includeDeleted=False)["ids"] == [ids[0], ids[2]]

    one = "query($id: ID!) { ticket(id: $id) { id } node(id: $id) { id } }"
    assert server.data(one, {"id": ids[1]}) == {"ticket": None, "node": None}
    assert server.data(one, {"id": ids[0]}) == {"ticket": {"id": ids[0]}, "node": {"id": ids[0]}}

    nested = server.data(
        """query($id: ID!) { organization(id: $id) {
            live: tickets { totalCount nodes { id } }
            all: tickets(includeDeleted: true) { totalCount nodes { id deletedAt } } } }""",
        {"id": org},
    )["organization"]
    assert [n["id"] for n in nested["live"]["nodes"]] == [ids[0], ids[2]] and nested["live"]["totalCount"] == 2
    assert [n["id"] for n in nested["all"]["nodes"]] == ids and nested["all"]["totalCount"] == 3
    assert [n["deletedAt"] is not None for n in nested["all"]["nodes"]] == [False, True, False]


# --- node(id) ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_of_each(server) -> dict[str, str]:
    """An id of every entity type, and of an event."""
    org = organization(server)
    person = contact(server, organization=org)
    ids = {"Organization": org, "Contact": person}
    ids["Deal"] = create(server, "Deal", {"name": "Node deal", "value": 10, "organization": org})["id"]
    ids["Subscription"] = create(
        server, "Subscription", {"startedAt": "2026-01-01T00:00:00+00:00", "organization": org, "plan": "team"}
    )["id"]
    ids["Ticket"] = create(server, "Ticket", {"subject": "Node ticket", "organization": org, "requester": person})["id"]
    ids["Issue"] = create(server, "Issue", {"title": "Node issue", "ticket": ids["Ticket"]})["id"]
    ids["Activity"] = create(server, "Activity", {"subject": "Node call", "type": "CALL", "contact": person})["id"]
    ids["Metric"] = create(server, "Metric", {"name": "node.metric", "value": 1.5})["id"]
    events = server.data("query($id: ID!) { ticket(id: $id) { events { nodes { id } } } }", {"id": ids["Ticket"]})
    ids["Event"] = events["ticket"]["events"]["nodes"][0]["id"]
    return ids


@pytest.mark.parametrize(
    "kind", ["Organization", "Contact", "Deal", "Subscription", "Ticket", "Issue", "Activity", "Metric", "Event"]
)
def test_node_resolves_every_type(server, one_of_each, kind):
    id_ = one_of_each[kind]
    assert id_.startswith("evt_" if kind == "Event" else kind.lower() + "_")
    found = server.data(
        """query($id: ID!) { node(id: $id) { __typename id
            ... on Ticket { subject } ... on Event { type target } ... on Organization { name } } }""",
        {"id": id_},
    )["node"]
    assert found["__typename"] == kind and found["id"] == id_
    if kind == "Ticket":
        assert found["subject"] == "Node ticket"
    if kind == "Event":
        assert found["type"] == "Ticket.Created" and found["target"] == one_of_each["Ticket"]


@pytest.mark.parametrize(
    "id_",
    ["ticket_zzzzzzzz", "evt_zzzzzzzzz", "organization_ABCDEFGH", "widget_abcdefgh", "ticket_", "ticket", "", "nope",
     "ticket_abc!defgh", "TICKET_abcdefgh", "ticket_abcdefghijklmnop", "'; DROP TABLE ticket; --"],
)  # fmt: skip
def test_node_of_an_unknown_or_malformed_id_is_null(server, id_):
    assert server.data("query($id: ID!) { node(id: $id) { id } }", {"id": id_}) == {"node": None}


def test_one_entity_by_an_id_of_another_type_is_null(server, one_of_each):
    pairs = [("ticket", "Contact"), ("contact", "Ticket"), ("organization", "Deal"), ("deal", "Organization"),
             ("subscription", "Ticket"), ("issue", "Activity"), ("activity", "Issue"), ("metric", "Event"),
             ("event", "Ticket"), ("ticket", "Event")]  # fmt: skip
    for field, kind in pairs:
        got = server.data(f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": one_of_each[kind]})
        assert got == {field: None}, (field, kind)
    # and each one by its own kind is found
    for field, kind in [("ticket", "Ticket"), ("contact", "Contact"), ("event", "Event"), ("metric", "Metric")]:
        got = server.data(f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": one_of_each[kind]})
        assert got == {field: {"id": one_of_each[kind]}}


# --- reverse relations ----------------------------------------------------------------------------


def test_reverse_relations_are_connections(server):
    parent, other = organization(server), organization(server)
    ann, bob, cat = (contact(server, organization=parent, name=n) for n in ("Ann Archer", "Bob Baker", "Cat Cooper"))
    contact(server, organization=other, name="Xavier Elsewhere")
    sub1, sub2 = organization(server, parent=parent), organization(server, parent=parent)
    organization(server, parent=other)
    d1 = create(server, "Deal", {"name": "Big one", "value": 5000, "organization": parent})["id"]
    d2 = create(server, "Deal", {"name": "Small one", "value": 50, "organization": parent})["id"]
    create(server, "Deal", {"name": "Not ours", "value": 1, "organization": other})
    s1 = create(server, "Subscription", {"startedAt": "2026-01-01T00:00:00Z", "organization": parent, "plan": "team"})[
        "id"
    ]
    s2 = create(server, "Subscription", {"startedAt": "2026-02-01T00:00:00Z", "organization": parent, "plan": "pro"})[
        "id"
    ]
    t1, t2, t3 = (
        create(server, "Ticket", {"subject": s, "organization": parent, **rel})["id"]
        for s, rel in [("one", {"requester": ann, "assignee": bob, "deal": d1, "priority": "HIGH"}),
                       ("two", {"requester": ann, "deal": d1}),
                       ("three", {"requester": bob, "assignee": ann, "priority": "LOW"})]
    )  # fmt: skip
    create(server, "Ticket", {"subject": "elsewhere", "organization": other, "requester": ann, "deal": d1})

    org = server.data(
        """query($id: ID!) { organization(id: $id) {
            contacts { totalCount nodes { id } }
            ann: contacts(where: {name: {contains: "ann"}}) { totalCount nodes { id } }
            firstTwo: contacts(first: 2, orderBy: [{field: NAME}]) { totalCount nodes { id } pageInfo { hasNextPage endCursor } }
            lastOne: contacts(last: 1) { nodes { id } pageInfo { hasPreviousPage hasNextPage } }
            tickets { totalCount nodes { id } }
            high: tickets(where: {priority: {eq: HIGH}}) { totalCount nodes { id } }
            byPriority: tickets(orderBy: [{field: PRIORITY, direction: DESC}]) { nodes { id } }
            deals { totalCount nodes { id } }
            bigDeals: deals(where: {name: {contains: "BIG"}}) { totalCount nodes { id } }
            subscriptions { totalCount nodes { id } }
            pro: subscriptions(where: {plan: {eq: "pro"}}) { totalCount nodes { id } }
            subsidiaries { totalCount nodes { id } }
        } }""",
        {"id": parent},
    )["organization"]

    def ids(conn: dict) -> list[str]:
        return [n["id"] for n in conn["nodes"]]

    assert ids(org["contacts"]) == [ann, bob, cat] and org["contacts"]["totalCount"] == 3
    assert ids(org["ann"]) == [ann] and org["ann"]["totalCount"] == 1
    assert ids(org["firstTwo"]) == [ann, bob] and org["firstTwo"]["totalCount"] == 3
    assert org["firstTwo"]["pageInfo"]["hasNextPage"] is True
    assert ids(org["lastOne"]) == [cat] and org["lastOne"]["pageInfo"]["hasPreviousPage"] is True
    assert ids(org["tickets"]) == [t1, t2, t3] and org["tickets"]["totalCount"] == 3
    assert ids(org["high"]) == [t1] and org["high"]["totalCount"] == 1
    assert ids(org["byPriority"]) == [t1, t3, t2]
    assert ids(org["deals"]) == [d1, d2] and org["deals"]["totalCount"] == 2
    assert ids(org["bigDeals"]) == [d1]
    assert ids(org["subscriptions"]) == [s1, s2] and ids(org["pro"]) == [s2]
    assert ids(org["subsidiaries"]) == [sub1, sub2] and org["subsidiaries"]["totalCount"] == 2

    rest = server.data(
        """query($id: ID!, $c: String) { organization(id: $id) {
            contacts(first: 2, after: $c, orderBy: [{field: NAME}]) { nodes { id } pageInfo { hasNextPage } } } }""",
        {"id": parent, "c": org["firstTwo"]["pageInfo"]["endCursor"]},
    )["organization"]["contacts"]
    assert ids(rest) == [cat] and rest["pageInfo"]["hasNextPage"] is False

    people = server.data(
        """query($ann: ID!, $bob: ID!, $d1: ID!, $org: ID!) {
            ann: contact(id: $ann) { tickets { totalCount nodes { id } } assignedTickets { totalCount nodes { id } }
                                     open: tickets(where: {status: {eq: OPEN}}, first: 1) { totalCount nodes { id } } }
            bob: contact(id: $bob) { tickets { totalCount nodes { id } } assignedTickets { totalCount nodes { id } } }
            deal: deal(id: $d1) { tickets { totalCount nodes { id } } firstOnly: tickets(first: 1) { totalCount nodes { id } }
                                  mine: tickets(where: {organization: {eq: $org}}) { totalCount nodes { id } } }
        }""",
        {"ann": ann, "bob": bob, "d1": d1, "org": parent},
    )
    elsewhere = ticket_ids(server, {"organization": {"eq": other}})
    assert ids(people["ann"]["tickets"]) == [t1, t2, *elsewhere] and people["ann"]["tickets"]["totalCount"] == 3
    assert ids(people["ann"]["assignedTickets"]) == [t3]
    assert ids(people["ann"]["open"]) == [t1] and people["ann"]["open"]["totalCount"] == 3
    assert ids(people["bob"]["tickets"]) == [t3] and ids(people["bob"]["assignedTickets"]) == [t1]
    assert ids(people["deal"]["tickets"]) == [t1, t2, *elsewhere] and people["deal"]["tickets"]["totalCount"] == 3
    assert ids(people["deal"]["firstOnly"]) == [t1] and people["deal"]["firstOnly"]["totalCount"] == 3
    assert ids(people["deal"]["mine"]) == [t1, t2] and people["deal"]["mine"]["totalCount"] == 2


def test_ticket_issues_and_activities_lists(server):
    ticket = create(server, "Ticket", {"subject": "Lists of things"})["id"]
    other = create(server, "Ticket", {"subject": "Someone else's"})["id"]
    i1 = create(server, "Issue", {"title": "first issue", "ticket": ticket})["id"]
    create(server, "Issue", {"title": "not this one", "ticket": other})
    i2 = create(server, "Issue", {"title": "second issue", "ticket": ticket})["id"]
    a1 = create(server, "Activity", {"subject": "Call back", "type": "CALL", "ticket": ticket})["id"]
    dropped = create(server, "Issue", {"title": "deleted issue", "ticket": ticket})["id"]
    server.data("mutation($id: ID!) { deleteIssue(id: $id) { id } }", {"id": dropped})

    got = server.data(
        "query($id: ID!) { ticket(id: $id) { issues { id ticket { id } } activities { id ticket { id } } } }",
        {"id": ticket},
    )["ticket"]
    issue_ids = [i["id"] for i in got["issues"]]
    activity_ids = [a["id"] for a in got["activities"]]
    # The lists are what the list queries say for this ticket, oldest first, deleted ones left out.
    assert issue_ids == listing(server, "issues", {"ticket": {"eq": ticket}}, first=100)["ids"]
    assert activity_ids == listing(server, "activities", {"ticket": {"eq": ticket}}, first=100)["ids"]
    assert issue_ids == [i1, i2]
    assert a1 in activity_ids and activity_ids[-1] == a1
    assert {i["ticket"]["id"] for i in got["issues"]} | {a["ticket"]["id"] for a in got["activities"]} == {ticket}


CURRENT_SUBSCRIPTION = "query($id: ID!) { ticket(id: $id) { subscription { id status } } }"


def _subscription_probe(server) -> tuple[Callable[[], dict | None], Callable[..., str]]:
    """A ticket of a fresh organization: (its current subscription, add a subscription to the org)."""
    org = organization(server)
    ticket = create(server, "Ticket", {"subject": "Which plan am I on?", "organization": org})["id"]

    def current() -> dict | None:
        return server.data(CURRENT_SUBSCRIPTION, {"id": ticket})["ticket"]["subscription"]

    def subscription(**values) -> str:
        return create(server, "Subscription", {"startedAt": "2026-01-01T00:00:00Z", "organization": org, **values})[
            "id"
        ]

    return current, subscription


def test_ticket_subscription_is_the_current_one(server):
    """ACTIVE before PAST_DUE before CANCELLED; PAUSED never counts; deleted ones neither."""
    current, subscription = _subscription_probe(server)

    assert current() is None
    paused = subscription(plan="paused")
    server.data("mutation($id: ID!) { pauseSubscription(id: $id) { status } }", {"id": paused})
    assert current() is None
    cancelled = subscription(plan="old")
    server.data("mutation($id: ID!) { cancelSubscription(id: $id) { status } }", {"id": cancelled})
    assert current() == {"id": cancelled, "status": "CANCELLED"}
    past_due = subscription(plan="late")
    assert (
        server.data(
            "mutation($id: ID!) { updateSubscription(id: $id, input: {status: PAST_DUE}) { status } }", {"id": past_due}
        )["updateSubscription"]["status"]
        == "PAST_DUE"
    )
    assert current() == {"id": past_due, "status": "PAST_DUE"}
    active = subscription(plan="team")
    assert current() == {"id": active, "status": "ACTIVE"}
    server.data("mutation($id: ID!) { deleteSubscription(id: $id) { id } }", {"id": active})
    assert current() == {"id": past_due, "status": "PAST_DUE"}

    lonely = create(server, "Ticket", {"subject": "No organization"})["id"]
    assert server.data(CURRENT_SUBSCRIPTION, {"id": lonely})["ticket"]["subscription"] is None


def test_ticket_subscription_prefers_trialing_to_past_due(server):
    current, subscription = _subscription_probe(server)
    past_due = subscription(plan="late")
    server.data(
        "mutation($id: ID!) { updateSubscription(id: $id, input: {status: PAST_DUE}) { status } }", {"id": past_due}
    )
    trialing = subscription(plan="trial", trialEnd="2030-01-01T00:00:00Z")
    assert current() == {"id": trialing, "status": "TRIALING"}
    active = subscription(plan="team")
    assert current() == {"id": active, "status": "ACTIVE"}


# --- the event log ---------------------------------------------------------------------------------


def event_list(server, where: dict | None = None, order_by: list | None = None, **args) -> list[dict]:
    params = {"where": where, "orderBy": order_by, **args}
    types = {"where": "EventWhere", "orderBy": "[EventOrder!]", "first": "Int", "after": "String",
             "last": "Int", "before": "String"}  # fmt: skip
    given = {k: v for k, v in params.items() if v is not None}
    declared = ", ".join(f"${k}: {types[k]}" for k in given)
    passed = ", ".join(f"{k}: ${k}" for k in given)
    document = f"""query{f"({declared})" if declared else ""} {{ events{f"({passed})" if passed else ""} {{
        totalCount nodes {{ id type entityType target actor timestamp version sequence }} }} }}"""
    conn = server.data(document, given)["events"]
    assert conn["totalCount"] >= len(conn["nodes"])
    return conn["nodes"]


def test_events_filters_and_order(server):
    made = create(server, "Ticket", {"subject": "Eventful"}, "id updatedAt")
    ticket = made["id"]
    updated = server.data(
        'mutation($id: ID!) { updateTicket(id: $id, input: {subject: "Eventful indeed"}) { updatedAt } }',
        {"id": ticket},
    )["updateTicket"]
    escalated = server.data(
        """mutation($id: ID!) { escalateTicket(id: $id, reason: "needs code") {
            updatedAt issues { id } activities { id subject } } }""",
        {"id": ticket},
    )["escalateTicket"]
    assert len(escalated["issues"]) == 1
    issue = escalated["issues"][0]["id"]
    mine = [ticket, issue, *(a["id"] for a in escalated["activities"])]

    history = event_list(server, {"target": {"eq": ticket}})
    assert [(e["type"], e["version"]) for e in history] == [
        ("Ticket.Created", 1), ("Ticket.Updated", 2), ("Ticket.Escalated", 3),
    ]  # fmt: skip
    assert all(e["entityType"] == "Ticket" and e["target"] == ticket and e["actor"] == "anonymous" for e in history)
    assert [when(e["timestamp"]) for e in history] == [
        when(made["updatedAt"]),
        when(updated["updatedAt"]),
        when(escalated["updatedAt"]),
    ]
    sequences = [e["sequence"] for e in history]
    assert sequences == sorted(set(sequences))

    # the same history, newest first
    newest = event_list(server, {"target": {"eq": ticket}}, [{"field": "SEQUENCE", "direction": "DESC"}])
    assert [e["id"] for e in newest] == [e["id"] for e in reversed(history)]

    # ticket.events is its own history, and pages
    own = server.data(
        "query($id: ID!) { ticket(id: $id) { events { totalCount nodes { id } } first: events(first: 2) { nodes { id } pageInfo { hasNextPage endCursor } } } }",
        {"id": ticket},
    )["ticket"]
    assert [e["id"] for e in own["events"]["nodes"]] == [e["id"] for e in history] and own["events"]["totalCount"] == 3
    assert [e["id"] for e in own["first"]["nodes"]] == [e["id"] for e in history[:2]]
    rest = server.data(
        "query($id: ID!, $c: String) { ticket(id: $id) { events(first: 2, after: $c) { nodes { id } pageInfo { hasNextPage } } } }",
        {"id": ticket, "c": own["first"]["pageInfo"]["endCursor"]},
    )["ticket"]["events"]
    assert [e["id"] for e in rest["nodes"]] == [history[2]["id"]] and rest["pageInfo"]["hasNextPage"] is False

    # filters: type, entityType, target, actor, timestamp
    scope = {"target": {"in": mine}}
    assert [e["id"] for e in event_list(server, {**scope, "type": {"eq": "Ticket.Escalated"}})] == [history[2]["id"]]
    assert {e["type"] for e in event_list(server, {**scope, "type": {"contains": "created"}})} == {
        "Ticket.Created", "Issue.Created", "Activity.Created",
    }  # fmt: skip
    issue_events = event_list(server, {**scope, "entityType": {"eq": "Issue"}})
    assert [(e["type"], e["target"]) for e in issue_events] == [("Issue.Created", issue)]
    not_tickets = event_list(server, {**scope, "entityType": {"ne": "Ticket"}})
    assert {e["target"] for e in not_tickets} == set(mine[1:])
    assert len(event_list(server, {**scope, "actor": {"eq": "anonymous"}})) == len(event_list(server, scope))
    assert event_list(server, {**scope, "actor": {"ne": "anonymous"}}) == []
    at_update = event_list(server, {"target": {"eq": ticket}, "timestamp": {"eq": updated["updatedAt"]}})
    assert [e["type"] for e in at_update] == ["Ticket.Updated"]
    not_at_update = event_list(server, {"target": {"eq": ticket}, "timestamp": {"ne": updated["updatedAt"]}})
    assert [e["type"] for e in not_at_update] == ["Ticket.Created", "Ticket.Escalated"]

    # commit order across entities: each hook-made event follows the event that caused it
    everything = event_list(server, scope)
    assert [e["sequence"] for e in everything] == sorted(e["sequence"] for e in everything)
    seq = {(e["type"], e["target"]): e["sequence"] for e in everything}
    support = next(a["id"] for a in escalated["activities"] if a["subject"].startswith("Support:"))
    follow_up = next(a["id"] for a in escalated["activities"] if a["subject"].startswith("Escalated:"))
    assert seq[("Ticket.Created", ticket)] < seq[("Activity.Created", support)] < seq[("Ticket.Updated", ticket)]
    assert seq[("Ticket.Escalated", ticket)] < seq[("Issue.Created", issue)]
    assert seq[("Ticket.Escalated", ticket)] < seq[("Activity.Created", follow_up)]


def test_events_timestamp_ranges(server):
    made = create(server, "Ticket", {"subject": "Ranged"}, "id updatedAt")
    ticket = made["id"]
    stamps = [made["updatedAt"]]
    for subject in ("Ranged twice", "Ranged thrice"):
        stamps.append(server.data(
            "mutation($id: ID!, $s: String!) { updateTicket(id: $id, input: {subject: $s}) { updatedAt } }",
            {"id": ticket, "s": subject},
        )["updateTicket"]["updatedAt"])  # fmt: skip
    mine = {"target": {"eq": ticket}}
    assert [e["version"] for e in event_list(server, {**mine, "timestamp": {"gt": stamps[0]}})] == [2, 3]
    assert [e["version"] for e in event_list(server, {**mine, "timestamp": {"lte": stamps[1]}})] == [1, 2]
    assert [e["version"] for e in event_list(server, {**mine, "timestamp": {"gte": stamps[1], "lt": stamps[2]}})] == [2]


def test_event_log_is_in_commit_order(server):
    """The tenant's newest events: sequence strictly increasing ASC, gapless, and DESC is the reverse."""
    create_many(server, "Ticket", [{"subject": f"order {n}"} for n in range(3)])
    oldest_first = event_list(server, None, None, last=100)
    sequences = [e["sequence"] for e in oldest_first]
    assert len(sequences) >= 6  # three tickets, each with its support task
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), "gapless, strictly increasing"
    newest_first = event_list(server, None, [{"field": "SEQUENCE", "direction": "DESC"}], first=100)
    assert [e["id"] for e in newest_first[: len(oldest_first)]] == [e["id"] for e in reversed(oldest_first)]


# --- asOf -----------------------------------------------------------------------------------------


def test_as_of_replays_the_ticket_at_each_moment(server):
    fields = "id subject status version updatedAt"
    created = create(server, "Ticket", {"subject": "Time traveller", "priority": "LOW"}, fields)
    ticket = created["id"]
    renamed = server.data(
        f'mutation($id: ID!) {{ updateTicket(id: $id, input: {{subject: "Time traveller, renamed"}}) {{ {fields} }} }}',
        {"id": ticket},
    )["updateTicket"]
    working = server.data(
        f"mutation($id: ID!) {{ updateTicket(id: $id, input: {{status: IN_PROGRESS}}) {{ {fields} }} }}", {"id": ticket}
    )["updateTicket"]
    resolved = server.data(f"mutation($id: ID!) {{ resolveTicket(id: $id) {{ {fields} }} }}", {"id": ticket})[
        "resolveTicket"
    ]
    states = [created, renamed, working, resolved]
    moments = [when(s["updatedAt"]) for s in states]
    assert moments == sorted(moments) and len(set(moments)) == 4
    assert [s["version"] for s in states] == [1, 2, 3, 4]

    def at(moment: datetime) -> dict | None:
        return server.data(
            f"query($id: ID!, $t: DateTime) {{ ticket(id: $id, asOf: $t) {{ {fields} }} }}",
            {"id": ticket, "t": moment.isoformat()},
        )["ticket"]

    for n, state in enumerate(states):
        assert at(moments[n]) == state, f"at its own updatedAt, version {n + 1}"
        if n + 1 < len(states):
            between = moments[n] + (moments[n + 1] - moments[n]) / 2
            assert at(between) == state, f"between versions {n + 1} and {n + 2}"
    assert at(moments[0] - timedelta(microseconds=1)) is None
    assert at(moments[0] - timedelta(days=365)) is None
    assert at(moments[-1] + timedelta(days=365)) == resolved
    now = server.data(f"query($id: ID!) {{ ticket(id: $id) {{ {fields} }} }}", {"id": ticket})["ticket"]
    assert now == resolved
    # The same moment written in another zone means the same instant.
    shifted = moments[1].astimezone(datetime.fromisoformat("2026-01-01T00:00:00-07:00").tzinfo)
    assert at(shifted) == renamed


def test_as_of_before_a_delete_shows_the_ticket(server):
    created = create(server, "Ticket", {"subject": "Soon gone"}, "id updatedAt")
    server.data("mutation($id: ID!) { deleteTicket(id: $id) { id } }", {"id": created["id"]})
    query = "query($id: ID!, $t: DateTime) { ticket(id: $id, asOf: $t) { id subject deletedAt } }"
    before = server.data(query, {"id": created["id"], "t": created["updatedAt"]})["ticket"]
    assert before == {"id": created["id"], "subject": "Soon gone", "deletedAt": None}
    assert server.data("query($id: ID!) { ticket(id: $id) { id } }", {"id": created["id"]})["ticket"] is None
