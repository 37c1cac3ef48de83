"""A realistic demo graph for a helpdesk: what ``support-graph seed`` loads.

Everything goes through the unit of work and the verbs, never raw inserts, so every row has its
events and the hooks run as they would for a real client. The graph is the same for the same
``random_seed`` (ids and timestamps aside).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from graph.cli.seed_data import (
    ASK,
    CANCELLATIONS,
    CHANNELS,
    COUNTRIES,
    ESCALATIONS,
    FILL,
    FIRST,
    INDUSTRY,
    LAST,
    LOSSES,
    NAMES,
    ORG_TYPES,
    OUTCOMES,
    PRIORITIES,
    RATINGS,
    REOPENINGS,
    ROLES,
    SOURCES,
    TIERS,
    TITLES,
    TOPICS,
    WHEN,
    WHO,
    WINS,
)
from graph.cli.seed_policies import create_policies
from graph.cli.seed_threads import (
    ACCOUNT_NOTES,
    AGAIN,
    AGAIN_ACKS,
    ENGINEERING,
    ESCALATED,
    GREETINGS,
    MERGED,
    NUDGES,
    RELEASED,
    SIGNATURES,
    THANKS,
    THREADS,
    fitting,
)
from models.db.engine import Database
from models.entities import Contact, Deal, Organization, Subscription, Ticket
from models.types import utcnow
from resolvers.hooks import Hooks
from resolvers.unit import UnitOfWork
from resolvers.verbs import contact as contacts_
from resolvers.verbs import deal as deals_
from resolvers.verbs import issue as issues_
from resolvers.verbs import subscription as billing
from resolvers.verbs import ticket as tickets_

ACTOR = "seed"
BATCH = 50  # creates per transaction
T = TypeVar("T")


@dataclass
class _Org:
    id: str
    name: str
    domain: str
    tier: str
    type: str
    country: str
    contacts: list[str] = field(default_factory=list)
    deals: list[str] = field(default_factory=list)


@dataclass
class _Case:
    """A ticket as its conversation sees it: who talks, and what about."""

    id: str
    requester: str
    category: str
    subject: str
    words: dict[str, str]  # what the texts' {placeholders} are filled with
    agent: str | None = None  # the assignee, who answers


def _pick(rng: random.Random, weights: dict[Any, Any]) -> Any:
    """A key of ``weights``, drawn by its weight (the first item of a tuple value)."""
    values = [w[0] if isinstance(w, tuple) else w for w in weights.values()]  # Tier is a tuple too
    return rng.choices(list(weights), weights=values)[0]


async def seed(
    db: Database, *, hooks: Hooks, tenant: str = "default", organizations: int, contacts: int,
    tickets: int, random_seed: int = 7, progress: Callable[[int], object] = lambda n: None,
) -> dict[str, int]:  # fmt: skip
    """Load ``organizations`` customers (plus the support team's own), ``contacts`` people (a few
    of them support agents), ``tickets`` tickets, subscriptions and deals, with whatever the hooks
    make of them (activities, issues, metrics). Returns how many of each kind were created.

    ``progress(n)`` is told of every ``n`` organizations, contacts and tickets committed.
    """
    if organizations < 1 or contacts < 2 or tickets < 0:
        raise ValueError("seed needs at least 1 organization and 2 contacts")
    seeder = _Seeder(db, hooks, tenant, random.Random(random_seed), progress)
    await seeder.run(organizations, contacts, tickets)
    kinds = ["organizations", "contacts", "tickets", "subscriptions", "deals", "issues", "activities", "metrics"]
    return {kind: seeder.counts[kind] for kind in [*kinds, "events"]}


class _Seeder:
    def __init__(
        self, db: Database, hooks: Hooks, tenant: str, rng: random.Random, progress: Callable[[int], object]
    ) -> None:
        self.db, self.hooks, self.tenant, self.rng, self.progress = db, hooks, tenant, rng, progress
        self.counts: Counter[str] = Counter()
        self.taken: set[str] = set()  # slugs, domains and emails already used in the tenant
        self.first_names: dict[str, str] = {}  # contact id → first name, to sign and address replies
        self.live: dict[str, list[_Case]] = {}  # requester → their tickets a duplicate may be merged into
        self.now = utcnow()

    async def run(self, organizations: int, contacts: int, tickets: int) -> None:
        rng = self.rng
        async with self.db.reading() as session:  # a second seed of a tenant picks fresh names
            for kind, name in ((Organization, "slug"), (Organization, "domain"), (Contact, "email")):
                columns = kind.__table__.c
                rows = await session.scalars(select(columns[name]).where(columns["tenant"] == self.tenant))
                self.taken.update(v for v in rows if v)
        names = [f"{a} {b}" for a, b in itertools.product(NAMES, INDUSTRY)]
        rng.shuffle(names)
        names = [names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
                 for i in range(organizations)]  # fmt: skip
        await self.each([None], lambda uow, _: create_policies(uow), counted=False)
        (support,) = await self.each(["Support Team"], self.organization, counted=False)
        agents = min(8, max(1, contacts // 15))
        self.agents = await self.each([support] * agents, self.agent)
        self.orgs = await self.each(names, self.organization)
        # Every customer gets a contact first; the rest go mostly to the bigger ones.
        weights = [TIERS[o.tier].contacts for o in self.orgs]
        extra = max(0, contacts - agents - len(self.orgs))
        await self.each(self.orgs[: contacts - agents] + rng.choices(self.orgs, weights, k=extra), self.contact)
        buyers = [o for o in self.orgs if o.type in ("CUSTOMER", "PROSPECT") and o.contacts and rng.random() < 0.5]
        await self.each(buyers, self.deal, counted=False)
        self.requesters = [(c, o) for o in self.orgs for c in o.contacts]
        await self.each(range(tickets), self.ticket)

    async def each(
        self, items: Sequence[Any], step: Callable[[UnitOfWork, Any], Awaitable[T]], *, counted: bool = True
    ) -> list[T]:
        """``step(uow, item)`` for every item, ``BATCH`` items per unit of work (one commit)."""
        done: list[T] = []
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            async with UnitOfWork(self.db, tenant=self.tenant, actor=ACTOR, hooks=self.hooks) as uow:
                done += [await step(uow, item) for item in chunk]
            for event in uow.events:
                self.counts["events"] += 1
                if event.type.endswith(".Created"):
                    kind = event.entity_type.lower()
                    self.counts[kind[:-1] + "ies" if kind.endswith("y") else kind + "s"] += 1
            if counted:
                self.progress(len(chunk))
        return done

    def unique(self, *make: Callable[[str], str]) -> list[str]:
        """The first variant (``""``, ``"-2"``, ``"-3"`` …) of the values for which none is taken."""
        for n in itertools.count(1):
            values = [m("" if n == 1 else f"-{n}") for m in make]
            if not self.taken.intersection(values):
                self.taken.update(values)
                return values
        raise AssertionError("unreachable")

    async def organization(self, uow: UnitOfWork, name: str) -> _Org:
        rng, ours = self.rng, name == "Support Team"
        base = name.lower().replace(" ", "-")
        slug, domain = self.unique(lambda s: base + s, lambda s: f"{base}{s}.example")
        tier, kind = ("BUSINESS", "PARTNER") if ours else (_pick(rng, TIERS), _pick(rng, ORG_TYPES))
        country, employees = _pick(rng, COUNTRIES), rng.randint(*TIERS[tier].headcount)
        row = await uow.create(Organization, {
            "name": name, "slug": slug, "domain": domain, "website": f"https://www.{domain}", "type": kind,
            "tier": tier, "industry": "Software" if ours else INDUSTRY[name.split()[1]], "country": country,
            "employee_count": employees, "annual_revenue": float(employees * rng.randrange(60_000, 250_000, 1000)),
            "health_score": rng.randint(35, 100), "lifetime_value": float(rng.randrange(0, 500_000, 500)),
        })  # fmt: skip
        org = _Org(row.id, name, domain, tier, kind, country)
        if kind in ("CUSTOMER", "PROSPECT"):
            await self.subscription(uow, org)
        return org

    async def subscription(self, uow: UnitOfWork, org: _Org) -> None:
        """Customers pay (a few late, a few gone); prospects are on a trial."""
        rng, now, trial = self.rng, self.now, org.type == "PROSPECT"
        started = now - timedelta(days=rng.randint(1, 13) if trial else rng.randint(30, 900))
        period = now - timedelta(days=rng.randint(0, 29))
        tier = TIERS[org.tier]
        plan, seats = rng.choice(tier.plans), max(1, rng.randint(*tier.headcount) // rng.randint(2, 20))
        row = await uow.create(Subscription, {
            "organization_id": org.id, "plan": plan, "quantity": seats, "started_at": started,
            "current_period_start": period, "current_period_end": period + billing.DEFAULT_PERIOD,
        } | ({"status": "TRIALING", "trial_end": started + timedelta(days=14)} if trial else {}))  # fmt: skip
        if trial:
            return
        roll = rng.random()
        if roll < 0.08:
            await billing.cancel(uow, row.id, reason=rng.choice(CANCELLATIONS))
            await uow.transition(Organization, org.id, "update", values={"status": "CHURNED"})
        elif roll < 0.2:
            await uow.transition(Subscription, row.id, "update", values={"status": "PAST_DUE"})
        elif roll < 0.3 and plan != "enterprise":
            bigger = "growth" if plan == "starter" else "enterprise"
            await billing.change_plan(uow, row.id, "upgrade", plan=bigger, quantity=seats + 5)
        elif roll < 0.45:
            await billing.renew(uow, row.id)

    async def person(self, uow: UnitOfWork, org: _Org, **values: Any) -> str:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        (email,) = self.unique(lambda s: f"{first}.{last}{s}@{org.domain}".lower())
        _, timezone, language = COUNTRIES[org.country]
        row = await uow.create(Contact, {
            "name": f"{first} {last}", "first_name": first, "last_name": last, "email": email,
            "organization_id": org.id, "timezone": timezone, "language": language,
        } | values)  # fmt: skip
        org.contacts.append(row.id)
        self.first_names[row.id] = first
        return row.id

    async def agent(self, uow: UnitOfWork, support: _Org) -> str:
        lead = not support.contacts
        return await self.person(uow, support, title="Support Lead" if lead else "Support Engineer", role="USER")

    async def contact(self, uow: UnitOfWork, org: _Org) -> str:
        rng = self.rng
        id_ = await self.person(
            uow, org, title=rng.choice(TITLES), role=_pick(rng, ROLES), source=rng.choice(SOURCES),
            phone=f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}", lead_score=rng.randint(5, 100),
        )  # fmt: skip
        if org.type == "CUSTOMER" or (org.type == "PROSPECT" and rng.random() < 0.5):
            await contacts_.qualify(uow, id_)
        if org.type in ("CUSTOMER", "PARTNER"):
            await uow.transition(Contact, id_, "update", values={"stage": org.type})
        if org.tier == "ENTERPRISE":  # a named teammate looks after the big accounts
            await contacts_.assign(uow, id_, owner=rng.choice(self.agents))
        return id_

    async def deal(self, uow: UnitOfWork, org: _Org) -> str:
        rng = self.rng
        kind = "New business" if org.type == "PROSPECT" else rng.choice(["Expansion", "Renewal", "Upsell"])
        row = await uow.create(Deal, {
            "name": f"{org.name} — {kind}", "value": float(rng.randrange(*TIERS[org.tier].deal_size, 100)),
            "currency": "USD", "organization_id": org.id, "contact_id": rng.choice(org.contacts),
            "owner_id": rng.choice(self.agents), "probability": rng.choice([10, 25, 40, 60]),
            "expected_close_date": (self.now + timedelta(days=rng.randint(7, 120))).date(),
        })  # fmt: skip
        for _ in range(rng.randint(0, 3)):
            await deals_.advance(uow, row.id)
        roll = rng.random()
        if roll < 0.3:
            await deals_.win(uow, row.id, reason=rng.choice(WINS))
        elif roll < 0.5:
            await deals_.lose(uow, row.id, reason=rng.choice(LOSSES))
        elif roll < 0.55:
            await deals_.close(uow, row.id)
        org.deals.append(row.id)
        return row.id

    async def ticket(self, uow: UnitOfWork, _: int) -> str:
        rng = self.rng
        requester, org = rng.choice(self.requesters)
        outcome = _pick(rng, OUTCOMES)
        earlier = self.live.get(requester, []) if outcome == "duplicate" else []
        original = rng.choice(earlier) if earlier else None  # the requester writes again about it
        if original:
            category, subject, words = original.category, original.subject, original.words
        else:
            category = _pick(rng, TOPICS)
            words = {k: rng.choice(v) for k, v in FILL.items()}
            subject = rng.choice(TOPICS[category][1]).format(**words)
        when, who, channel = rng.choice(WHEN), rng.choice(WHO), _pick(rng, CHANNELS)
        opening = subject if subject.endswith("?") else f"{subject}."
        context = (f"It would help {rng.choice(WHO[1:])}." if category in ("feature request", "onboarding")
                   else f"It started {when} and affects {who}.")  # fmt: skip
        if original:
            opening, context = f"Writing again in case my first message got lost. {opening}", ""
        tags = rng.sample(TOPICS[category][2], k=rng.randint(1, 2)) + ([org.tier.lower()] if rng.random() < 0.3 else [])
        row = await uow.create(Ticket, {
            "subject": subject, "category": category, "tags": sorted(tags),
            "description": f"Hi support,\n\n{' '.join(filter(None, [opening, context, rng.choice(ASK)]))}\n\nThanks",
            "priority": _pick(rng, PRIORITIES), "channel": channel,
            "requester_id": requester, "organization_id": org.id,
            "deal_id": rng.choice(org.deals) if org.deals and rng.random() < 0.25 else None,
        })  # fmt: skip
        case = _Case(row.id, requester, category, subject, words | {
            "first": self.first_names[requester], "org": org.name, "domain": org.domain, "subject": subject,
            "when": when, "who": who, "channel": channel.lower(),
        })  # fmt: skip
        await self.walk(uow, case, outcome, org, original)
        if outcome not in ("closed", "duplicate"):
            self.live.setdefault(requester, []).append(case)
        return row.id

    async def say(self, uow: UnitOfWork, case: _Case, text: str, *, by: str = "agent", public: bool = True) -> None:
        """A comment ``by`` the requester or the agent (whose public replies are greeted and signed)."""
        rng, words = self.rng, case.words | {"agent": self.first_names.get(case.agent or "", "Support")}
        body = text.format(**words)
        if by == "agent" and public:
            body = f"{rng.choice(GREETINGS)}\n\n{body}\n\n{rng.choice(SIGNATURES)}".format(**words)
        elif by == "requester" and rng.random() < 0.6:
            body += f"\n\n{words['first']}"
        author = case.requester if by == "requester" else case.agent
        await tickets_.comment(uow, case.id, body=body, public=public, author=author)

    async def walk(self, uow: UnitOfWork, case: _Case, outcome: str, org: _Org, original: _Case | None) -> None:
        """Take a new ticket as far as ``outcome`` through a support team's day, verb by verb and
        comment by comment. A requester's public reply moves a PENDING ticket back to OPEN and a
        RESOLVED one to REOPENED, so the requester speaks only where that is the story."""
        rng, id_, thread = self.rng, case.id, THREADS[case.category]

        async def update(**values: Any) -> None:
            await uow.transition(Ticket, id_, "update", values=values)

        say = functools.partial(self.say, uow, case)

        if outcome == "new":
            if rng.random() < 0.35:
                await say(rng.choice(NUDGES), by="requester")  # still OPEN
            return
        if outcome == "duplicate":  # merged into the requester's earlier ticket, else closed unanswered (spam)
            if original:
                await tickets_.merge(uow, id_, into=original.id, comment=rng.choice(MERGED).format(**case.words))
            else:
                await tickets_.close(uow, id_)
            return
        case.agent = rng.choice(self.agents)
        await tickets_.assign(uow, id_, assignee=case.agent)
        if org.tier == "ENTERPRISE" and rng.random() < 0.4:
            await say(rng.choice(ACCOUNT_NOTES), public=False)
        if outcome == "working" or rng.random() < 0.8:
            await say(rng.choice(thread.acks))  # the first response
        await update(status="IN_PROGRESS")
        if outcome == "waiting" or (outcome != "working" and rng.random() < 0.35):
            _, ask, answer = fitting(rng, thread.asks, case.subject)
            await say(ask)
            await update(status="PENDING")  # on the customer
            if outcome == "waiting":
                return
            await say(answer, by="requester")  # PENDING → OPEN: back to the team
        if rng.random() < 0.4:
            await say(fitting(rng, thread.notes, case.subject)[1], public=False)
        if outcome == "working":
            return
        if outcome in ("escalated", "fixed"):
            reason = rng.choice(ESCALATIONS)
            case.words = case.words | {"reason": reason[0].lower() + reason[1:]}
            await say(rng.choice(ENGINEERING), public=False)
            await tickets_.escalate(uow, id_, reason=reason)
            if rng.random() < 0.7:
                await say(rng.choice(ESCALATED))
            if outcome == "escalated":
                if rng.random() < 0.3:
                    await say(rng.choice(NUDGES), by="requester")  # still ESCALATED
                return
            # Engineering ships a fix: closing the issue the escalation raised resolves the ticket.
            issue = next(e.target for e in reversed(uow.events) if e.type == "Issue.Created")
            await issues_.close(uow, issue, reason="Fix released")
            await say(rng.choice(RELEASED))
        else:
            _, reply, resolution = fitting(rng, thread.fixes, case.subject)
            await say(reply)
            if rng.random() < 0.5:
                await say(rng.choice(THANKS), by="requester")  # before resolving: after, it would reopen
            await tickets_.resolve(uow, id_, resolution=resolution)
        if rng.random() < 0.7:
            await update(satisfaction=_pick(rng, RATINGS))
        if outcome == "closed":
            await tickets_.close(uow, id_)
        elif outcome == "reopened":
            if rng.random() < 0.65:
                await say(rng.choice(AGAIN), by="requester")  # RESOLVED → REOPENED
                if rng.random() < 0.6:
                    await say(rng.choice(AGAIN_ACKS))
            else:
                await tickets_.reopen(uow, id_, reason=rng.choice(REOPENINGS))
