"""Service-level policies (API.md, "Service levels (SLA)") through the real server on SQLite and
PostgreSQL: create, update, delete and list them; every bad input refused as BAD_USER_INPUT with
nothing written; which policy a ticket gets (lowest position, empty lists match anything, the
organization's tier, inactive and deleted ones never) and again when its priority, channel or
organization change; and the due times a policy's targets and business hours give.

Every test works in a tenant of its own, so no other test's policies apply to its tickets.
Expected due times come from calendar reasoning (the next opening of a policy whose only
business day is neither today nor tomorrow), never from the server's own arithmetic. Running
targets are days long. The clocks in real time (pauses, breaches, ordering, restarts) are in
``test_sla.py``, with the helpers both files use.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.test_sla import (
    DAY,
    POLICY,
    Tenant,
    create_policy,
    create_ticket,
    hours,
    next_opening,
    read,
    sla_metrics,
    tenant,
    two_days_ahead,
    unique,
    update_ticket,
    when,
    whole,
)

UPDATE = (
    "mutation($id: ID!, $i: UpdateSlaPolicyInput!, $v: Int) {"
    f" updateSlaPolicy(id: $id, input: $i, expectedVersion: $v) {{ {POLICY} }} }}"
)
DELETE = f"mutation($id: ID!, $v: Int) {{ deleteSlaPolicy(id: $id, expectedVersion: $v) {{ {POLICY} }} }}"
LIST = (
    "query($w: SlaPolicyWhere, $o: [SlaPolicyOrder!], $f: Int, $a: String, $d: Boolean! = false) {"
    " slaPolicies(where: $w, orderBy: $o, first: $f, after: $a, includeDeleted: $d) {"
    f" totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {POLICY} }} }} }}"
)


def policies(t: Tenant, **args) -> dict:
    names = {"where": "w", "orderBy": "o", "first": "f", "after": "a", "includeDeleted": "d"}
    return t.data(LIST, {names[k]: v for k, v in args.items()})["slaPolicies"]


def update_policy(t: Tenant, id_: str, expected: int | None = None, **fields) -> dict:
    return t.data(UPDATE, {"id": id_, "i": fields, "v": expected})["updateSlaPolicy"]


def refused(t: Tenant, query: str, variables: dict) -> str:
    """The error code of an operation that must fail, having returned no data."""
    body = t.post(query, variables)
    assert body.get("errors") and not any((body.get("data") or {}).values()), body
    return body["errors"][0]["extensions"]["code"]


def written(t: Tenant) -> tuple[int, int]:
    """The tenant's policies (deleted ones too) and events: compare around a refusal."""
    policy = t.server.sql("SELECT COUNT(*) FROM sla_policy WHERE tenant = :t", t=t.name)[0][0]
    event = t.server.sql("SELECT COUNT(*) FROM event WHERE tenant = :t", t=t.name)[0][0]
    return policy, event


def enum(t: Tenant, name: str) -> list[str]:
    query = "query($n: String!) { __type(name: $n) { enumValues { name } } }"
    return [v["name"] for v in t.data(query, {"n": name})["__type"]["enumValues"]]


def organization(t: Tenant, tier: str) -> str:
    query = "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }"
    return t.data(query, {"i": {"name": unique("org"), "tier": tier}})["createOrganization"]["id"]


# --- create, update, delete, list -------------------------------------------------------------


def test_a_new_policy_has_defaults_and_normalised_lists(server):
    t = tenant(server)
    bare = create_policy(t)
    assert re.fullmatch(r"slapolicy_[A-Za-z0-9]{8,12}", bare["id"])
    assert bare | {"id": None, "name": None, "createdBy": None} == {
        "id": None, "version": 1, "createdBy": None, "deletedAt": None, "name": None, "position": 0,
        "priorities": [], "organizationTiers": [], "channels": [], "firstResponseSeconds": None,
        "resolutionSeconds": None, "active": True, "businessHours": None,
    }  # fmt: skip
    given = {"priorities": ["URGENT", "LOW", "URGENT", "MEDIUM"], "organizationTiers": ["SMB", "ENTERPRISE", "SMB"],
             "channels": ["WEB", "EMAIL", "WEB"]}  # fmt: skip
    # adjacent intervals and "24:00" are fine; the intervals keep their order, holidays are sorted once each
    days = [(0, "12:00", "24:00"), (0, "00:00", "12:00"), (4, "09:00", "17:30")]
    holidays = (date(2031, 1, 2), date(2030, 12, 25), date(2031, 1, 2))
    made = create_policy(t, **given, position=4, active=False, firstResponseSeconds=60, resolutionSeconds=3600,
                         businessHours=hours("Europe/Berlin", *days, holidays=holidays))  # fmt: skip
    kinds = {"priorities": "Priority", "organizationTiers": "OrganizationTier", "channels": "TicketChannel"}
    for field, kind in kinds.items():
        assert made[field] == [name for name in enum(t, kind) if name in given[field]]
    assert made["businessHours"] == hours("Europe/Berlin", *days) | {"holidays": ["2030-12-25", "2031-01-02"]}
    assert [made[k] for k in ("position", "active", "firstResponseSeconds", "resolutionSeconds")] == [
        4,
        False,
        60,
        3600,
    ]
    assert policies(t)["nodes"] == [bare, made]


def test_update_changes_the_given_fields_and_checks_the_version(server):
    t = tenant(server)
    p = create_policy(t, priorities=["HIGH"], firstResponseSeconds=600, resolutionSeconds=6000,
                      businessHours=hours("UTC", (0, "09:00", "17:00")))  # fmt: skip
    changes = {"position": 3, "firstResponseSeconds": None, "channels": ["CHAT", "API", "CHAT"], "businessHours": None}
    updated = update_policy(t, p["id"], expected=1, **changes)
    assert updated == p | changes | {"version": 2, "channels": ["CHAT", "API"]}
    before = written(t)
    assert refused(t, UPDATE, {"id": p["id"], "i": {"name": "late"}, "v": 1}) == "VERSION_CONFLICT"
    assert refused(t, DELETE, {"id": p["id"], "v": 1}) == "VERSION_CONFLICT"
    assert written(t) == before and policies(t)["nodes"] == [updated]
    renamed = update_policy(t, p["id"], name="renamed")
    assert renamed == updated | {"version": 3, "name": "renamed"}
    gone = t.data(DELETE, {"id": p["id"], "v": 3})["deleteSlaPolicy"]
    assert gone["version"] == 4 and when(gone["deletedAt"]) <= datetime.now(UTC)
    assert policies(t)["nodes"] == [] and policies(t, includeDeleted=True)["nodes"] == [gone]
    query = "query($id: ID!) { events(where: {target: {eq: $id}}) { nodes { type actor } } }"
    events = t.data(query, {"id": p["id"]})["events"]["nodes"]
    assert [e["type"] for e in events] == ["SlaPolicy.Created", *["SlaPolicy.Updated"] * 2, "SlaPolicy.Deleted"]


def test_policies_are_listed_by_position_and_page(server):
    t = tenant(server)
    tag = unique("p")
    made = [create_policy(t, name=f"{tag}-{letter}", position=position, active=position != 20)
            for letter, position in (("a", 30), ("c", 10), ("b", 20), ("d", 0))]  # fmt: skip
    by_position = sorted(made, key=lambda p: p["position"])
    listed = policies(t)
    assert listed["nodes"] == by_position and listed["totalCount"] == 4
    walked, after = [], None
    while True:
        page = policies(t, first=3, after=after) if after else policies(t, first=3)
        walked += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert walked == by_position
    names = [p["name"] for p in policies(t, orderBy=[{"field": "NAME", "direction": "DESC"}])["nodes"]]
    assert names == [f"{tag}-{letter}" for letter in "dcba"]
    assert [p["position"] for p in policies(t, where={"position": {"gt": 10}})["nodes"]] == [20, 30]
    assert [p["position"] for p in policies(t, where={"active": {"eq": False}})["nodes"]] == [20]


def _days(*days: tuple[int, str, str]) -> dict:
    return {"businessHours": hours("UTC", *days)}


BAD: dict[str, dict] = {
    "first response 0": {"firstResponseSeconds": 0},
    "negative resolution": {"resolutionSeconds": -60},
    "negative position": {"position": -1},
    "unknown time zone": {"businessHours": hours("Mars/Olympus_Mons", (0, "09:00", "17:00"))},
    "time zone as a path": {"businessHours": hours("../../../etc/localtime", (0, "09:00", "17:00"))},
    "end before start": _days((0, "17:00", "09:00")),
    "end at start": _days((0, "09:00", "09:00")),
    "9:00": _days((0, "9:00", "17:00")),
    "25:00": _days((0, "09:00", "25:00")),
    "start 24:00": _days((0, "24:00", "24:00")),
    "ab:cd": _days((0, "ab:cd", "17:00")),
    "overlap": _days((2, "09:00", "12:00"), (1, "11:00", "13:00"), (2, "11:59", "13:00")),
    "no interval": _days(),
    "holiday not a date": {"businessHours": {**hours("UTC", (0, "09:00", "10:00")), "holidays": ["soon"]}},
    "holiday 30 February": {"businessHours": {**hours("UTC", (0, "09:00", "10:00")), "holidays": ["2027-02-30"]}},
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_writes_nothing(server, case):
    t = tenant(server)
    kept = create_policy(t, firstResponseSeconds=60)
    before = written(t)
    create = "mutation($i: CreateSlaPolicyInput!) { createSlaPolicy(input: $i) { id } }"
    assert refused(t, create, {"i": {"name": unique(), **BAD[case]}}) == "BAD_USER_INPUT"
    assert refused(t, UPDATE, {"id": kept["id"], "i": BAD[case]}) == "BAD_USER_INPUT"
    assert written(t) == before and policies(t)["nodes"] == [kept]


# --- which policy applies ---------------------------------------------------------------------


def expect(ticket: dict, policy: dict, start: datetime) -> None:
    """``ticket`` runs under ``policy``, its due times counted from ``start`` (its creation, rounded up)."""
    sla = ticket["sla"]
    assert sla is not None and sla["policy"]["id"] == policy["id"], (sla, policy["name"])
    for target, due in (("firstResponseSeconds", "firstResponseDueAt"), ("resolutionSeconds", "resolutionDueAt")):
        seconds = policy[target]
        assert (sla[due] and when(sla[due])) == (seconds and start + timedelta(seconds=seconds)), (due, sla)


def test_the_lowest_position_wins_and_empty_lists_match_anything(server):
    t = tenant(server)
    anything = create_policy(t, position=10, firstResponseSeconds=10 * DAY)
    urgent_web = create_policy(t, position=5, priorities=["URGENT"], channels=["WEB"], firstResponseSeconds=5 * DAY)
    urgent = create_policy(
        t, position=7, priorities=["URGENT"], firstResponseSeconds=7 * DAY, resolutionSeconds=8 * DAY
    )
    create_policy(t, position=0, active=False, firstResponseSeconds=DAY)
    deleted = create_policy(t, position=1, firstResponseSeconds=DAY)
    t.data("mutation($id: ID!) { deleteSlaPolicy(id: $id) { id } }", {"id": deleted["id"]})
    switched_off = create_policy(t, position=2, firstResponseSeconds=2 * DAY)
    update_policy(t, switched_off["id"], active=False)
    cases = [
        ({"priority": "URGENT", "channel": "WEB"}, urgent_web), ({"priority": "URGENT", "channel": "EMAIL"}, urgent),
        ({"priority": "URGENT"}, urgent), ({"priority": "LOW", "channel": "WEB"}, anything), ({}, anything),
    ]  # fmt: skip
    for fields, policy in cases:
        ticket = create_ticket(t, **fields)
        expect(ticket, policy, whole(when(ticket["createdAt"])))
        assert read(t, ticket["id"])["sla"] == ticket["sla"]
    assert create_ticket(tenant(server), priority="URGENT", channel="WEB")["sla"] is None, "policies are per tenant"


def test_no_matching_policy_means_no_sla(server):
    t = tenant(server)
    both = create_policy(t, channels=["PHONE"], priorities=["HIGH"], firstResponseSeconds=DAY)
    for fields in ({"channel": "PHONE"}, {"priority": "HIGH"}, {"priority": "HIGH", "channel": "EMAIL"}, {}):
        ticket = create_ticket(t, **fields)
        assert ticket["sla"] is None and read(t, ticket["id"])["sla"] is None, fields
    matching = create_ticket(t, priority="HIGH", channel="PHONE")
    expect(matching, both, whole(when(matching["createdAt"])))


def test_the_organizations_tier_counts(server):
    t = tenant(server)
    enterprise, smb = organization(t, "ENTERPRISE"), organization(t, "SMB")
    tiered = create_policy(t, organizationTiers=["ENTERPRISE"], firstResponseSeconds=DAY)
    rest = create_policy(t, position=1, firstResponseSeconds=3 * DAY)
    for org, policy in ((enterprise, tiered), (smb, rest), (None, rest)):
        ticket = create_ticket(t, **({"organization": org} if org else {}))
        expect(ticket, policy, whole(when(ticket["createdAt"])))


def test_changing_priority_channel_or_organization_chooses_again_from_creation(server):
    t = tenant(server)
    early = create_ticket(t, priority="LOW")  # before any policy: nothing applies until it is chosen again
    enterprise = organization(t, "ENTERPRISE")
    urgent = create_policy(t, priorities=["URGENT"], firstResponseSeconds=DAY, resolutionSeconds=5 * DAY)
    chat = create_policy(t, position=1, channels=["CHAT"], firstResponseSeconds=2 * DAY)
    tiered = create_policy(t, position=2, organizationTiers=["ENTERPRISE"], firstResponseSeconds=3 * DAY,
                           resolutionSeconds=4 * DAY)  # fmt: skip
    ticket = create_ticket(t, priority="LOW", channel="EMAIL")
    assert ticket["sla"] is None
    time.sleep(1.1)  # from here on, due times counted from now would differ from those counted from creation
    assert update_ticket(t, early["id"], subject=unique("renamed"))["sla"] is None
    expect(update_ticket(t, early["id"], priority="URGENT"), urgent, whole(when(early["createdAt"])))
    start = whole(when(ticket["createdAt"]))
    expect(update_ticket(t, ticket["id"], priority="URGENT"), urgent, start)
    # other fields choose nothing and recompute nothing, even after the policy's targets changed
    update_policy(t, urgent["id"], firstResponseSeconds=9 * DAY)
    same = update_ticket(t, ticket["id"], subject=unique("renamed"), tags=["x"], description="more", category="c")
    expect(same, urgent, start)
    expect(update_ticket(t, ticket["id"], priority="LOW", channel="CHAT"), chat, start)
    expect(update_ticket(t, ticket["id"], channel="EMAIL", organization=enterprise), tiered, start)
    assert update_ticket(t, ticket["id"], organization=None)["sla"] is None
    expect(update_ticket(t, ticket["id"], priority="URGENT"), urgent | {"firstResponseSeconds": 9 * DAY}, start)


def test_a_first_response_at_its_due_time_meets_it(server):
    t = tenant(server)
    create_policy(t, firstResponseSeconds=DAY)
    on_time, late = create_ticket(t), create_ticket(t)
    met = update_ticket(t, on_time["id"], firstResponseAt=on_time["sla"]["firstResponseDueAt"])
    assert met["sla"]["state"] == "MET" and met["firstResponseAt"] == met["sla"]["firstResponseDueAt"]
    missed = (when(late["sla"]["firstResponseDueAt"]) + timedelta(microseconds=1)).isoformat()
    assert update_ticket(t, late["id"], firstResponseAt=missed)["sla"]["state"] == "ACTIVE"  # until the timer says so
    assert sla_metrics(t) == {"firstResponseMet": 1, "firstResponseBreached": 0, "resolutionMet": 0,
                              "resolutionBreached": 0, "attainment": 1.0}  # fmt: skip


# --- due times --------------------------------------------------------------------------------


def test_around_the_clock_due_times_are_creation_plus_target_in_whole_seconds(server):
    t = tenant(server)
    both = create_policy(t, channels=["EMAIL"], firstResponseSeconds=DAY + 7, resolutionSeconds=3 * DAY)
    one = create_policy(t, channels=["CHAT"], firstResponseSeconds=2 * DAY)
    for _ in range(3):  # several creation instants: sub-second parts round up, whole seconds stay
        ticket = create_ticket(t, channel="EMAIL")
        start = whole(when(ticket["createdAt"]))
        assert ticket["sla"]["policy"]["id"] == both["id"] and ticket["sla"]["state"] == "ACTIVE"
        assert when(ticket["sla"]["firstResponseDueAt"]) == start + timedelta(seconds=DAY + 7)
        assert when(ticket["sla"]["resolutionDueAt"]) == start + timedelta(seconds=3 * DAY)
        assert ticket["sla"]["firstResponseBreachedAt"] is ticket["sla"]["resolutionBreachedAt"] is None
        assert read(t, ticket["id"])["sla"] == ticket["sla"]
    chat = create_ticket(t, channel="CHAT")
    assert chat["sla"]["policy"]["id"] == one["id"] and chat["sla"]["resolutionDueAt"] is None
    assert when(chat["sla"]["firstResponseDueAt"]) == whole(when(chat["createdAt"])) + timedelta(days=2)


def test_business_hours_count_from_the_next_opening(server):
    t = tenant(server)
    w = two_days_ahead(ZoneInfo("UTC"))
    # 09:00–10:00 and 13:00–17:00, and 20:00 to midnight, on one weekday only
    days = [(w, "13:00", "17:00"), (w, "09:00", "10:00"), (w, "20:00", "24:00")]
    policy = create_policy(t, position=1, firstResponseSeconds=3600, resolutionSeconds=5400,
                           businessHours=hours("UTC", *days))  # fmt: skip
    late = create_policy(t, channels=["PHONE"], firstResponseSeconds=5 * 3600 + 1800, resolutionSeconds=9 * 3600 + 60,
                         businessHours=hours("UTC", *days))  # fmt: skip
    ticket, phone = create_ticket(t), create_ticket(t, channel="PHONE")
    assert (ticket["sla"]["policy"]["id"], phone["sla"]["policy"]["id"]) == (policy["id"], late["id"])
    created = when(ticket["createdAt"])
    assert created.weekday() != w
    opening = datetime.combine(next_opening(created.date(), w), datetime.min.time(), UTC)
    # one hour fills 09:00–10:00 exactly; ninety minutes go on at 13:00
    assert when(ticket["sla"]["firstResponseDueAt"]) == opening + timedelta(hours=10)
    assert when(ticket["sla"]["resolutionDueAt"]) == opening + timedelta(hours=13, minutes=30)
    # 1 h + 4 h, then half an hour after 20:00; nine hours of a nine-hour day end at midnight, the next minute comes a week later
    assert when(phone["sla"]["firstResponseDueAt"]) == opening + timedelta(hours=20, minutes=30)
    assert when(phone["sla"]["resolutionDueAt"]) == opening + timedelta(days=7, hours=9, minutes=1)


def test_holidays_and_time_zones_move_the_opening(server):
    t = tenant(server)
    zone = ZoneInfo("Asia/Kathmandu")  # UTC+05:45, no daylight saving
    w = two_days_ahead(zone)
    first = next_opening(datetime.now(zone).date(), w)
    days = [(w, "09:00", "17:00")]
    plain = create_policy(t, channels=["EMAIL"], firstResponseSeconds=3600, resolutionSeconds=9 * 3600,
                          businessHours=hours(zone.key, *days))  # fmt: skip
    off = create_policy(t, channels=["CHAT"], firstResponseSeconds=3600,
                        businessHours=hours(zone.key, *days, holidays=(first + timedelta(days=7), first)))  # fmt: skip
    email, chat = create_ticket(t, channel="EMAIL"), create_ticket(t, channel="CHAT")
    assert (email["sla"]["policy"]["id"], chat["sla"]["policy"]["id"]) == (plain["id"], off["id"])
    local = when(email["createdAt"]).astimezone(zone).date()
    opening = next_opening(local, w)
    assert opening == first, "the weekday two days ahead is still ahead"

    def at(day: date, hour: int) -> datetime:
        return datetime.combine(day, datetime.min.time().replace(hour=hour), zone).astimezone(UTC)

    assert when(email["sla"]["firstResponseDueAt"]) == at(opening, 10)
    assert when(email["sla"]["resolutionDueAt"]) == at(opening + timedelta(days=7), 10)  # 8 h, then 1 h a week on
    assert when(chat["sla"]["firstResponseDueAt"]) == at(opening + timedelta(days=14), 10)  # two holidays skipped
    assert off["businessHours"]["holidays"] == [first.isoformat(), (first + timedelta(days=7)).isoformat()]
