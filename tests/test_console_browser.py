"""The console in a real browser (Debian's Chromium under Playwright) against a real server on
SQLite and PostgreSQL: signing in with an API key, the live queue (a ticket made by another
client appears, a resolved one leaves), a ticket's thread, reply and note boxes and verbs,
SLA countdowns, keyboard use, and a phone-width layout. Screenshots go to ``SCREENSHOT_DIR``
(tests/browser.py). Every page is checked for script errors and for any request that leaves
the server.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

import resolvers.keys
from graph.server.settings import Settings
from tests.browser import PHONE, SCREENSHOTS, Line, Tab, chromium, console_server, opened, screenshot_path
from tests.conftest import UNTHROTTLED
from tests.databases import fresh_database
from tests.live import LiveServer

#: a shared machine may be slow: each expectation waits up to this long (it passes as soon as met)
expect.set_options(timeout=15_000)

OPEN_WORK = {"status": {"nin": ["RESOLVED", "CLOSED"]}}
DUE_NEXT = [{"field": "SLA_DUE_AT"}, {"field": "PRIORITY", "direction": "DESC"}, {"field": "CREATED_AT"}]
TICKET = (
    "id version subject status priority assignee { id } allowedTransitions firstResponseAt"
    " sla { state firstResponseDueAt resolutionDueAt }"
)


@dataclass
class Desk:
    """A server that asks for keys, with one agent's key, a policy and two contacts."""

    server: LiveServer
    kind: str
    key: str
    agent: str = ""
    requester: str = ""

    def data(self, query: str, variables: dict | None = None) -> dict:
        return self.server.data(query, variables, {"Authorization": f"Bearer {self.key}"})

    async def another_client(self, query: str, variables: dict | None = None) -> dict:
        """What another client does, over HTTP, while the page looks on."""
        return await asyncio.to_thread(self.data, query, variables)

    def create_ticket(self, subject: str, priority: str = "MEDIUM") -> dict:
        create = f"mutation($i: CreateTicketInput!) {{ createTicket(input: $i) {{ {TICKET} }} }}"
        ticket = {"subject": subject, "priority": priority, "requester": self.requester, "channel": "EMAIL"}
        return self.data(create, {"i": ticket})["createTicket"]

    def ticket(self, id_: str) -> dict:
        query = (
            f"query($id: ID!) {{ ticket(id: $id) {{ {TICKET} comments {{ nodes {{ body public authorRole }} }} }} }}"
        )
        return self.data(query, {"id": id_})["ticket"]

    def queue_subjects(self, where: dict | None = None) -> list[str]:
        """The open work (narrowed by `where`) in the order the console's "Due next" asks for, as the server has it."""
        query = "query($w: TicketWhere, $o: [TicketOrder!]) { tickets(where: $w, orderBy: $o, first: 50) { nodes { subject } } }"
        narrowed = {**OPEN_WORK, **(where or {})}
        return [t["subject"] for t in self.data(query, {"w": narrowed, "o": DUE_NEXT})["tickets"]["nodes"]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def desk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with fresh_database(request.param, tmp_path_factory.mktemp("console")) as url:
        server = console_server(Settings(database_url=url, require_auth=True, limits=UNTHROTTLED))
        try:
            tenant = f"desk-{uuid.uuid4().hex[:8]}"
            _, key = server.run(resolvers.keys.create_key(server.services.db, tenant=tenant, actor="agent:ada"))
            desk = Desk(server, request.param, key)
            desk.data(
                'mutation { createSlaPolicy(input: {name: "Standard", firstResponseSeconds: 3600,'
                " resolutionSeconds: 86400}) { id } }"
            )
            people = desk.data(
                'mutation { a: createContact(input: {name: "Ada Agent"}) { id }'
                ' r: createContact(input: {name: "Rita Requester", email: "rita@example.com"}) { id } }'
            )
            desk.agent, desk.requester = people["a"]["id"], people["r"]["id"]
            yield desk
        finally:
            server.stop()


@pytest_asyncio.fixture(scope="module")
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and any(SCREENSHOTS.glob("*.png")):
        reporter.write_line(f"console screenshots: {SCREENSHOTS}")


@pytest_asyncio.fixture
async def tab(browser: Browser, desk: Desk) -> AsyncIterator[Tab]:
    async with opened(browser, desk.server) as fresh:
        yield fresh


async def sign_in(page: Page, desk: Desk) -> None:
    await page.goto(f"{desk.server.url}/console")
    await page.get_by_label("API key").fill(desk.key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#workspace")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text("Live")


async def no_sideways_scrolling(page: Page) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def queue_row(page: Page, subject: str) -> Any:
    return page.locator("#queue-list li", has_text=subject)


# --- signing in -------------------------------------------------------------------------------


async def test_an_agent_signs_in_with_a_key_kept_for_the_tab_only(tab: Tab, desk: Desk):
    page = tab.page
    await page.goto(f"{desk.server.url}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("#workspace")).to_be_hidden()
    await expect(page.get_by_label("API key")).to_be_focused()

    await page.get_by_label("API key").fill(desk.key[:-1] + ("A" if desk.key[-1] != "A" else "B"))
    await page.get_by_label("API key").press("Enter")
    await expect(page.get_by_role("alert").filter(has_text="does not accept")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0

    await page.get_by_label("API key").fill(desk.key)
    await page.get_by_label("API key").press("Enter")
    await expect(page.locator("#workspace")).to_be_visible()
    await expect(page.locator("#connection")).to_have_text("Live")  # the WebSocket took the key too
    assert await page.evaluate("Object.values(sessionStorage)") == [desk.key]

    await page.reload()  # the tab keeps its key
    await expect(page.locator("#workspace")).to_be_visible()
    await expect(page.locator("#sign-in")).to_be_hidden()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server without ``--require-auth`` (on SQLite: only the sign-in differs)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('open-console') / 'open.db'}"
    server = console_server(Settings(database_url=url, limits=UNTHROTTLED))
    yield server
    server.stop()


async def test_without_keys_the_console_opens_onto_the_queue(browser: Browser, open_server: LiveServer):
    """Nothing to sign in to (and no sign-out): the page goes straight to the queue."""
    create = 'mutation { createTicket(input: {subject: "Anonymous desk ticket"}) { id } }'
    await asyncio.to_thread(open_server.data, create)
    async with opened(browser, open_server) as tab:
        await tab.page.goto(f"{open_server.url}/console")
        await expect(tab.page.locator("#workspace")).to_be_visible()
        await expect(tab.page.locator("#sign-in")).to_be_hidden()
        await expect(tab.page.get_by_role("button", name="Sign out")).to_be_hidden()
        await expect(tab.page.locator("#connection")).to_have_text("Live")
        await expect(queue_row(tab.page, "Anonymous desk ticket")).to_be_visible()


# --- a ticket ---------------------------------------------------------------------------------


async def shown_verbs(page: Page) -> set[str]:
    return set(await page.locator("#ticket .verbs button").evaluate_all("buttons => buttons.map(b => b.dataset.verb)"))


def verbs_of(ticket: dict) -> set[str]:
    """The buttons a ticket should have: its allowed verbs; COMMENT is the reply and note boxes."""
    return set(ticket["allowedTransitions"]) - {"COMMENT"}


async def test_the_ticket_view_follows_what_others_do_to_the_ticket(tab: Tab, desk: Desk):
    page = tab.page
    ticket = desk.create_ticket("Label printer jams", "LOW")
    await sign_in(page, desk)
    await page.goto(f"{desk.server.url}/console#/ticket/{ticket['id']}")
    heading = page.get_by_role("heading", name="Label printer jams")
    await expect(heading).to_be_focused()
    assert await shown_verbs(page) == verbs_of(ticket)

    # the requester answers by mail (another client): the thread shows it without a reload
    comment = "mutation($id: ID!, $i: CommentInput!) { commentTicket(id: $id, input: $i) { id } }"
    await desk.another_client(comment, {"id": ticket["id"], "i": {"body": "Still jammed.", "author": desk.requester}})
    reply = page.get_by_role("article", name="Reply by Rita Requester")
    await expect(reply).to_contain_text("Still jammed.")
    await expect(reply).to_contain_text("Requester reply")

    # someone escalates it: the status and the verbs follow
    escalate = 'mutation($id: ID!) { escalateTicket(id: $id, reason: "firmware") { id } }'
    await desk.another_client(escalate, {"id": ticket["id"]})
    await expect(page.locator("#ticket dl.facts")).to_contain_text("Escalated")
    escalated = desk.ticket(ticket["id"])
    await expect(page.locator("#ticket .verbs button")).to_have_count(len(verbs_of(escalated)))
    assert await shown_verbs(page) == verbs_of(escalated)


async def test_a_ticket_that_is_not_there_says_so(tab: Tab, desk: Desk):
    await sign_in(tab.page, desk)
    await tab.page.goto(f"{desk.server.url}/console#/ticket/ticket_nothing00")
    await expect(tab.page.get_by_role("heading", name="No such ticket")).to_be_visible()
    await expect(tab.page.get_by_role("alert").filter(has_text="no ticket ticket_nothing00")).to_be_visible()
    await expect(tab.page.get_by_label("Reply to the requester")).to_be_hidden()


async def test_verbs_ask_for_what_they_need_and_say_what_went_wrong(tab: Tab, desk: Desk):
    page = tab.page
    ticket = desk.create_ticket(f"Monitor flickers {uuid.uuid4().hex[:6]}", "MEDIUM")
    await sign_in(page, desk)
    await page.goto(f"{desk.server.url}/console#/ticket/{ticket['id']}")
    facts, dialog = page.locator("#ticket dl.facts"), page.get_by_role("dialog")

    await page.get_by_role("button", name="Assign").click()
    await dialog.get_by_label("Assign to").select_option(label="Ada Agent")
    await dialog.get_by_role("button", name="Assign").click()
    await expect(dialog).to_be_hidden()
    await expect(facts).to_contain_text("Ada Agent")
    assert desk.ticket(ticket["id"])["assignee"] == {"id": desk.agent}

    # only what changed is sent: the status, not the priority it already had
    await page.get_by_role("button", name="Status and priority").click()
    await expect(dialog.get_by_label("Priority")).to_have_value("MEDIUM")
    await dialog.get_by_label("Status").select_option("PENDING")
    await dialog.get_by_role("button", name="Status and priority").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator(".sla-panel")).to_contain_text("Paused")
    pending = desk.ticket(ticket["id"])
    assert (pending["status"], pending["priority"], pending["sla"]["state"]) == ("PENDING", "MEDIUM", "PAUSED")
    assert pending["version"] == ticket["version"] + 2  # one assign, one update

    # a refused verb leaves the dialog open with the server's reason, and writes nothing
    await page.get_by_role("button", name="Merge").click()
    await dialog.get_by_label("Merge into ticket (its id)").fill("ticket_nothing00")
    await dialog.get_by_role("button", name="Merge").click()
    await expect(dialog.get_by_role("alert")).not_to_be_empty()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    assert desk.ticket(ticket["id"])["version"] == pending["version"]

    # deleting it goes back to the queue, which no longer lists it
    await expect(queue_row(page, ticket["subject"])).to_be_visible()
    await page.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page).to_have_url(re.compile(r"#/$"))
    await expect(page.locator("#ticket")).to_be_hidden()
    await expect(queue_row(page, ticket["subject"])).to_have_count(0)
    assert desk.ticket(ticket["id"]) is None


# --- the whole round: queue, ticket, reply, resolve -------------------------------------------


async def queue_subjects(page: Page) -> list[str]:
    return await page.locator("#queue-list .subject").all_inner_texts()


async def test_an_agent_sees_a_new_ticket_arrive_answers_it_and_resolves_it(tab: Tab, desk: Desk):
    page = tab.page
    desk.create_ticket("Invoice export fails", "URGENT")
    desk.create_ticket("Password reset loop", "LOW")
    await sign_in(page, desk)
    status = page.locator("#queue-status")  # the polite live region
    await expect(status).to_have_text(re.compile(r"^Queue loaded: \d+ tickets?\.$"))
    assert await queue_subjects(page) == desk.queue_subjects()

    # another client opens a ticket: it appears where the server orders it, and is announced
    created = await asyncio.to_thread(desk.create_ticket, "Printer on fire", "HIGH")
    row = queue_row(page, "Printer on fire")
    await expect(row).to_be_visible()
    await expect(status).to_have_text("New in the queue: Printer on fire.")
    assert await queue_subjects(page) == desk.queue_subjects()

    # its first-response target counts down to the server's due time
    due = row.locator("time.due")
    await expect(due).to_have_attribute("datetime", created["sla"]["firstResponseDueAt"])
    await expect(due).to_have_text(re.compile(r"^due in (59m|1h 00m) \d\ds?"))
    shown = await due.inner_text()
    await expect(due).not_to_have_text(shown)  # a second later it says less
    await page.screenshot(path=screenshot_path(f"queue-1280x800-{desk.kind}"))

    # by keyboard: down the rows with the arrow keys, Enter opens the ticket
    links = page.locator("#queue-list a")
    await links.first.focus()
    index = (await queue_subjects(page)).index("Printer on fire")
    for _ in range(index):
        await page.keyboard.press("ArrowDown")
    await expect(row.locator("a")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"#/ticket/{created['id']}$"))
    await expect(page.get_by_role("heading", name="Printer on fire")).to_be_focused()
    await expect(row.locator("a")).to_have_attribute("aria-current", "true")
    assert await shown_verbs(page) == verbs_of(created)

    # a reply and an internal note
    await page.get_by_label("Reply to the requester").fill("We are on it: the fire brigade is coming.")
    await page.get_by_role("button", name="Send reply").click()
    await expect(page.get_by_role("article", name=re.compile("^Reply by"))).to_contain_text("fire brigade")
    await page.get_by_label("Internal note (agents only)").fill("Called the brigade at 09:12.")
    await page.get_by_role("button", name="Add note").click()
    await expect(page.get_by_role("article", name=re.compile("^Internal note by"))).to_contain_text("09:12")
    await expect(page.get_by_label("Reply to the requester")).to_have_value("")
    answered = desk.ticket(created["id"])
    assert answered["comments"]["nodes"] == [
        {"body": "We are on it: the fire brigade is coming.", "public": True, "authorRole": "AGENT"},
        {"body": "Called the brigade at 09:12.", "public": False, "authorRole": "AGENT"},
    ]
    assert answered["firstResponseAt"] is not None  # the reply was the first response
    await expect(page.locator(".sla-panel")).to_contain_text("First response: met")
    await page.locator("#ticket").evaluate("ticket => ticket.scrollTo(0, 0)")  # the heading in the picture
    await page.screenshot(path=screenshot_path(f"ticket-1280x800-{desk.kind}"))

    # a dialog left with Escape changes nothing
    await page.get_by_role("button", name="Escalate").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert desk.ticket(created["id"])["status"] == "OPEN"

    # resolve: the ticket says so, and it leaves the queue of open work
    await page.get_by_role("button", name="Resolve").click()
    await expect(dialog).to_have_accessible_name("Resolve: Printer on fire")
    await dialog.get_by_label("Resolution").fill("Extinguished; printer replaced.")
    await dialog.get_by_role("button", name="Resolve").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#ticket dl.facts")).to_contain_text("Resolved")
    await expect(row).to_have_count(0)
    await expect(status).to_have_text("Left the queue: Printer on fire.")
    resolved = desk.ticket(created["id"])
    assert resolved["status"] == "RESOLVED"
    assert await shown_verbs(page) == verbs_of(resolved)
    assert await queue_subjects(page) == desk.queue_subjects()

    # on a phone: the ticket alone, then the queue alone, neither wider than the screen
    await page.set_viewport_size(PHONE)
    await expect(page.locator("#queue")).to_be_hidden()
    await no_sideways_scrolling(page)
    await page.screenshot(path=screenshot_path(f"ticket-390-{desk.kind}"), full_page=True)
    await page.get_by_role("link", name="← Queue").click()
    await expect(page.locator("#queue")).to_be_visible()
    await expect(page.locator("#ticket")).to_be_hidden()
    await expect(page.get_by_role("heading", name=re.compile("^Queue"))).to_be_focused()
    await no_sideways_scrolling(page)
    await page.screenshot(path=screenshot_path(f"queue-390-{desk.kind}"), full_page=True)


async def test_filters_narrow_the_live_queue(tab: Tab, desk: Desk):
    page = tab.page
    urgent = desk.create_ticket(f"Filter check {uuid.uuid4().hex[:6]}", "URGENT")
    await sign_in(page, desk)
    await page.get_by_label("Priority").select_option("URGENT")
    # the urgent ticket may already be on the unfiltered page: wait for the filtered list itself
    await expect(page.locator("#queue-list .subject")).to_have_text(desk.queue_subjects({"priority": {"eq": "URGENT"}}))

    # assigned to Ada by another client: it leaves "Unassigned" and joins "Ada Agent"
    await page.get_by_label("Assignee").select_option("NOBODY")
    await expect(queue_row(page, urgent["subject"])).to_be_visible()
    assign = "mutation($id: ID!, $a: ID!) { assignTicket(id: $id, assignee: $a) { id } }"
    await desk.another_client(assign, {"id": urgent["id"], "a": desk.agent})
    await expect(queue_row(page, urgent["subject"])).to_have_count(0)
    await page.get_by_label("Assignee").select_option(label="Ada Agent")
    await expect(queue_row(page, urgent["subject"])).to_contain_text("Ada Agent")

    # the SLA filter: nothing here has breached
    await page.get_by_label("SLA").select_option("BREACHED")
    await expect(page.locator("#queue-count")).to_have_text("0 tickets")
    await page.get_by_label("SLA").select_option("ACTIVE")
    await expect(queue_row(page, urgent["subject"])).to_be_visible()

    # the filters are the tab's: a reload keeps them
    await page.reload()
    await expect(page.get_by_label("Priority")).to_have_value("URGENT")
    await expect(queue_row(page, urgent["subject"])).to_be_visible()


# --- a dropped connection ---------------------------------------------------------------------


async def test_after_a_dropped_connection_the_queue_resumes_from_its_cursor(tab: Tab, desk: Desk):
    page = tab.page
    line = Line()
    await page.route_web_socket(re.compile(r"/graphql$"), line.route)
    await sign_in(page, desk)
    await expect(page.locator("#queue-status")).to_have_text(re.compile("^Queue loaded"))
    queue_id = next(
        m["id"] for m in line.sent[0] if m["type"] == "subscribe" and "ticketQueue" in m["payload"]["query"]
    )
    updates = [m["payload"]["data"]["ticketQueue"] for m in line.received[0] if m.get("id") == queue_id]
    cursor = updates[-1]["cursor"]

    # the server's news is lost on a dead link, then the link drops
    lost = asyncio.create_task(line.swallow_one())
    missed = await asyncio.to_thread(desk.create_ticket, f"While the line was down {uuid.uuid4().hex[:6]}", "URGENT")
    assert (await lost)["payload"]["data"]["ticketQueue"]["tickets"][0]["id"] == missed["id"]
    await expect(queue_row(page, missed["subject"])).to_have_count(0)
    await line.connections[0].close(code=1001)
    await expect(queue_row(page, missed["subject"])).to_be_visible()
    await expect(page.locator("#connection")).to_have_text("Live")

    # the page came back with its cursor, and the server replayed the change, not a snapshot
    assert len(line.connections) == 2
    again = next(m for m in line.sent[1] if m["type"] == "subscribe" and "ticketQueue" in m["payload"]["query"])
    assert again["payload"]["variables"]["after"] == cursor
    replayed = [m["payload"]["data"]["ticketQueue"] for m in line.received[1] if m.get("id") == again["id"]]
    assert replayed[0]["kind"] == "ADDED" and replayed[0]["tickets"][0]["id"] == missed["id"]
    assert await queue_subjects(page) == desk.queue_subjects()
