"""Every verb of every entity, allowed and refused, driven by the tables in models/lifecycle.py.

The cases are generated from ``LIFECYCLES`` at collection, so a new row is tested as soon as it
is added. Each case builds its own entity in the from-state through the public API: it creates
it, then walks the shortest path of verbs and ``update`` moves that the table says lead there.
Verb arguments come from the live schema, so a new verb needs no edit here either.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from models.lifecycle import LIFECYCLES, PAST_TENSE, Lifecycle

# --- the state machines, read at collection ---------------------------------------------------

#: How each entity starts, and the extra create input each start needs.
STARTS: dict[str, dict[str | None, dict[str, Any]]] = {
    "Ticket": {"OPEN": {}}, "Contact": {"LEAD": {}}, "Organization": {None: {}},
    "Deal": {"PROSPECTING": {}}, "Issue": {"OPEN": {}}, "Activity": {"PENDING": {}}, "Metric": {None: {}},
    "Subscription": {"ACTIVE": {}, "TRIALING": {"trialEnd": "2031-01-01T00:00:00+00:00"}},
    "SlaPolicy": {None: {}},
}  # fmt: skip
#: A plain field each entity's ``update`` may change without touching its state.
PLAIN = {
    "Ticket": "subject", "Contact": "name", "Organization": "name", "Deal": "name",
    "Subscription": "plan", "Issue": "title", "Activity": "subject", "Metric": "name", "SlaPolicy": "name",
}  # fmt: skip
#: Entities with verbs beyond update and delete expose ``allowedTransitions``.
HAS_ALLOWED = {entity for entity, lc in LIFECYCLES.items() if lc.rows}

Step = tuple[str, str]  # ("verb", "escalate") or ("move", "PENDING") through update


def next_states(lc: Lifecycle, state: str | None) -> Iterator[tuple[Step, str]]:
    """Every state one step away from ``state``: by a verb row, or by an update move."""
    for verb in dict.fromkeys(v for v, _, _ in lc.rows):
        if lc.permits(verb, state) and (to := lc.target(verb, state)) not in (None, state):
            yield ("verb", verb), to
    for to in sorted(lc.moves.get(state or "", ())):
        yield ("move", to), to


def find_paths(entity: str) -> dict[str | None, tuple[str | None, list[Step]]]:
    """Breadth-first: the start and shortest steps to every state reachable through the API."""
    lc = LIFECYCLES[entity]
    paths: dict[str | None, tuple[str | None, list[Step]]] = {s: (s, []) for s in STARTS[entity]}
    queue = deque(STARTS[entity])
    while queue:
        state = queue.popleft()
        start, steps = paths[state]
        for step, to in next_states(lc, state):
            if to not in paths:
                paths[to] = (start, [*steps, step])
                queue.append(to)
    return paths


#: Entities written by another entity's verb (a comment, by ``commentTicket``): no create
#: mutation to build them from; ``test_conversation`` tests them.
WRITTEN_BY_OTHERS = {"Comment"}
LIFECYCLES = {entity: lc for entity, lc in LIFECYCLES.items() if entity not in WRITTEN_BY_OTHERS}
PATHS = {entity: find_paths(entity) for entity in LIFECYCLES}


def all_states(lc: Lifecycle) -> set[str]:
    states = {s for _, src, to in lc.rows for s in src | {to}} | set(lc.moves)
    states |= {s for targets in lc.moves.values() for s in targets}
    return states - {"*", None}


def case(entity: str, *values: Any, state: str | None, id: str) -> Any:
    """A parametrized case on an entity built in ``state``."""
    return pytest.param(entity, *values, id=id)


def verb_cases(permitted: bool) -> list[Any]:
    """(entity, verb, state) for every reachable state the table permits the verb in, or not."""
    word = "from" if permitted else "in"
    return [
        case(e, verb, s, state=s, id=f"{e}-{verb}" if s is None else f"{e}-{verb}-{word}-{s}")
        for e, lc in LIFECYCLES.items()
        for verb in lc.verbs
        for s in PATHS[e]
        if lc.permits(verb, s) == permitted
    ]


def move_cases() -> Iterator[Any]:
    for entity, lc in LIFECYCLES.items():
        if lc.state_field and lc.moves:  # no moves: the Update input has no state field (Deal)
            for state in PATHS[entity]:
                for to in sorted(all_states(lc) - {state}):
                    yield case(entity, state, to, state=state, id=f"{entity}-{state}-to-{to}")


def entity_verb_cases(verbs_of) -> list[Any]:
    return [
        pytest.param(entity, verb, id=f"{entity}-{verb}")
        for entity, lc in LIFECYCLES.items()
        for verb in verbs_of(entity, lc)
    ]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def upper(verbs: list[str]) -> list[str]:
    return [verb.upper() for verb in verbs]


def lower_first(entity: str) -> str:
    return entity[0].lower() + entity[1:]


def plural(entity: str) -> str:
    name = lower_first(entity)
    return name[:-1] + "ies" if name.endswith("y") else name + "s"


# --- talking to the server ----------------------------------------------------------------------

_fresh = itertools.count(2)


def type_text(t: dict) -> str:
    if t["kind"] == "NON_NULL":
        return type_text(t["ofType"]) + "!"
    if t["kind"] == "LIST":
        return f"[{type_text(t['ofType'])}]"
    return t["name"]


class Api:
    """Mutations by name, with variables typed from the live schema's introspection."""

    SIGNATURES = (
        "{ __schema { mutationType { fields { name args { name "
        "type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }"
    )

    def __init__(self, server: Any) -> None:
        self.server = server
        fields = server.data(self.SIGNATURES)["__schema"]["mutationType"]["fields"]
        self.args = {f["name"]: {a["name"]: a["type"] for a in f["args"]} for f in fields}

    def fields(self, entity: str) -> str:
        lc = LIFECYCLES[entity]
        state = lc.state_field or ""
        allowed = "allowedTransitions" if entity in HAS_ALLOWED else ""
        events = "events(last: 1) { totalCount nodes { type version data } }"
        return f"id version deletedAt {state} {allowed} {events}"

    def _operation(self, name: str, variables: dict[str, Any], fields: str) -> str:
        declared = ", ".join(f"${k}: {type_text(self.args[name][k])}" for k in variables)
        passed = ", ".join(f"{k}: ${k}" for k in variables)
        return f"mutation({declared}) {{ {name}({passed}) {{ {fields} }} }}"

    def mutate(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        return self.server.data(self._operation(name, variables, "id version"), variables)[name]

    def refuse(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        return self.server.error(self._operation(name, variables, "id"), variables)

    def create(self, entity: str, extra: dict[str, Any] | None = None) -> str:
        tag = uuid.uuid4().hex[:8]
        required = {
            "Ticket": {"subject": f"ticket {tag}"}, "Contact": {"name": f"contact {tag}"},
            "Organization": {"name": f"org {tag}"}, "Deal": {"name": f"deal {tag}", "value": 1200.0},
            "Subscription": {"startedAt": "2030-01-01T00:00:00+00:00"}, "Issue": {"title": f"issue {tag}"},
            "Activity": {"subject": f"activity {tag}"}, "Metric": {"name": f"metric {tag}", "value": 1.0},
            "SlaPolicy": {"name": f"policy {tag}", "active": False},  # inactive: applies to no ticket
        }  # fmt: skip
        return self.mutate(f"create{entity}", {"input": required[entity] | (extra or {})})["id"]

    def fresh(self, type_: dict, name: str) -> Any:
        """A value never used before for a verb argument, so it always shows in the event."""
        kind, n = type_text(type_).rstrip("!"), next(_fresh)
        if kind == "ID" and name == "into":  # mergeTicket: another ticket to merge into
            return self.create("Ticket")
        if kind == "ID":  # the other references verbs take are teammates (contacts)
            return self.create("Contact")
        if kind == "CommentInput":
            return {"body": f"{name} {n}"}
        values = {"String": f"{name} {n}", "Int": n, "Float": n + 0.5}
        if kind not in values and type_["kind"] == "NON_NULL":
            pytest.fail(f"no test value for required argument {name}: {kind}")
        return values.get(kind)

    def verb_args(self, entity: str, verb: str) -> dict[str, Any]:
        """The arguments (besides id and expectedVersion) for ``verb``: fresh values."""
        if verb == "update":
            return {"input": {PLAIN[entity]: f"renamed {next(_fresh)}"}}
        skip = {"id", "expectedVersion"}
        found = {k: self.fresh(t, k) for k, t in self.args[f"{verb}{entity}"].items() if k not in skip}
        return {k: v for k, v in found.items() if v is not None}

    def read(self, entity: str, id_: str) -> dict[str, Any]:
        """The entity with its last event, deleted or not."""
        query = (
            f"query($id: ID!) {{ {plural(entity)}(where: {{id: {{eq: $id}}}}, includeDeleted: true) "
            f"{{ nodes {{ {self.fields(entity)} }} }} }}"
        )
        (found,) = self.server.data(query, {"id": id_})[plural(entity)]["nodes"]
        return found

    def build(self, entity: str, state: str | None) -> dict[str, Any]:
        """A new entity in ``state``, reached through the API along the shortest path."""
        lc = LIFECYCLES[entity]
        start, steps = PATHS[entity][state]
        id_ = self.create(entity, STARTS[entity][start])
        for kind, what in steps:
            if kind == "verb":
                self.mutate(f"{what}{entity}", {"id": id_, **self.verb_args(entity, what)})
            else:
                self.mutate(f"update{entity}", {"id": id_, "input": {lc.state_field: what}})
        built = self.read(entity, id_)
        assert lc.state_field is None or built[lc.state_field] == state
        return built


@pytest.fixture(scope="module")
def api(server: Any) -> Api:
    return Api(server)


def state_of(entity: str, row: dict[str, Any]) -> str | None:
    field = LIFECYCLES[entity].state_field
    return row[field] if field else None


def assert_recorded(entity: str, verb: str, row: dict[str, Any]) -> dict[str, Any]:
    """The entity's last event is ``Entity.PastTense`` at its version; one event per version."""
    events = row["events"]
    assert events["totalCount"] == row["version"]
    last = events["nodes"][-1]
    assert last["type"] == f"{entity}.{PAST_TENSE[verb]}"
    assert last["version"] == row["version"]
    return last["data"]


def assert_refused(api: Api, before: dict, entity: str, name: str, variables: dict, code: str) -> dict:
    """Mutation ``name`` on ``before`` fails with ``code`` and writes nothing; its extensions."""
    counts = api.server.counts()
    error = api.refuse(name, variables)
    assert error["extensions"]["code"] == code, error
    assert api.server.counts() == counts
    assert api.read(entity, before["id"])["version"] == before["version"]
    return error["extensions"]


# --- create, then verbs: allowed and refused ----------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "state"),
    [case(e, s, state=s, id=f"{e}-{s}") for e, starts in STARTS.items() for s in starts],
)
def test_create_starts_in_its_initial_state(api, entity, state):
    created = api.read(entity, api.create(entity, STARTS[entity][state]))
    assert state_of(entity, created) == state and created["version"] == 1
    assert created["deletedAt"] is None
    assert assert_recorded(entity, "create", created)["id"] == created["id"]


@pytest.mark.parametrize(("entity", "verb", "state"), verb_cases(permitted=True))
def test_allowed_verb_moves_state_and_records_its_event(api, entity, verb, state):
    lc = LIFECYCLES[entity]
    before = api.build(entity, state)
    args = api.verb_args(entity, verb)
    api.mutate(f"{verb}{entity}", {"id": before["id"], **args})

    after = api.read(entity, before["id"])
    expected = lc.target(verb, state) if verb not in ("update", "delete") else None
    expected = state if expected is None else expected
    assert state_of(entity, after) == expected
    assert after["version"] == before["version"] + 1
    data = assert_recorded(entity, verb, after)
    if expected != state:
        assert data[lc.state_field] == {"before": state, "after": expected}
    for name, value in (args["input"] if verb == "update" else args).items():
        # A verb argument is recorded as itself (``reason``) or as the field it set (``wonReason``).
        changed = [v["after"] for v in data.values() if isinstance(v, dict) and "after" in v]
        # An input object is recorded as a document holding its fields (``comment``).
        recorded = isinstance(value, dict) and any(
            isinstance(v, dict) and value.items() <= v.items() for v in data.values()
        )
        assert data.get(name) == value or value in changed or recorded, (name, value, data)
    if verb == "delete":
        assert after["deletedAt"] is not None and data["deletedAt"]["after"] is not None
        assert after.get("allowedTransitions", []) == []
    elif lc.sealed_by and verb == "merge":  # merged away: no more verbs
        assert after["allowedTransitions"] == []
    elif entity in HAS_ALLOWED:
        assert after["allowedTransitions"] == upper(lc.allowed(expected))


@pytest.mark.parametrize(("entity", "verb", "state"), verb_cases(permitted=False))
def test_refused_verb_is_invalid_transition_and_writes_nothing(api, entity, verb, state):
    before = api.build(entity, state)
    variables = {"id": before["id"], **api.verb_args(entity, verb)}
    extensions = assert_refused(api, before, entity, f"{verb}{entity}", variables, "INVALID_TRANSITION")
    assert extensions["from"] == state
    assert extensions["verb"] == verb.upper()
    assert extensions["allowed"] == upper(LIFECYCLES[entity].allowed(state))


@pytest.mark.parametrize(
    ("entity", "state"),
    [case(e, s, state=s, id=f"{e}-{s}") for e in sorted(HAS_ALLOWED) for s in PATHS[e]],
)
def test_allowed_transitions_follow_the_table(api, entity, state):
    built = api.build(entity, state)
    assert built["allowedTransitions"] == upper(LIFECYCLES[entity].allowed(state))


# --- update through the state field --------------------------------------------------------------


@pytest.mark.parametrize(("entity", "state", "to"), list(move_cases()))
def test_update_moves_state_only_as_the_table_allows(api, entity, state, to):
    lc = LIFECYCLES[entity]
    before = api.build(entity, state)
    variables = {"id": before["id"], "input": {lc.state_field: to}}
    if lc.may_move(state, to):
        api.mutate(f"update{entity}", variables)
        after = api.read(entity, before["id"])
        assert state_of(entity, after) == to and after["version"] == before["version"] + 1
        data = assert_recorded(entity, "update", after)
        assert data[lc.state_field] == {"before": state, "after": to}
    else:
        extensions = assert_refused(api, before, entity, f"update{entity}", variables, "INVALID_TRANSITION")
        assert extensions["from"] == state and extensions["verb"] == "UPDATE"
        assert extensions["allowed"] == upper(lc.allowed(state))


# --- expectedVersion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "verb"),
    entity_verb_cases(lambda entity, lc: lc.allowed(next(iter(STARTS[entity])))),
)
def test_expected_version_must_match(api, entity, verb):
    start = next(iter(STARTS[entity]))
    built = api.build(entity, start)
    api.mutate(f"update{entity}", {"id": built["id"], **api.verb_args(entity, "update")})
    current = api.read(entity, built["id"])
    assert current["version"] == built["version"] + 1

    variables = {"id": built["id"], **api.verb_args(entity, verb)}
    stale = variables | {"expectedVersion": built["version"]}
    extensions = assert_refused(api, current, entity, f"{verb}{entity}", stale, "VERSION_CONFLICT")
    assert extensions["expected"] == built["version"] and extensions["actual"] == current["version"]

    api.mutate(f"{verb}{entity}", variables | {"expectedVersion": current["version"]})
    after = api.read(entity, built["id"])
    assert after["version"] == current["version"] + 1
    assert_recorded(entity, verb, after)


# --- soft delete --------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", list(LIFECYCLES))
def test_delete_hides_from_lists_unless_include_deleted(api, server, entity):
    built = api.build(entity, next(iter(STARTS[entity])))
    deleted = server.data(f"mutation($id: ID!) {{ delete{entity}(id: $id) {{ id deletedAt }} }}", {"id": built["id"]})[
        f"delete{entity}"
    ]
    assert deleted["deletedAt"] is not None
    assert when(deleted["deletedAt"]).tzinfo is not None
    listed = (
        f"query($id: ID!, $all: Boolean!) {{ {plural(entity)}(where: {{id: {{eq: $id}}}}, "
        f"includeDeleted: $all) {{ totalCount nodes {{ id deletedAt }} }} }}"
    )
    hidden = server.data(listed, {"id": built["id"], "all": False})[plural(entity)]
    assert hidden == {"totalCount": 0, "nodes": []}
    shown = server.data(listed, {"id": built["id"], "all": True})[plural(entity)]
    assert shown == {"totalCount": 1, "nodes": [deleted]}
    one = server.data(f"query($id: ID!) {{ {lower_first(entity)}(id: $id) {{ id }} }}", {"id": built["id"]})
    assert one[lower_first(entity)] is None


@pytest.mark.parametrize(("entity", "verb"), entity_verb_cases(lambda entity, lc: lc.verbs))
def test_verbs_on_a_deleted_entity_are_not_found(api, entity, verb):
    built = api.build(entity, next(iter(STARTS[entity])))
    api.mutate(f"delete{entity}", {"id": built["id"]})
    deleted = api.read(entity, built["id"])
    variables = {"id": built["id"], **api.verb_args(entity, verb)}
    assert_refused(api, deleted, entity, f"{verb}{entity}", variables, "NOT_FOUND")


# --- ticket specifics ---------------------------------------------------------------------------

TICKET_TIMES = """query($id: ID!) {
  ticket(id: $id) { status resolvedAt closedAt events(last: 1) { nodes { data } } }
}"""


def test_ticket_resolve_close_reopen_stamp_and_clear_times(api, server):
    ticket_id = api.create("Ticket")

    def after(mutation: str, **args: Any) -> tuple[dict, dict]:
        api.mutate(mutation, {"id": ticket_id, **args})
        ticket = server.data(TICKET_TIMES, {"id": ticket_id})["ticket"]
        return ticket, ticket["events"]["nodes"][-1]["data"]

    resolved, data = after("resolveTicket", resolution="restarted the spooler")
    assert resolved["status"] == "RESOLVED" and resolved["closedAt"] is None
    assert when(resolved["resolvedAt"]).tzinfo is not None
    assert data["status"] == {"before": "OPEN", "after": "RESOLVED"}
    assert data["resolvedAt"]["before"] is None
    assert when(data["resolvedAt"]["after"]) == when(resolved["resolvedAt"])
    assert data["resolution"] == "restarted the spooler"

    closed, data = after("closeTicket")
    assert closed["status"] == "CLOSED" and closed["resolvedAt"] == resolved["resolvedAt"]
    assert when(closed["closedAt"]) >= when(resolved["resolvedAt"])
    assert data["status"] == {"before": "RESOLVED", "after": "CLOSED"} and data["closedAt"]["before"] is None

    reopened, data = after("reopenTicket", reason="it is on fire again")
    assert reopened["status"] == "REOPENED"
    assert reopened["resolvedAt"] is None and reopened["closedAt"] is None
    assert data["status"] == {"before": "CLOSED", "after": "REOPENED"}
    assert data["resolvedAt"]["after"] is None and data["closedAt"]["after"] is None
    assert when(data["closedAt"]["before"]) == when(closed["closedAt"])
    assert data["reason"] == "it is on fire again"
