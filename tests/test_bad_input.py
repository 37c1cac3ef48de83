"""Bad input to every create and update mutation is refused cleanly and writes nothing.

Each case of the table below goes through the real server and must come back as an error whose
``extensions.code`` is the expected one (``BAD_USER_INPUT``, or ``NOT_FOUND`` for a relation or
target that does not exist), with ``data`` for the mutation null, no stack trace or SQL in the
body, no row or event written anywhere, and the target of an update still at its version. A
second test reads the same cases for a message a person can act on: it names the field.

Values such as ``"<contact>"`` are placeholders for the ids of the entities the ``graph``
fixture creates; ``"<other_contact>"`` is a second contact whose unique fields a case collides with.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

BAD = ("BAD_USER_INPUT",)
MISSING = ("NOT_FOUND",)
#: a well-formed id of each kind that no row has
GHOST = {
    kind: f"{kind}_zzzzzzzz"
    for kind in ("ticket", "contact", "organization", "deal", "subscription", "issue", "activity", "metric")
}
#: signs of a stack trace or of SQL in a response body (the words of SQL as SQL spells them)
TRACES = ("traceback", "sqlalchemy", "aiosqlite", "asyncpg")
SQL = ("SELECT ", "INSERT ", "UPDATE ", "DELETE FROM")
#: the Python side of the server, which a client should never have to read about
PYTHON_TALK = ("Maybe[", "NoneType", "<class", "strawberry")
UNIQUE = uuid.uuid4().hex[:10]  # keeps this module's unique values apart from other tests'


@dataclass(frozen=True)
class Case:
    """One bad request.

    ``document`` is the whole operation; ``variables`` its variables; ``mutation`` the field whose
    data must be null; ``target`` the id whose version must not change (a placeholder or an id);
    ``names`` what the error message must mention (the field, or the missing id); ``marks`` apply
    to the refusal test, ``message_marks`` to the message test (known product bugs).
    """

    document: str
    variables: dict[str, Any]
    mutation: str
    codes: tuple[str, ...]
    names: str
    target: str | None = None
    message_marks: tuple = field(default=())
    marks: tuple = field(default=())


def create(
    entity: str, input: dict[str, Any] | str, names: str, codes: tuple[str, ...] = BAD, marks: tuple = ()
) -> Case:
    """``createX`` with ``input`` as a variable (a dict) or inline GraphQL (a string)."""
    mutation = f"create{entity}"
    if isinstance(input, str):
        document = f"mutation {{ {mutation}(input: {input}) {{ id }} }}"
        return Case(document, {}, mutation, codes, names, marks=marks)
    document = f"mutation($input: Create{entity}Input!) {{ {mutation}(input: $input) {{ id }} }}"
    return Case(document, {"input": input}, mutation, codes, names, marks=marks)


def update(
    entity: str,
    input: dict[str, Any] | str,
    names: str,
    codes: tuple[str, ...] = BAD,
    target: str | None = None,
    message_marks: tuple = (),
) -> Case:
    """``updateX`` of ``target`` (default: the fixture's entity of that kind)."""
    mutation = f"update{entity}"
    target = target or f"<{entity.lower()}>"
    if isinstance(input, str):
        document = f"mutation($id: ID!) {{ {mutation}(id: $id, input: {input}) {{ id version }} }}"
        return Case(document, {"id": target}, mutation, codes, names, target, message_marks)
    document = (
        f"mutation($id: ID!, $input: Update{entity}Input!) {{ {mutation}(id: $id, input: $input) {{ id version }} }}"
    )
    return Case(document, {"id": target, "input": input}, mutation, codes, names, target, message_marks)


LONG_SUBJECT = "s" * 501
LONG_DESCRIPTION = "d" * 65_537
LONG_NAME = "n" * 1_001

# fmt: off
CASES: dict[str, Case] = {
    # --- Ticket -----------------------------------------------------------------------------------
    "createTicket/empty-subject": create("Ticket", {"subject": ""}, "subject"),
    "createTicket/whitespace-subject": create("Ticket", {"subject": " \t\n "}, "subject"),
    "createTicket/missing-subject": create("Ticket", {"description": "no subject"}, "subject"),
    "createTicket/subject-501-chars": create("Ticket", {"subject": LONG_SUBJECT}, "subject"),
    "createTicket/description-65537-chars": create(
        "Ticket", {"subject": "Too long", "description": LONG_DESCRIPTION}, "description"),
    "createTicket/category-1001-chars": create("Ticket", {"subject": "x", "category": LONG_NAME}, "category"),
    "createTicket/tag-1001-chars": create("Ticket", {"subject": "x", "tags": ["ok", LONG_NAME]}, "tags"),
    "createTicket/satisfaction-0": create("Ticket", {"subject": "Rated", "satisfaction": 0}, "satisfaction"),
    "createTicket/satisfaction-6": create("Ticket", {"subject": "Rated", "satisfaction": 6}, "satisfaction"),
    "createTicket/unknown-priority-inline": create("Ticket", '{subject: "x", priority: SUPER_URGENT}', "priority"),
    "createTicket/unknown-priority-variables": create(
        "Ticket", {"subject": "x", "priority": "SUPER_URGENT"}, "priority"),
    "createTicket/unknown-channel-variables": create("Ticket", {"subject": "x", "channel": "FAX"}, "channel"),
    "createTicket/priority-lowercase-variables": create("Ticket", {"subject": "x", "priority": "high"}, "priority"),
    "createTicket/contact-id-as-organization": create(
        "Ticket", {"subject": "x", "organization": "<contact>"}, "organization"),
    "createTicket/organization-id-as-requester": create(
        "Ticket", {"subject": "x", "requester": "<organization>"}, "requester"),
    "createTicket/missing-requester": create(
        "Ticket", {"subject": "x", "requester": GHOST["contact"]}, "requester", MISSING),
    "createTicket/deleted-organization": create(
        "Ticket", {"subject": "x", "organization": "<deleted_organization>"}, "organization", MISSING),
    "createTicket/missing-deal": create("Ticket", {"subject": "x", "deal": GHOST["deal"]}, "deal", MISSING),
    "createTicket/malformed-assignee-id": create("Ticket", {"subject": "x", "assignee": "not an id"}, "assignee"),
    "createTicket/meta-field-version": create("Ticket", '{subject: "x", version: 3}', "version"),
    "createTicket/meta-field-id": create("Ticket", '{subject: "x", id: "ticket_abcdefgh"}', "id"),
    "createTicket/meta-field-createdBy": create("Ticket", {"subject": "x", "createdBy": "someone"}, "createdBy"),
    "createTicket/status-not-an-input": create("Ticket", '{subject: "x", status: CLOSED}', "status"),
    "createTicket/string-satisfaction": create("Ticket", {"subject": "x", "satisfaction": "five"}, "satisfaction"),
    "updateTicket/empty-subject": update("Ticket", {"subject": ""}, "subject"),
    "updateTicket/whitespace-subject": update("Ticket", {"subject": "   "}, "subject"),
    "updateTicket/subject-501-chars": update("Ticket", {"subject": LONG_SUBJECT}, "subject"),
    "updateTicket/description-65537-chars": update("Ticket", {"description": LONG_DESCRIPTION}, "description"),
    "updateTicket/satisfaction-0": update("Ticket", {"satisfaction": 0}, "satisfaction"),
    "updateTicket/satisfaction-6": update("Ticket", {"satisfaction": 6}, "satisfaction"),
    "updateTicket/subject-null-inline": update("Ticket", "{subject: null}", "subject"),
    "updateTicket/subject-null-variables": update("Ticket", {"subject": None}, "subject"),
    "updateTicket/tags-null": update("Ticket", {"tags": None}, "tags"),
    "updateTicket/unknown-status-inline": update("Ticket", "{status: DONE}", "status"),
    "updateTicket/unknown-priority-variables": update("Ticket", {"priority": "SUPER_URGENT"}, "priority"),
    "updateTicket/contact-id-as-organization": update("Ticket", {"organization": "<contact>"}, "organization"),
    "updateTicket/missing-requester": update("Ticket", {"requester": GHOST["contact"]}, "requester", MISSING),
    "updateTicket/malformed-deal-id": update("Ticket", {"deal": "deal-42"}, "deal"),
    "updateTicket/meta-field-version": update("Ticket", '{subject: "x", version: 3}', "version"),
    "updateTicket/meta-field-updatedAt": update(
        "Ticket", {"subject": "x", "updatedAt": "2020-01-01T00:00:00Z"}, "updatedAt"),
    "updateTicket/missing-ticket": update(
        "Ticket", {"subject": "x"}, GHOST["ticket"], MISSING, target=GHOST["ticket"]),
    "updateTicket/malformed-ticket-id": update(
        "Ticket", {"subject": "x"}, "ticket-1", ("NOT_FOUND", "BAD_USER_INPUT"), target="ticket-1"),
    "updateTicket/contact-id-as-ticket": update("Ticket", {"subject": "x"}, "<contact>", MISSING, target="<contact>"),
    # --- Contact ----------------------------------------------------------------------------------
    "createContact/empty-name": create("Contact", {"name": ""}, "name"),
    "createContact/whitespace-name": create("Contact", {"name": "   "}, "name"),
    "createContact/name-1001-chars": create("Contact", {"name": LONG_NAME}, "name"),
    "createContact/malformed-email": create("Contact", {"name": "Ada", "email": "ada-at-example"}, "email"),
    "createContact/email-with-space": create("Contact", {"name": "Ada", "email": "ada @example.com"}, "email"),
    "createContact/duplicate-email": create("Contact", {"name": "Twin", "email": "<contact_email>"}, "email"),
    "createContact/duplicate-email-other-case": create(
        "Contact", {"name": "Twin", "email": "<contact_email_upper>"}, "email"),
    "createContact/deleted-organization": create(
        "Contact", {"name": "Ada", "organization": "<deleted_organization>"}, "organization", MISSING),
    "createContact/lead-score-101": create("Contact", {"name": "Ada", "leadScore": 101}, "leadScore"),
    "createContact/unknown-role-inline": create("Contact", '{name: "Ada", role: JANITOR}', "role"),
    "createContact/unknown-status-variables": create("Contact", {"name": "Ada", "status": "ASLEEP"}, "status"),
    "createContact/ticket-id-as-organization": create(
        "Contact", {"name": "Ada", "organization": "<ticket>"}, "organization"),
    "createContact/missing-owner": create("Contact", {"name": "Ada", "owner": GHOST["contact"]}, "owner", MISSING),
    "createContact/meta-field-deletedAt": create(
        "Contact", {"name": "Ada", "deletedAt": "2020-01-01T00:00:00Z"}, "deletedAt"),
    "updateContact/empty-name": update("Contact", {"name": ""}, "name"),
    "updateContact/name-1001-chars": update("Contact", {"name": LONG_NAME}, "name"),
    "updateContact/name-null": update("Contact", {"name": None}, "name"),
    "updateContact/malformed-email": update("Contact", {"email": "nobody@"}, "email"),
    "updateContact/duplicate-email": update(
        "Contact", {"email": "<contact_email>"}, "email", target="<other_contact>"),
    "updateContact/unknown-stage-variables": update("Contact", {"stage": "VIP"}, "stage"),
    "updateContact/missing-organization": update(
        "Contact", {"organization": GHOST["organization"]}, "organization", MISSING),
    "updateContact/meta-field-version": update("Contact", '{name: "x", version: 9}', "version"),
    "updateContact/missing-contact": update(
        "Contact", {"name": "x"}, GHOST["contact"], MISSING, target=GHOST["contact"]),
    # --- Organization -----------------------------------------------------------------------------
    "createOrganization/empty-name": create("Organization", {"name": ""}, "name"),
    "createOrganization/whitespace-name": create("Organization", {"name": "  "}, "name"),
    "createOrganization/name-1001-chars": create("Organization", {"name": LONG_NAME}, "name"),
    "createOrganization/duplicate-slug": create("Organization", {"name": "Copy", "slug": "<org_slug>"}, "slug"),
    "createOrganization/duplicate-domain": create(
        "Organization", {"name": "Copy", "domain": "<org_domain>"}, "domain"),
    "createOrganization/duplicate-domain-other-case": create(
        "Organization", {"name": "Copy", "domain": "<org_domain_upper>"}, "domain"),
    "createOrganization/health-score-101": create("Organization", {"name": "x", "healthScore": 101}, "healthScore"),
    "createOrganization/negative-employee-count": create(
        "Organization", {"name": "x", "employeeCount": -1}, "employeeCount"),
    "createOrganization/unknown-tier-inline": create("Organization", '{name: "x", tier: GALACTIC}', "tier"),
    "createOrganization/contact-id-as-parent": create("Organization", {"name": "x", "parent": "<contact>"}, "parent"),
    "createOrganization/missing-parent": create(
        "Organization", {"name": "x", "parent": GHOST["organization"]}, "parent", MISSING),
    "updateOrganization/empty-name": update("Organization", {"name": ""}, "name"),
    "updateOrganization/name-null": update("Organization", {"name": None}, "name"),
    "updateOrganization/duplicate-slug": update(
        "Organization", {"slug": "<org_slug>"}, "slug", target="<other_organization>"),
    "updateOrganization/duplicate-domain": update(
        "Organization", {"domain": "<org_domain>"}, "domain", target="<other_organization>"),
    "updateOrganization/negative-lifetime-value": update("Organization", {"lifetimeValue": -5.0}, "lifetimeValue"),
    "updateOrganization/unknown-status-variables": update("Organization", {"status": "BANKRUPT"}, "status"),
    "updateOrganization/missing-parent": update(
        "Organization", {"parent": GHOST["organization"]}, "parent", MISSING),
    "updateOrganization/missing-organization": update(
        "Organization", {"name": "x"}, GHOST["organization"], MISSING, target=GHOST["organization"]),
    "updateOrganization/deleted-organization": update(
        "Organization", {"name": "x"}, "<deleted_organization>", MISSING, target="<deleted_organization>"),
    "updateOrganization/deleted-parent": update(
        "Organization", {"parent": "<deleted_organization>"}, "parent", MISSING),
    # --- Deal -------------------------------------------------------------------------------------
    "createDeal/empty-name": create("Deal", {"name": "", "value": 10}, "name"),
    "createDeal/name-1001-chars": create("Deal", {"name": LONG_NAME, "value": 10}, "name"),
    "createDeal/negative-value": create("Deal", {"name": "Renewal", "value": -0.01}, "value"),
    "createDeal/missing-value": create("Deal", {"name": "Renewal"}, "value"),
    "createDeal/probability-101": create("Deal", {"name": "Renewal", "value": 10, "probability": 101}, "probability"),
    "createDeal/probability-negative": create(
        "Deal", {"name": "Renewal", "value": 10, "probability": -1}, "probability"),
    "createDeal/organization-id-as-contact": create(
        "Deal", {"name": "x", "value": 1, "contact": "<organization>"}, "contact"),
    "createDeal/missing-organization": create(
        "Deal", {"name": "x", "value": 1, "organization": GHOST["organization"]}, "organization", MISSING),
    "createDeal/stage-not-an-input": create("Deal", '{name: "x", value: 1, stage: WON}', "stage"),
    "updateDeal/negative-value": update("Deal", {"value": -1}, "value"),
    "updateDeal/probability-101": update("Deal", {"probability": 101}, "probability"),
    "updateDeal/value-null": update("Deal", {"value": None}, "value"),
    "updateDeal/whitespace-name": update("Deal", {"name": "  "}, "name"),
    "updateDeal/missing-owner": update("Deal", {"owner": GHOST["contact"]}, "owner", MISSING),
    "updateDeal/malformed-date": update("Deal", {"expectedCloseDate": "next tuesday"}, "expectedCloseDate"),
    "updateDeal/missing-deal": update("Deal", {"name": "x"}, GHOST["deal"], MISSING, target=GHOST["deal"]),
    # --- Subscription -----------------------------------------------------------------------------
    "createSubscription/quantity-0": create(
        "Subscription", {"startedAt": "2026-01-01T00:00:00Z", "quantity": 0}, "quantity"),
    "createSubscription/missing-startedAt": create("Subscription", {"plan": "pro"}, "startedAt"),
    "createSubscription/malformed-startedAt": create("Subscription", {"startedAt": "yesterday"}, "startedAt"),
    "createSubscription/plan-1001-chars": create(
        "Subscription", {"startedAt": "2026-01-01T00:00:00Z", "plan": LONG_NAME}, "plan"),
    "createSubscription/contact-id-as-organization": create(
        "Subscription", {"startedAt": "2026-01-01T00:00:00Z", "organization": "<contact>"}, "organization"),
    "createSubscription/missing-organization": create(
        "Subscription", {"startedAt": "2026-01-01T00:00:00Z", "organization": GHOST["organization"]},
        "organization", MISSING),
    "createSubscription/status-not-an-input": create(
        "Subscription", '{startedAt: "2026-01-01T00:00:00Z", status: CANCELLED}', "status"),
    "updateSubscription/quantity-0": update("Subscription", {"quantity": 0}, "quantity"),
    "updateSubscription/quantity-null": update(
        "Subscription", {"quantity": None}, "quantity"),
    "updateSubscription/unknown-status-inline": update("Subscription", "{status: EXPIRED}", "status"),
    "updateSubscription/missing-organization": update(
        "Subscription", {"organization": GHOST["organization"]}, "organization", MISSING),
    "updateSubscription/missing-subscription": update(
        "Subscription", {"plan": "x"}, GHOST["subscription"], MISSING, target=GHOST["subscription"]),
    # --- Issue ------------------------------------------------------------------------------------
    "createIssue/empty-title": create("Issue", {"title": ""}, "title"),
    "createIssue/whitespace-title": create("Issue", {"title": "\t"}, "title"),
    "createIssue/title-501-chars": create("Issue", {"title": LONG_SUBJECT}, "title"),
    "createIssue/description-65537-chars": create(
        "Issue", {"title": "x", "description": LONG_DESCRIPTION}, "description"),
    "createIssue/unknown-type-variables": create("Issue", {"title": "x", "type": "CHORE"}, "type"),
    "createIssue/contact-id-as-ticket": create("Issue", {"title": "x", "ticket": "<contact>"}, "ticket"),
    "createIssue/missing-ticket": create("Issue", {"title": "x", "ticket": GHOST["ticket"]}, "ticket", MISSING),
    "updateIssue/empty-title": update("Issue", {"title": ""}, "title"),
    "updateIssue/title-501-chars": update("Issue", {"title": LONG_SUBJECT}, "title"),
    "updateIssue/title-null": update("Issue", "{title: null}", "title"),
    "updateIssue/missing-reporter": update("Issue", {"reporter": GHOST["contact"]}, "reporter", MISSING),
    "updateIssue/ticket-id-as-reporter": update("Issue", {"reporter": "<ticket>"}, "reporter"),
    "updateIssue/missing-issue": update("Issue", {"title": "x"}, GHOST["issue"], MISSING, target=GHOST["issue"]),
    # --- Activity ---------------------------------------------------------------------------------
    "createActivity/empty-subject": create("Activity", {"subject": ""}, "subject"),
    "createActivity/subject-501-chars": create("Activity", {"subject": LONG_SUBJECT}, "subject"),
    "createActivity/description-65537-chars": create(
        "Activity", {"subject": "x", "description": LONG_DESCRIPTION}, "description"),
    "createActivity/unknown-type-inline": create("Activity", '{subject: "x", type: LUNCH}', "type"),
    "createActivity/contact-id-as-deal": create("Activity", {"subject": "x", "deal": "<contact>"}, "deal"),
    "createActivity/missing-ticket": create(
        "Activity", {"subject": "x", "ticket": GHOST["ticket"]}, "ticket", MISSING),
    "updateActivity/whitespace-subject": update("Activity", {"subject": "  "}, "subject"),
    "updateActivity/subject-null": update("Activity", {"subject": None}, "subject"),
    "updateActivity/missing-contact": update("Activity", {"contact": GHOST["contact"]}, "contact", MISSING),
    "updateActivity/unknown-priority-variables": update("Activity", {"priority": "NOW"}, "priority"),
    "updateActivity/missing-activity": update(
        "Activity", {"subject": "x"}, GHOST["activity"], MISSING, target=GHOST["activity"]),
    # --- Metric -----------------------------------------------------------------------------------
    "createMetric/empty-name": create("Metric", {"name": "", "value": 1}, "name"),
    "createMetric/name-1001-chars": create("Metric", {"name": LONG_NAME, "value": 1}, "name"),
    "createMetric/missing-value": create("Metric", {"name": "x"}, "value"),
    "createMetric/string-value": create("Metric", {"name": "x", "value": "lots"}, "value"),
    "createMetric/unknown-type-variables": create("Metric", {"name": "x", "value": 1, "type": "RATE"}, "type"),
    "createMetric/missing-organization": create(
        "Metric", {"name": "x", "value": 1, "organization": GHOST["organization"]}, "organization", MISSING),
    "updateMetric/empty-name": update("Metric", {"name": ""}, "name"),
    "updateMetric/name-null": update("Metric", {"name": None}, "name"),
    "updateMetric/deal-id-as-organization": update("Metric", {"organization": "<deal>"}, "organization"),
    "updateMetric/missing-metric": update("Metric", {"name": "x"}, GHOST["metric"], MISSING, target=GHOST["metric"]),
    # --- verbs on an id of another entity type, or of nothing ----------------------------------------
    "resolveTicket/contact-id": Case(
        "mutation($id: ID!) { resolveTicket(id: $id) { id } }", {"id": "<contact>"},
        "resolveTicket", MISSING, "<contact>", "<contact>"),
    "closeTicket/missing-ticket": Case(
        "mutation($id: ID!) { closeTicket(id: $id) { id } }", {"id": GHOST["ticket"]},
        "closeTicket", MISSING, GHOST["ticket"]),
    "assignTicket/organization-id-as-assignee": Case(
        "mutation($id: ID!, $a: ID!) { assignTicket(id: $id, assignee: $a) { id } }",
        {"id": "<ticket>", "a": "<organization>"}, "assignTicket", BAD, "assignee", "<ticket>"),
    "assignTicket/missing-assignee": Case(
        "mutation($id: ID!, $a: ID!) { assignTicket(id: $id, assignee: $a) { id } }",
        {"id": "<ticket>", "a": GHOST["contact"]}, "assignTicket", MISSING, "assignee", "<ticket>"),
    "upgradeSubscription/quantity-0": Case(
        "mutation($id: ID!) { upgradeSubscription(id: $id, quantity: 0) { id } }", {"id": "<subscription>"},
        "upgradeSubscription", BAD, "quantity", "<subscription>"),
    "qualifyContact/deal-id": Case(
        "mutation($id: ID!) { qualifyContact(id: $id) { id } }", {"id": "<deal>"},
        "qualifyContact", MISSING, "<deal>", "<deal>"),
}
# fmt: on

#: the message test leaves out the cases the server does not refuse at all (marked on the refusal test)
MESSAGE_PARAMS = [
    pytest.param(name, marks=case.message_marks, id=name) for name, case in CASES.items() if not case.marks
]
EVERY_MUTATION = {
    f"{verb}{entity}"
    for verb in ("create", "update")
    for entity in ("Ticket", "Contact", "Organization", "Deal", "Subscription", "Issue", "Activity", "Metric")
}


@pytest.fixture(scope="module")
def graph(server) -> dict[str, str]:
    """One live entity of each kind (update targets and valid relation ids), plus unique values."""
    org = server.data(
        "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
        {"i": {"name": "Bad Input Inc", "slug": f"bad-input-{UNIQUE}", "domain": f"bad-input-{UNIQUE}.example"}},
    )["createOrganization"]["id"]
    other_org = server.data('mutation { createOrganization(input: {name: "Other Inc"}) { id } }')["createOrganization"][
        "id"
    ]
    email = f"ada-{UNIQUE}@example.com"
    contact = server.data(
        "mutation($i: CreateContactInput!) { createContact(input: $i) { id } }",
        {"i": {"name": "Ada", "email": email, "organization": org}},
    )["createContact"]["id"]
    other_contact = server.data('mutation { createContact(input: {name: "Grace"}) { id } }')["createContact"]["id"]
    deal = server.data(
        'mutation($o: ID) { createDeal(input: {name: "Renewal", value: 1000, organization: $o}) { id } }',
        {"o": org},
    )["createDeal"]["id"]
    subscription = server.data(
        'mutation($o: ID) { createSubscription(input: {startedAt: "2026-01-01T00:00:00Z", organization: $o,'
        ' plan: "pro"}) { id } }',
        {"o": org},
    )["createSubscription"]["id"]
    ticket = server.data(
        'mutation($c: ID) { createTicket(input: {subject: "Printer jammed", requester: $c}) { id } }',
        {"c": contact},
    )["createTicket"]["id"]
    issue = server.data('mutation { createIssue(input: {title: "Paper path"}) { id } }')["createIssue"]["id"]
    activity = server.data('mutation { createActivity(input: {subject: "Call back"}) { id } }')["createActivity"]["id"]
    deleted = server.data('mutation { createOrganization(input: {name: "Gone Ltd"}) { id } }')["createOrganization"][
        "id"
    ]
    server.data("mutation($id: ID!) { deleteOrganization(id: $id) { id } }", {"id": deleted})
    metric = server.data('mutation { createMetric(input: {name: "queue.depth", value: 3}) { id } }')["createMetric"][
        "id"
    ]
    return {
        "organization": org, "other_organization": other_org, "contact": contact,
        "other_contact": other_contact, "deal": deal, "subscription": subscription, "ticket": ticket,
        "issue": issue, "activity": activity, "metric": metric, "contact_email": email,
        "org_slug": f"bad-input-{UNIQUE}", "org_domain": f"bad-input-{UNIQUE}.example",
        "contact_email_upper": email.upper(), "org_domain_upper": f"bad-input-{UNIQUE}.example".upper(),
        "deleted_organization": deleted,
    }  # fmt: skip


def fill(value: Any, graph: dict[str, str]) -> Any:
    """``value`` with every ``"<name>"`` placeholder replaced by the graph's value."""
    if isinstance(value, dict):
        return {k: fill(v, graph) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, graph) for v in value]
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return graph[value[1:-1]]
    return value


def version_of(server, id_: str) -> int | None:
    """The current version of the entity ``id_`` (None if there is none)."""
    kind = id_.split("_", 1)[0]
    if kind not in GHOST:
        return None
    data = server.data(f"query($id: ID!) {{ {kind}(id: $id) {{ version }} }}", {"id": id_})
    return (data[kind] or {}).get("version")


def send(server, graph: dict[str, str], case: Case) -> tuple[dict, dict]:
    """POST the case; the body, and the first error."""
    body = server.post(case.document, fill(case.variables, graph))
    assert body.get("errors"), f"expected an error, got {body}"
    return body, body["errors"][0]


def test_every_create_and_update_mutation_has_cases():
    assert {case.mutation for case in CASES.values()} >= EVERY_MUTATION


@pytest.mark.parametrize("name", [pytest.param(name, marks=case.marks, id=name) for name, case in CASES.items()])
def test_bad_input_is_refused_and_writes_nothing(server, graph, name):
    case = CASES[name]
    target = fill(case.target, graph) if case.target else None
    counts, version = server.counts(), version_of(server, target) if target else None

    body, error = send(server, graph, case)

    assert error.get("extensions", {}).get("code") in case.codes, error
    assert (body.get("data") or {}).get(case.mutation) is None, body
    text = json.dumps(body)
    assert [t for t in TRACES if t in text.lower()] + [w for w in SQL if w in text] == [], text[:2000]
    assert server.counts() == counts
    if target:
        assert version_of(server, target) == version


@pytest.mark.parametrize("name", MESSAGE_PARAMS)
def test_error_message_names_the_field(server, graph, name):
    case = CASES[name]
    _, error = send(server, graph, case)
    message = error["message"]
    assert fill(case.names, graph).lower() in message.lower(), message
    assert [talk for talk in PYTHON_TALK if talk in message] == [], message
