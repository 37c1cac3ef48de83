"""What the demo graph is made of: company sizes, names, ticket texts and how tickets end."""

from __future__ import annotations

from typing import NamedTuple


class Tier(NamedTuple):
    weight: int
    headcount: tuple[int, int]
    plans: list[str]
    deal_size: tuple[int, int]
    contacts: int  # relative share of the contacts


TIERS = {
    "ENTERPRISE": Tier(15, (2000, 60000), ["enterprise"], (40_000, 400_000), 4),
    "BUSINESS": Tier(30, (200, 2000), ["growth", "growth", "enterprise"], (8_000, 60_000), 3),
    "STARTUP": Tier(25, (8, 200), ["starter", "growth"], (1_000, 12_000), 2),
    "SMB": Tier(30, (3, 80), ["starter"], (500, 5_000), 1),
}
ORG_TYPES = {"CUSTOMER": 75, "PROSPECT": 15, "PARTNER": 7, "VENDOR": 3}
NAMES = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Wingtip",
    "Aperture",
    "Cyberdyne",
    "Tyrell",
    "Soylent",
    "Massive",
    "Prestige",
    "Sirius",
    "Monarch",
    "Bluth",
    "Dunder",
    "Wonka",
    "Stark",
]
INDUSTRY = {
    "Labs": "Biotech", "Systems": "Software", "Logistics": "Logistics", "Health": "Healthcare",
    "Analytics": "Software", "Foods": "Food & Beverage", "Energy": "Energy", "Media": "Media",
    "Robotics": "Manufacturing", "Capital": "Financial Services", "Works": "Manufacturing",
    "Cloud": "Software", "Retail": "Retail", "Security": "Cybersecurity",
}  # fmt: skip
#: country → (weight, timezone, language)
COUNTRIES = {
    "US": (35, "America/New_York", "en"), "GB": (12, "Europe/London", "en"), "DE": (10, "Europe/Berlin", "de"),
    "FR": (7, "Europe/Paris", "fr"), "NL": (5, "Europe/Amsterdam", "nl"), "CA": (7, "America/Toronto", "en"),
    "AU": (5, "Australia/Sydney", "en"), "JP": (4, "Asia/Tokyo", "ja"), "BR": (4, "America/Sao_Paulo", "pt"),
    "IN": (6, "Asia/Kolkata", "en"), "SE": (3, "Europe/Stockholm", "sv"), "ES": (2, "Europe/Madrid", "es"),
}  # fmt: skip
FIRST = [
    "Ava",
    "Ben",
    "Chloe",
    "Daniel",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Isla",
    "Jonas",
    "Kenji",
    "Lena",
    "Mateo",
    "Nora",
    "Oliver",
    "Priya",
    "Quinn",
    "Rosa",
    "Samir",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Yara",
    "Zoe",
]
LAST = [
    "Anderson",
    "Becker",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Martin",
    "Nakamura",
    "Okafor",
    "Patel",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Varga",
    "Walsh",
    "Zhang",
]
TITLES = [
    "CTO", "IT Manager", "Operations Lead", "Finance Manager", "Head of Customer Success", "Software Engineer",
    "Product Manager", "Office Manager", "VP Engineering", "Data Analyst", "Procurement Lead",
]  # fmt: skip
ROLES = {"USER": 50, "CHAMPION": 15, "INFLUENCER": 15, "DECISION_MAKER": 15, "BLOCKER": 5}
SOURCES = ["website", "referral", "event", "outbound", "partner", "trial signup"]
#: what ``{placeholders}`` in ticket subjects are filled with
FILL = {
    "feature": ["Dashboard", "Reports", "Workflows", "Inbox", "Billing", "User management", "Audit log"],
    "idp": ["Okta", "Azure AD", "Google Workspace"], "competitor": ["Zendesk", "Freshdesk", "a spreadsheet"],
    "month": ["January", "March", "June", "September", "November"], "n": [str(n) for n in range(1040, 9999, 97)],
}  # fmt: skip
#: category → (weight, subjects, tags)
TOPICS: dict[str, tuple[int, list[str], list[str]]] = {
    "billing": (16, [
        "Charged twice for the {month} invoice", "Need a copy of invoice #{n}", "Update the credit card on file",
        "Question about proration after our upgrade", "VAT number missing from invoices",
    ], ["invoice", "payment", "refund", "vat"]),
    "login": (15, [
        "Can't log in after password reset", "SSO with {idp} fails with error 403", "Two-factor codes not arriving",
        "Account locked after too many attempts", "Invite link expired for a new teammate",
    ], ["sso", "2fa", "password", "access"]),
    "bug": (22, [
        "{feature} page shows a blank screen", "Export to CSV stops at 1,000 rows", "Notifications are sent twice",
        "Timestamps in {feature} are off by one hour", "Error 500 when saving {feature} settings",
    ], ["regression", "ui", "api", "data"]),
    "feature request": (12, [
        "Please add dark mode", "Allow bulk edit in {feature}", "Webhook for {feature} changes",
        "Custom fields in {feature}", "More granular roles and permissions",
    ], ["roadmap", "ux", "api"]),
    "onboarding": (12, [
        "Help importing our data from {competitor}", "Training session for our new team",
        "How do we set up {feature}?", "Best practices for rolling out to {n} seats",
    ], ["setup", "import", "training"]),
    "integration": (12, [
        "Slack integration stopped posting", "Salesforce sync is missing records",
        "API rate limit hit during the nightly sync", "Zapier trigger not firing",
    ], ["slack", "salesforce", "api", "webhooks"]),
    "performance": (11, [
        "{feature} takes 30 seconds to load", "Search is slow since last week", "Timeouts on the reports API",
    ], ["latency", "reports", "search"]),
}  # fmt: skip
WHEN = ["this morning", "yesterday", "after your last release", "last week", "after we upgraded"]
WHO = ["just me", "our whole team", "a few of our admins", "about half of our users", "our finance team"]
ASK = ["Could you take a look?", "This blocks us.", "Is there a workaround meanwhile?", "Happy to jump on a call."]
CHANNELS = {"EMAIL": 40, "CHAT": 25, "WEB": 20, "PHONE": 10, "API": 5}
PRIORITIES = {"LOW": 25, "MEDIUM": 45, "HIGH": 22, "URGENT": 8}
#: how far a ticket gets (see ``_Seeder.walk``)
OUTCOMES = {
    "new": 12, "working": 10, "waiting": 8, "resolved": 26, "closed": 16, "escalated": 10, "fixed": 6,
    "reopened": 8, "duplicate": 4,
}  # fmt: skip
RATINGS = {5: 45, 4: 30, 3: 12, 2: 7, 1: 6}
ESCALATIONS = ["Reproduced, needs an engineering fix", "Data inconsistency in production", "Affects many customers"]
REOPENINGS = ["The problem came back", "Customer says the fix did not work", "Same error on another account"]
WINS = ["Best fit for their workflow", "Strong champion", "Security review passed"]
LOSSES = ["Went with a competitor", "No budget this year", "Project cancelled"]
CANCELLATIONS = ["Too expensive", "Switched to a competitor", "Company acquired"]
