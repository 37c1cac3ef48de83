"""Full-text search (``searchTickets``) end to end, on SQLite (FTS5) and PostgreSQL (tsvector).

Subject, description and comment bodies are searched; case, accents and English endings do not
matter; quoted phrases, ``-word`` exclusions and ``OR`` work; the best match comes first (ties:
newest first); ``where``, ``totalCount`` and cursors work as on every connection; every write
is searchable as soon as its mutation returns; no query string, however odd, is INTERNAL.

Every test searches for words it made up (``word()``): other tests' rows never change what it sees.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resolvers.keys
from tests.live import LiveServer

SEARCH = """query($q: String!, $where: TicketWhere, $first: Int, $after: String) {
  searchTickets(query: $q, where: $where, first: $first, after: $after) {
    totalCount edges { cursor node { id } } nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
LETTERS = str.maketrans("0123456789", "ghijklmnop")


def word() -> str:
    """A made-up word found nowhere else: letters only (one token for both databases)."""
    return "zq" + uuid.uuid4().hex[:10].translate(LETTERS)


def search(server: LiveServer, q: str, headers: dict | None = None, **args) -> dict:
    """One page of ``searchTickets``, with its ids; edges and nodes agree."""
    page = server.data(SEARCH, {"q": q, **args}, headers)["searchTickets"]
    assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
    return {**page, "ids": [n["id"] for n in page["nodes"]]}


def found(server: LiveServer, q: str, **args) -> list[str]:
    """Every match (at most 100), in order, checking that totalCount agrees."""
    page = search(server, q, first=100, **args)
    assert page["totalCount"] == len(page["ids"]), page
    return page["ids"]


def refused(server: LiveServer, q: str, **args) -> None:
    error = server.error(SEARCH, {"q": q, **args})
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error


def ticket(server: LiveServer, subject: str, headers: dict | None = None, **values) -> str:
    document = "mutation($i: CreateTicketInput!) { createTicket(input: $i) { id } }"
    return server.data(document, {"i": {"subject": subject, **values}}, headers)["createTicket"]["id"]


def comment(server: LiveServer, ticket_id: str, body: str, public: bool = True) -> str:
    """Comment on a ticket; the new comment's id."""
    document = """mutation($id: ID!, $body: String!, $public: Boolean) {
      commentTicket(id: $id, input: {body: $body, public: $public}) { comments(first: 100) { nodes { id body } } } }"""
    nodes = server.data(document, {"id": ticket_id, "body": body, "public": public})["commentTicket"]["comments"]
    made = [n["id"] for n in nodes["nodes"] if n["body"] == body]
    assert len(made) == 1, nodes
    return made[0]


# --- what is searched ----------------------------------------------------------------------------


def test_subject_description_and_comment_bodies_are_found(server):
    w = word()
    in_subject = ticket(server, f"Printer {w} on fire")
    in_description = ticket(server, "Printer on fire", description=f"It says {w} and smokes")
    in_comment = ticket(server, "Printer on fire")
    comment(server, in_comment, f"Now it says {w} too")
    ticket(server, "Printer on fire", description="nothing to see")
    assert set(found(server, w)) == {in_subject, in_description, in_comment}


def test_case_and_accents_do_not_matter(server):
    w = word()
    lower, upper = ticket(server, f"Café {w} machine"), ticket(server, f"CAFÉ {w} MACHINE")
    plain = ticket(server, f"Cafe {w} machine")
    ticket(server, f"Tea {w} machine")
    for q in (f"cafe {w}", f"CAFÉ {w}", f"café {w.upper()}", f"Cafe {w}"):
        assert set(found(server, q)) == {lower, upper, plain}, q


def test_english_stems_match(server):
    w = word()
    refund = ticket(server, f"{w} asking for a refund")
    charge = ticket(server, f"{w} wrong charge on the card")
    charging = ticket(server, f"{w} they keep charging me")
    ticket(server, f"{w} unrelated billing question")
    assert found(server, f"refunds {w}") == [refund]
    assert found(server, f"refund {w}") == [refund]
    assert set(found(server, f"charged {w}")) == {charge, charging}


def test_a_quoted_phrase_needs_its_words_adjacent_and_in_order(server):
    w = word()
    adjacent = ticket(server, f"{w} billing address is wrong")
    in_description = ticket(server, f"{w} wrong", description="Update my Billing Address please")
    reversed_ = ticket(server, f"{w} the address for billing is wrong")
    apart = ticket(server, f"{w} billing is wrong, address too")
    assert set(found(server, f'"billing address" {w}')) == {adjacent, in_description}
    assert set(found(server, f"billing address {w}")) == {adjacent, in_description, reversed_, apart}


def test_a_phrase_does_not_span_the_subject_and_the_description(server):
    w = word()
    made = ticket(server, f"{w} wrong billing", description="address is old")
    assert found(server, f'"billing address" {w}') == []
    assert found(server, f'"wrong billing" {w}') == [made]


def test_a_phrase_does_not_span_two_comments(server):
    w = word()
    made = ticket(server, f"{w} thread")
    comment(server, made, "please check the invoice")
    comment(server, made, "number seven")
    assert found(server, f'"invoice number" {w}') == []
    assert found(server, f'"number seven" {w}') == [made]


def test_an_excluded_word_anywhere_excludes_the_ticket(server):
    w, x = word(), word()
    kept = ticket(server, f"{w} printer")
    ticket(server, f"{w} printer {x}")
    ticket(server, f"{w} printer", description=f"says {x}")
    commented = ticket(server, f"{w} printer")
    comment(server, commented, "first comment is harmless")
    comment(server, commented, f"second mentions {x}")
    noted = ticket(server, f"{w} printer")
    comment(server, noted, f"internal {x}", public=False)
    assert found(server, f"{w} -{x}") == [kept]
    assert found(server, f"-{x} {w}") == [kept]


def test_or_between_words(server):
    w1, w2, w3 = word(), word(), word()
    one, two = ticket(server, f"{w1} printer"), ticket(server, f"scanner {w2}")
    both = ticket(server, f"{w1} and {w2}")
    ticket(server, f"{w3} copier")
    assert set(found(server, f"{w1} OR {w2}")) == {one, two, both}
    assert found(server, f"{w1} {w2}") == [both]


# --- order, where, totalCount, cursors -------------------------------------------------------------


def test_the_best_match_comes_first(server):
    w = word()
    strong = ticket(server, f"{w} broken")  # the older one: the order is the match's doing
    for n in range(3):
        comment(server, strong, f"still {w} number {n}")
    weak = ticket(server, "Something broken", description=f"maybe {w} is involved somewhere in this")
    assert found(server, w) == [strong, weak]


def test_equal_matches_come_newest_first(server):
    w = word()
    made = [ticket(server, f"{w} identical subject") for _ in range(4)]
    assert found(server, w) == made[::-1]


def test_where_narrows_the_search(server):
    w, tag = word(), word()
    open_tagged = ticket(server, f"{w} one", tags=[tag])
    open_plain = ticket(server, f"{w} two", priority="HIGH")
    pending = ticket(server, f"{w} three", tags=[tag])
    server.data("mutation($id: ID!) { updateTicket(id: $id, input: {status: PENDING}) { id } }", {"id": pending})
    ticket(server, "no match here", tags=[tag])
    assert set(found(server, w, where={"status": {"eq": "OPEN"}})) == {open_tagged, open_plain}
    assert set(found(server, w, where={"tags": {"hasAny": [tag]}})) == {open_tagged, pending}
    both = {"status": {"eq": "PENDING"}, "tags": {"hasAny": [tag]}}
    assert found(server, w, where=both) == [pending]
    assert found(server, w, where={"priority": {"eq": "HIGH"}}) == [open_plain]
    assert found(server, w, where={"status": {"eq": "CLOSED"}}) == []


def test_total_count_and_cursors_walk_every_match_once(server):
    w = word()
    made = [ticket(server, f"{w} same") for _ in range(3)]  # ties
    made += [ticket(server, "other", description=f"{w} in the description") for _ in range(2)]
    for n in range(2):
        made.append(ticket(server, f"{w} commented"))
        comment(server, made[-1], f"{w} " * (n + 1))
    whole = found(server, w)
    assert sorted(whole) == sorted(made)
    walked, after, pages = [], None, 0
    while True:
        page = search(server, w, first=2, after=after)
        assert page["totalCount"] == len(made)
        assert len(page["ids"]) == (2 if pages < 3 else 1)
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        walked += page["ids"]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert pages < 10, "the walk does not end"
    assert walked == whole
    assert len(set(walked)) == len(walked) == len(made)
    middle = search(server, w, first=100, after=search(server, w, first=3)["pageInfo"]["endCursor"])
    assert middle["ids"] == whole[3:]


def test_first_zero_counts_without_rows(server):
    w = word()
    for _ in range(2):
        ticket(server, f"{w} counted")
    page = search(server, w, first=0)
    assert (page["ids"], page["totalCount"]) == ([], 2)


@pytest.mark.parametrize("first", [101, 1000, -1])
def test_a_page_size_out_of_bounds_is_bad_input(server, first):
    refused(server, "printer", first=first)


def b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


MALFORMED_CURSORS = {
    "not_base64": "!!!not a cursor!!!",
    "base64_of_garbage": base64.urlsafe_b64encode(b"\x00\xffnot json").decode(),
    "json_not_a_list": b64({"rank": 1}),
    "too_long": b64([1.5, "2026-01-01T00:00:00+00:00", "ticket_abcdefgh", 3, 4, 5]),
    "null_values": b64([None, None, None]),
    "an_id": "ticket_zzzzzzzz",
}


@pytest.mark.parametrize("after", MALFORMED_CURSORS.values(), ids=MALFORMED_CURSORS.keys())
def test_a_malformed_cursor_is_bad_input(server, after):
    refused(server, "printer", after=after)


# --- writes are searchable at once ---------------------------------------------------------------


def test_a_created_ticket_is_found_at_once(server):
    w = word()
    made = ticket(server, f"Fresh {w}")
    assert found(server, w) == [made]


def test_an_updated_subject_and_description_are_found_and_the_old_words_are_not(server):
    old, new, described = word(), word(), word()
    made = ticket(server, f"{old} subject", description="plain")
    server.data(
        "mutation($id: ID!, $s: String!, $d: String!) { updateTicket(id: $id, input: {subject: $s, description: $d}) { id } }",
        {"id": made, "s": f"{new} subject", "d": f"now {described}"},
    )
    assert found(server, new) == [made]
    assert found(server, described) == [made]
    assert found(server, old) == []


def test_comments_and_internal_notes_are_found_at_once(server):
    public, internal = word(), word()
    made = ticket(server, "Comment me")
    comment(server, made, f"a public reply {public}")
    assert found(server, public) == [made]
    comment(server, made, f"an internal note {internal}", public=False)
    assert found(server, internal) == [made]
    assert found(server, f"{public} {internal}") == [made]
    merged, target = word(), ticket(server, "Merge target")  # the merge's note on the target is a comment too
    merge = "mutation($a: ID!, $b: ID!, $c: String) { mergeTicket(id: $a, into: $b, comment: $c) { id } }"
    server.data(merge, {"a": made, "b": target, "c": f"duplicate {merged}"})
    assert found(server, merged) == [target]


def test_a_deleted_ticket_is_not_found(server):
    w = word()
    gone, kept = ticket(server, f"{w} doomed"), ticket(server, f"{w} kept")
    server.data("mutation($id: ID!) { deleteTicket(id: $id) { id } }", {"id": gone})
    assert found(server, w) == [kept]


def test_a_deleted_comment_takes_its_words_with_it(server):
    w, dropped, other = word(), word(), word()
    made = ticket(server, f"{w} thread")
    doomed = comment(server, made, f"remove {dropped} please")
    comment(server, made, f"keep {other}")
    assert found(server, f"{w} -{dropped}") == []
    server.data("mutation($id: ID!) { deleteComment(id: $id) { id } }", {"id": doomed})
    assert found(server, dropped) == []
    assert found(server, other) == [made]
    assert found(server, f"{w} -{dropped}") == [made]


def test_a_ticket_with_a_long_thread_of_distinct_words_still_takes_comments(server):
    """Fourteen 64 KB comments of distinct words (pasted logs): more than a tsvector holds (1 MB)."""
    w = word()
    made = ticket(server, f"{w} logs")
    document = "mutation($id: ID!, $b: String!) { commentTicket(id: $id, input: {body: $b, public: false}) { id } }"
    for _ in range(14):
        body = " ".join(uuid.uuid4().hex[:12].translate(LETTERS) for _ in range(5000))[:65_000]
        server.data(document, {"id": made, "b": body})
    assert found(server, w) == [made]


# --- tenants ---------------------------------------------------------------------------------------


def test_another_tenants_tickets_are_never_found(server):
    _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=f"search-{uuid.uuid4().hex[:8]}"))
    theirs = {"Authorization": f"Bearer {key}"}
    w = word()
    mine = ticket(server, f"{w} mine")
    other = ticket(server, f"{w} theirs", headers=theirs)
    comment_only = ticket(server, "theirs too", headers=theirs)
    server.data(
        "mutation($id: ID!, $b: String!) { commentTicket(id: $id, input: {body: $b}) { id } }",
        {"id": comment_only, "b": f"{w} in a comment"},
        theirs,
    )
    assert found(server, w) == [mine]
    page = search(server, w, headers=theirs, first=100)
    assert (set(page["ids"]), page["totalCount"]) == ({other, comment_only}, 2)
    cursor = search(server, w, headers=theirs, first=1)["pageInfo"]["endCursor"]  # theirs, used by us
    page = search(server, w, first=100, after=cursor)
    assert set(page["ids"]) <= {mine} and page["totalCount"] == 1


# --- hostile queries ---------------------------------------------------------------------------------


def answer(server: LiveServer, q: str) -> dict:
    """The response to a search: well formed, data or BAD_USER_INPUT, never INTERNAL."""
    response = server.http.post("/graphql", json={"query": SEARCH, "variables": {"q": q, "first": 5}})
    assert response.status_code < 500, response.text[:2000]
    body = response.json()
    errors = body.get("errors") or []
    assert [e.get("extensions", {}).get("code") for e in errors] in ([], ["BAD_USER_INPUT"]), errors
    if not errors:
        page = body["data"]["searchTickets"]
        assert page["totalCount"] >= len(page["nodes"])
    for leak in ("Traceback", "sqlalchemy", "asyncpg", "aiosqlite", "fts5", "tsquery"):
        assert leak not in response.text, response.text[:2000]
    return body


PIECES = [
    '"', "'", "(", ")", "*", ":", "^", "-", "+", "~", "!", "&", "|", "<->", "\\", "{", "}", "[", "]",
    "NEAR", "NEAR/2", "AND", "OR", "NOT", "or", "and", "\x00", "😀", "é", "ß", "İ", "\u200b", " ", "  ",
    "\t", "\n", "refund", "the", "a", "col:", "subject:", "0", "1.5", "%", "_", ",", ".", "?", "'';--",
]  # fmt: skip
HOSTILE = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
    st.lists(st.sampled_from(PIECES), max_size=20).map(" ".join),
    st.text(max_size=200),
    st.builds(lambda piece, n: piece * n, st.sampled_from(PIECES), st.integers(200, 20_000)),
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(q=HOSTILE)
def test_hostile_query_strings_are_never_internal(server, q):
    answer(server, q)


ODD = [  # the query, and what it must give: "refused" (BAD_USER_INPUT), "data", or "either"
    ("", "refused"), ("   ", "refused"), ('"', "refused"), ("-", "refused"), ("((", "refused"),
    ("-refund", "refused"), ('-"billing address"', "refused"), ("OR", "either"), ("a*", "either"),
    ("col:word", "data"), ("NEAR(a b)", "data"), ("refund OR", "data"), ('"unclosed phrase', "data"),
    ("x" * 100_000, "either"), ("refund\x00", "either"), ("refund " * 150, "either"),
]  # fmt: skip


@pytest.mark.parametrize(("q", "expected"), ODD, ids=[repr(q)[:24] for q, _ in ODD])
def test_odd_query_strings(server, q, expected):
    body = answer(server, q)
    if expected == "refused":
        assert body.get("errors"), body
    elif expected == "data":
        assert not body.get("errors"), body


@pytest.mark.parametrize("template", ["col:{a}", "NEAR({a} {b})", "{a}* {b}^", "({a}) AND {b}", '"{a}', "{a}:{b}"])
def test_operators_and_punctuation_are_only_separators(server, template):
    """A ticket whose subject is the query's own text is found by it: no engine syntax gets through."""
    a, b = word(), word()
    q = template.format(a=a, b=b)
    made = ticket(server, q)
    ticket(server, f"{b} alone")  # not every word of the query
    assert found(server, q) == [made]
