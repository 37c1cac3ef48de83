"""A realistic demo graph for a helpdesk: what ``support-graph seed`` loads.

Everything goes through the unit of work and the verbs, never raw inserts, so every row has its
events and the hooks run as they would for a real client. The graph is the same for the same
``random_seed`` (ids and timestamps aside).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from models.db import Database
from models.entities import Contact, Deal, Organization, Subscription, Ticket
from models.types import utcnow
from resolvers import contact as contacts_, deal as deals_, subscription as billing, ticket as tickets_
from resolvers.unit import UnitOfWork

if importlib.util.find_spec("resolvers.reactions"):  # the hooks that ship, so seeding runs them too
    importlib.import_module("resolvers.reactions")

ACTOR = "seed"
BATCH = 50  # creates per transaction
T = TypeVar("T")

TIERS = {"ENTERPRISE": 15, "BUSINESS": 30, "STARTUP": 25, "SMB": 30}
HEADCOUNT = {"ENTERPRISE": (2000, 60000), "BUSINESS": (200, 2000), "STARTUP": (8, 200), "SMB": (3, 80)}
PLANS = {"ENTERPRISE": ["enterprise"], "BUSINESS": ["growth", "enterprise"], "STARTUP": ["starter", "growth"], "SMB": ["starter"]}
DEAL_SIZE = {"ENTERPRISE": (40_000, 400_000), "BUSINESS": (8_000, 60_000), "STARTUP": (1_000, 12_000), "SMB": (500, 5_000)}
ORG_TYPES = {"CUSTOMER": 75, "PROSPECT": 15, "PARTNER": 7, "VENDOR": 3}
CONTACT_WEIGHT = {"ENTERPRISE": 6, "BUSINESS": 3, "STARTUP": 2, "SMB": 1}
NAMES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Northwind", "Contoso", "Fabrikam",
         "Tailspin", "Litware", "Wingtip", "Aperture", "Cyberdyne", "Tyrell", "Soylent", "Massive", "Prestige",
         "Sirius", "Monarch", "Bluth", "Dunder", "Wonka", "Stark"]
INDUSTRY = {"Labs": "Biotech", "Systems": "Software", "Logistics": "Logistics", "Health": "Healthcare",
            "Analytics": "Software", "Foods": "Food & Beverage", "Energy": "Energy", "Media": "Media",
            "Robotics": "Manufacturing", "Capital": "Financial Services", "Works": "Manufacturing",
            "Cloud": "Software", "Retail": "Retail", "Security": "Cybersecurity"}
COUNTRIES = {"US": 35, "GB": 12, "DE": 10, "FR": 7, "NL": 5, "CA": 7, "AU": 5, "JP": 4, "BR": 4, "IN": 6, "SE": 3, "ES": 2}
TIMEZONES = {"US": "America/New_York", "GB": "Europe/London", "DE": "Europe/Berlin", "FR": "Europe/Paris",
             "NL": "Europe/Amsterdam", "CA": "America/Toronto", "AU": "Australia/Sydney", "JP": "Asia/Tokyo",
             "BR": "America/Sao_Paulo", "IN": "Asia/Kolkata", "SE": "Europe/Stockholm", "ES": "Europe/Madrid"}
LANGUAGES = {"DE": "de", "FR": "fr", "NL": "nl", "JP": "ja", "BR": "pt", "SE": "sv", "ES": "es"}
FIRST = ["Ava", "Ben", "Chloe", "Daniel", "Emma", "Farid", "Grace", "Hugo", "Isla", "Jonas", "Kenji", "Lena",
         "Mateo", "Nora", "Oliver", "Priya", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wei", "Yara", "Zoe"]
LAST = ["Anderson", "Becker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen", "Kowalski",
        "Lopez", "Martin", "Nakamura", "Okafor", "Patel", "Rossi", "Schmidt", "Tanaka", "Varga", "Walsh", "Zhang"]
TITLES = ["CTO", "IT Manager", "Operations Lead", "Finance Manager", "Head of Customer Success", "Software Engineer",
          "Product Manager", "Office Manager", "VP Engineering", "Data Analyst", "Procurement Lead"]
ROLES = {"USER": 50, "CHAMPION": 15, "INFLUENCER": 15, "DECISION_MAKER": 15, "BLOCKER": 5}
SOURCES = ["website", "referral", "event", "outbound", "partner", "trial signup"]
FEATURES = ["Dashboard", "Reports", "Workflows", "Inbox", "Billing", "User management", "Audit log", "Search"]
FILL = {"idp": ["Okta", "Azure AD", "Google Workspace"], "competitor": ["Zendesk", "Freshdesk", "a spreadsheet"],
        "month": ["January", "March", "June", "September", "November"]}
#: category → (weight, subjects, tags)
TOPICS: dict[str, tuple[int, list[str], list[str]]] = {
    "billing": (16, ["Charged twice for the {month} invoice", "Need a copy of invoice #{n}", "Update the credit card on file",
                     "Question about proration after our upgrade", "VAT number missing from invoices"],
                ["invoice", "payment", "refund", "vat"]),
    "login": (15, ["Can't log in after password reset", "SSO with {idp} fails with error 403", "Two-factor codes not arriving",
                   "Account locked after too many attempts", "Invite link expired for a new teammate"],
              ["sso", "2fa", "password", "access"]),
    "bug": (22, ["{feature} page shows a blank screen", "Export to CSV stops at 1,000 rows",
                 "Timestamps in {feature} are off by one hour", "Error 500 when saving {feature} settings",
                 "Notifications are sent twice"], ["regression", "ui", "api", "data"]),
    "feature request": (12, ["Please add dark mode", "Allow bulk edit in {feature}", "Webhook for {feature} changes",
                             "Custom fields in {feature}", "More granular roles and permissions"], ["roadmap", "ux", "api"]),
    "onboarding": (12, ["Help importing our data from {competitor}", "Training session for our new team",
                        "How do we set up {feature}?", "Best practices for rolling out to {n} seats"],
                   ["setup", "import", "training"]),
    "integration": (12, ["Slack integration stopped posting", "Salesforce sync is missing records",
                         "API rate limit hit during the nightly sync", "Zapier trigger not firing"],
                    ["slack", "salesforce", "api", "webhooks"]),
    "performance": (11, ["{feature} takes 30 seconds to load", "Search is slow since last week",
                         "Timeouts on the reports API"], ["latency", "reports", "search"]),
}
WHEN = ["this morning", "yesterday", "after your last release", "last week", "since we upgraded"]
WHO = ["just me", "our whole team", "a few of our admins", "about half of our users", "our finance team"]
ASK = ["Could you take a look?", "This is blocking us, please advise.", "Is there a workaround meanwhile?",
       "Happy to jump on a call."]
CHANNELS = {"EMAIL": 40, "CHAT": 25, "WEB": 20, "PHONE": 10, "API": 5}
PRIORITIES = {"LOW": 25, "MEDIUM": 45, "HIGH": 22, "URGENT": 8}
#: how far a ticket got: see ``_walk``
OUTCOMES = {"new": 12, "working": 10, "waiting": 8, "resolved": 26, "closed": 16, "escalated": 10,
            "fixed": 6, "reopened": 8, "duplicate": 4}
RATINGS = {5: 45, 4: 30, 3: 12, 2: 7, 1: 6}
RESOLUTIONS = ["Walked the customer through the settings", "Fixed by the latest release", "Refund issued",
               "Reset the account and confirmed access", "Shared the documentation link", "Configuration corrected"]
ESCALATIONS = ["Reproduced, needs an engineering fix", "Data inconsistency in production", "Affects several customers"]
REOPENINGS = ["The problem came back", "Customer says the fix did not work", "Same error on another account"]
WINS = ["Best fit for their workflow", "Strong champion", "Security review passed"]
LOSSES = ["Went with a competitor", "No budget this year", "Project cancelled"]
CANCELLATIONS = ["Too expensive", "Switched to a competitor", "Company acquired"]


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


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


async def seed(
    db: Database, *, tenant: str = "default", organizations: int, contacts: int, tickets: int,
    random_seed: int = 7, progress: Callable[[int], object] = lambda n: None,
) -> dict[str, int]:  # fmt: skip
    """Load ``organizations`` customers (plus the support team's own), ``contacts`` people (a few
    of them support agents) and ``tickets`` tickets, with subscriptions, deals and the activities,
    issues and metrics the hooks make. Returns how many of each kind were created."""
    if organizations < 1 or contacts < 2 or tickets < 0:
        raise ValueError("seed needs at least 1 organization and 2 contacts")
    seeder = _Seeder(db, tenant, random.Random(random_seed), progress)
    await seeder.run(organizations, contacts, tickets)
    order = ["organizations", "contacts", "tickets", "subscriptions", "deals", "issues", "activities", "metrics"]
    return {kind: seeder.counts[kind] for kind in order} | {"events": seeder.counts["events"]}


class _Seeder:
    def __init__(self, db: Database, tenant: str, rng: random.Random, progress: Callable[[int], object]):
        self.db, self.tenant, self.rng, self.progress = db, tenant, rng, progress
        self.counts: Counter[str] = Counter()
        self.taken: set[str] = set()
        self.now = utcnow()

    async def run(self, organizations: int, contacts: int, tickets: int) -> None:
        async with self.db.reading() as session:  # so a second seed of a tenant picks fresh names
            for kind, column in ((Organization, Organization.slug), (Organization, Organization.domain),
                                 (Contact, Contact.email)):  # fmt: skip
                self.taken.update(v for v in await session.scalars(select(column).where(kind.tenant == self.tenant)) if v)
        agents = min(8, max(1, contacts // 15))
        names = [" ".join(pair) for pair in itertools.product(NAMES, INDUSTRY)]
        self.rng.shuffle(names)
        names = [names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "") for i in range(organizations)]
        (support,) = await self.each(["Support Team"], self.organization, counted=False)
        self.agents = await self.each(range(agents), lambda uow, i: self.agent(uow, support, i), counted=False)
        self.progress(agents)
        self.orgs = await self.each(names, self.organization)
        # Every customer gets one contact first; the rest go mostly to the bigger ones.
        homes = self.orgs[: contacts - agents] + self.rng.choices(
            self.orgs, weights=[CONTACT_WEIGHT[o.tier] for o in self.orgs], k=max(0, contacts - agents - len(self.orgs))
        )
        await self.each(homes, self.contact)
        buyers = [o for o in self.orgs if o.type in ("CUSTOMER", "PROSPECT") and o.contacts and self.rng.random() < 0.4]
        await self.each(buyers, self.deal, counted=False)
        self.requesters = [(c, o) for o in self.orgs for c in o.contacts]
        await self.each(range(tickets), self.ticket)

    async def each(self, items: Sequence | range, step: Callable[[UnitOfWork, Any], Awaitable[T]], *,
                   counted: bool = True) -> list[T]:  # fmt: skip
        """``step(uow, item)`` for every item, ``BATCH`` items per unit of work."""
        items, done = list(items), []
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            async with UnitOfWork(self.db, tenant=self.tenant, actor=ACTOR) as uow:
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
        """The first variant (``""``, ``"-2"``, ``"-3"`` …) for which no value is taken yet."""
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
        tier = "BUSINESS" if ours else _pick(rng, TIERS)
        kind, country = "PARTNER" if ours else _pick(rng, ORG_TYPES), _pick(rng, COUNTRIES)
        employees = rng.randint(*HEADCOUNT[tier])
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
        rng, now = self.rng, self.now
        trial = org.type == "PROSPECT"
        started = now - timedelta(days=rng.randint(1, 13) if trial else rng.randint(30, 900))
        values: dict[str, Any] = {
            "organization_id": org.id, "plan": rng.choice(PLANS[org.tier]), "started_at": started,
            "quantity": max(1, rng.randint(*HEADCOUNT[org.tier]) // rng.randint(2, 20)),
            "current_period_start": now - timedelta(days=rng.randint(0, 29)),
        }  # fmt: skip
        values["current_period_end"] = values["current_period_start"] + billing.DEFAULT_PERIOD
        if trial:
            values |= {"status": "TRIALING", "trial_end": started + timedelta(days=14)}
        sub = await uow.create(Subscription, values)
        roll = rng.random()
        if trial:
            return
        if roll < 0.08:
            await billing.cancel(uow, sub.id, reason=rng.choice(CANCELLATIONS))
            await uow.transition(Organization, org.id, "update", values={"status": "CHURNED"})
        elif roll < 0.2:
            await uow.transition(Subscription, sub.id, "update", values={"status": "PAST_DUE"})
        elif roll < 0.3 and values["plan"] != "enterprise":
            bigger = "growth" if values["plan"] == "starter" else "enterprise"
            await billing.change_plan(uow, sub.id, "upgrade", plan=bigger, quantity=values["quantity"] + 5)
        elif roll < 0.45:
            await billing.renew(uow, sub.id)

    async def agent(self, uow: UnitOfWork, support: _Org, i: int) -> str:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        (email,) = self.unique(lambda s: f"{first}.{last}{s}@{support.domain}".lower())
        row = await uow.create(Contact, {
            "name": f"{first} {last}", "first_name": first, "last_name": last, "email": email,
            "title": "Support Lead" if i == 0 else "Support Engineer", "organization_id": support.id,
            "role": "USER", "timezone": TIMEZONES[support.country], "language": "en",
        })  # fmt: skip
        await uow.transition(Contact, row.id, "update", values={"stage": "PARTNER"})
        return row.id

    async def contact(self, uow: UnitOfWork, org: _Org) -> str:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        (email,) = self.unique(lambda s: f"{first}.{last}{s}@{org.domain}".lower())
        row = await uow.create(Contact, {
            "name": f"{first} {last}", "first_name": first, "last_name": last, "email": email,
            "phone": f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}", "title": rng.choice(TITLES),
            "organization_id": org.id, "role": _pick(rng, ROLES), "source": rng.choice(SOURCES),
            "lead_score": rng.randint(5, 100), "timezone": TIMEZONES[org.country],
            "language": LANGUAGES.get(org.country, "en"),
        })  # fmt: skip
        if org.type == "CUSTOMER" or (org.type == "PROSPECT" and rng.random() < 0.5):
            await contacts_.qualify(uow, row.id)
        if org.type == "CUSTOMER":
            await uow.transition(Contact, row.id, "update", values={"stage": "CUSTOMER"})
        elif org.type == "PARTNER":
            await uow.transition(Contact, row.id, "update", values={"stage": "PARTNER"})
        if org.tier == "ENTERPRISE":
            await contacts_.assign(uow, row.id, owner=rng.choice(self.agents))
        org.contacts.append(row.id)
        return row.id

    async def deal(self, uow: UnitOfWork, org: _Org) -> str:
        rng = self.rng
        kind = "New business" if org.type == "PROSPECT" else rng.choice(["Expansion", "Renewal", "Upsell"])
        row = await uow.create(Deal, {
            "name": f"{org.name} — {kind}", "value": float(rng.randrange(*DEAL_SIZE[org.tier], 100)),
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
        category = _pick(rng, {name: weight for name, (weight, _, _) in TOPICS.items()})
        _, subjects, tags = TOPICS[category]
        fill = {k: rng.choice(v) for k, v in FILL.items()} | {"feature": rng.choice(FEATURES), "n": rng.randint(1000, 9999)}
        subject = rng.choice(subjects).format(**fill)
        description = (f"Hi support,\n\n{subject}. It started {rng.choice(WHEN)} and affects {rng.choice(WHO)}. "
                       f"{rng.choice(ASK)}\n\nThanks")  # fmt: skip
        row = await uow.create(Ticket, {
            "subject": subject, "description": description, "category": category,
            "priority": _pick(rng, PRIORITIES), "channel": _pick(rng, CHANNELS),
            "tags": sorted(set(rng.sample(tags, k=rng.randint(1, 2))) | ({org.tier.lower()} if rng.random() < 0.3 else set())),
            "requester_id": requester, "organization_id": org.id,
            "deal_id": rng.choice(org.deals) if org.deals and rng.random() < 0.25 else None,
        })  # fmt: skip
        await self.walk(uow, row.id, _pick(rng, OUTCOMES))
        return row.id

    async def walk(self, uow: UnitOfWork, id_: str, outcome: str) -> None:
        """Move a new ticket as far as ``outcome`` through a support team's day."""
        rng = self.rng

        async def status(value: str) -> None:
            await uow.transition(Ticket, id_, "update", values={"status": value})

        if outcome == "new":
            return
        if outcome == "duplicate":  # closed unanswered: spam or a duplicate
            await tickets_.close(uow, id_)
            return
        await tickets_.assign(uow, id_, assignee=rng.choice(self.agents))
        await status("IN_PROGRESS")
        if outcome == "waiting":
            await status("PENDING")
        if outcome in ("working", "waiting"):
            return
        if outcome in ("escalated", "fixed"):
            await tickets_.escalate(uow, id_, reason=rng.choice(ESCALATIONS))
            if outcome == "escalated":
                return
        await tickets_.resolve(uow, id_, resolution=rng.choice(RESOLUTIONS))
        if rng.random() < 0.7:
            await uow.transition(Ticket, id_, "update", values={"satisfaction": _pick(rng, RATINGS)})
        if outcome == "closed":
            await tickets_.close(uow, id_)
        elif outcome == "reopened":
            await tickets_.reopen(uow, id_, reason=rng.choice(REOPENINGS))
