"""What the demo graph's tickets say: the replies, notes and answers of their conversations.

Texts are ``str.format`` templates. Besides the ticket's own subject fillers (``{feature}``,
``{idp}``, ``{competitor}``, ``{month}``, ``{n}``, see ``FILL``) they may use ``{first}`` (the
requester's first name), ``{agent}`` (the agent's), ``{org}``, ``{domain}``, ``{subject}``,
``{when}``, ``{who}``, ``{reason}`` (an escalation's) and ``{channel}``.

The entries of ``THREADS`` start with a keyword: an entry fits a ticket whose subject contains
it (``""`` fits any subject of the category), so an answer matches what was asked.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple, TypeVar

E = TypeVar("E", bound=tuple[str, ...])


class Thread(NamedTuple):
    acks: list[str]  # the agent's first reply
    asks: list[tuple[str, str, str]]  # (keyword, the agent's question, the requester's answer)
    notes: list[tuple[str, str]]  # (keyword, an internal note of what the agent found)
    fixes: list[tuple[str, str, str]]  # (keyword, the agent's reply with the fix, the resolution recorded)


def fitting(rng: random.Random, entries: Sequence[E], subject: str) -> E:
    """One of the entries whose keyword is in ``subject``, else one of those that fit any subject."""
    subject = subject.lower()
    fit = [e for e in entries if e[0] and e[0] in subject] or [e for e in entries if not e[0]]
    return rng.choice(fit)


THREADS: dict[str, Thread] = {
    "billing": Thread(
        acks=["Thanks for flagging this. I'm going through the billing records for {org} now.",
              "I've pulled up your invoices and I'm looking into it; I'll reply here today."],
        asks=[
            ("twice", "Could you send the last four digits of the card that was charged? That lets me match both "
             "payments in our records.", "It's the card ending in 4417. Both charges are on our {month} statement."),
            ("invoice #", "Which email address should the copy go to? Right now invoices go to the account owner only.",
             "Please send it to accounts@{domain} — that's our finance team's shared inbox."),
            ("vat", "Can you confirm the VAT number exactly as it should appear, including the country prefix?",
             "Sure: DE 811 {n} 27. It should be on every invoice from {month} onwards."),
            ("proration", "Could you tell me the date you upgraded and which invoice shows the extra amount?",
             "We upgraded mid-{month}; the extra line is on invoice #{n}."),
            ("card", "Should the new card pay the open invoice #{n} too, or only the next ones?",
             "Only the next ones, please. We paid the open invoice by bank transfer."),
            ("", "Could you send me the invoice number this is about?", "It's invoice #{n}, from {month}."),
        ],
        notes=[
            ("twice", "Payment provider shows two captures for the {month} invoice, 40 seconds apart: a retried "
             "payment that should have been voided."),
            ("proration", "Proration was computed from the upgrade date as it should be; the invoice just doesn't "
             "explain it."),
            ("", "Account has an unused credit of $120 from last year; worth mentioning in the reply."),
            ("", "Finance confirmed we can sort this out without engineering."),
        ],
        fixes=[
            ("twice", "I've refunded the duplicate charge for {month}; it will be back on your card within 5-10 "
             "business days. The credit note is attached to invoice #{n}.", "Refund issued"),
            ("invoice #", "I've sent a copy of invoice #{n} to accounts@{domain}. You can also download every "
             "invoice under Settings → Billing.", "Invoice sent"),
            ("vat", "I've added your VAT number to the account and reissued the invoices since {month} with it.",
             "Invoices reissued with the VAT number"),
            ("card", "I've sent you a secure link to update the card. Once it's saved, the next invoice is charged "
             "to the new card; nothing else changes.", "Configuration corrected"),
            ("proration", "After an upgrade you pay the new price for the days left in the period; that's the "
             "extra line on invoice #{n}. I've added a breakdown to the PDF.", "Explained the proration"),
            ("", "I've corrected this on your account and sent an updated invoice to the billing contact on file.",
             "Configuration corrected"),
        ],
    ),
    "login": Thread(
        acks=["Sorry you're locked out. I'm looking at the sign-in logs for your account now.",
              "Thanks for the details. I'm checking what our sign-in service recorded for {org}."],
        asks=[
            ("sso", "Could you check that the users who can't sign in are assigned to our app in {idp}? A 403 "
             "usually means the assignment is missing.",
             "Our IT team checked: everyone is assigned in {idp}, and it fails for all of them."),
            ("two-factor", "Is the phone number on the account still current? The sign-in page shows its last two "
             "digits.", "The number is right, but we changed mobile carriers in {month}. Could that be it?"),
            ("invite", "Which address was the invite sent to? I'll check whether it bounced.",
             "Our new hire's address at {domain}. Nothing in spam either."),
            ("", "Which browser are you using, and roughly when was the last failed attempt (with your timezone)?",
             "Chrome on macOS, the last try was around 9:40 this morning our time. Firefox does the same."),
        ],
        notes=[
            ("sso", "The SAML response from {idp} has the old entity ID as audience; their IdP config predates "
             "our domain change."),
            ("locked", "Locked by the brute-force guard after 10 failed attempts from one IP. Nothing suspicious "
             "in the logs, looks like a saved old password."),
            ("two-factor", "SMS provider reports failed deliveries to this carrier since Tuesday."),
            ("password", "Sign-in logs show the reset token was used twice; the second use ended the session."),
            ("invite", "The invite went out 9 days ago; links expire after 7."),
            ("", "No incident on the sign-in service; this is specific to their account."),
        ],
        fixes=[
            ("sso", "The 403 came from an outdated entity ID in the {idp} settings. I've updated it on our side; "
             "please try signing in again.", "Configuration corrected"),
            ("two-factor", "I've enabled an authenticator app as a second option and sent you setup instructions; "
             "the SMS codes should arrive again too.", "Reset the account and confirmed access"),
            ("invite", "Invite links expire after 7 days, so I've sent a fresh one. Admins can resend invites "
             "themselves under Settings → Users.", "Shared the documentation link"),
            ("", "I've unlocked the account and sent a new password reset link, valid for 24 hours. Let me know "
             "once you're back in.", "Reset the account and confirmed access"),
        ],
    ),
    "bug": Thread(
        acks=["Thanks for the clear report. I'm trying to reproduce this on our side.",
              "Sorry about this! I've picked it up and I'm checking our error logs for {org}."],
        asks=[
            ("blank", "Could you send a screenshot and the browser console output when the {feature} page loads?",
             "Screenshot attached. The console says 'TypeError: Cannot read properties of undefined' on load."),
            ("csv", "Does this happen with every export, or only with a particular filter or date range?",
             "Only when we export more than a month of data; a single week works fine."),
            ("timestamps", "Which timezone is set in your profile, and which in the workspace settings?",
             "My profile says Europe/Berlin and the workspace says UTC. Neither changed recently."),
            ("notifications", "Do the duplicates arrive by email, in the app, or both? For every event?",
             "By email only, and for every ticket assigned to us."),
            ("500", "Could you send the exact steps you took and roughly when it last happened?",
             "Open {feature}, change any setting, press Save. Last time was about an hour ago."),
            ("", "Could you tell me roughly when it last happened, and for which user?",
             "About an hour ago, for me and for two colleagues."),
        ],
        notes=[
            ("500", "Reproduced on staging: saving {feature} settings fails when a field contains an emoji."),
            ("timestamps", "Daylight saving: times are stored right but rendered with last month's offset."),
            ("csv", "The export worker still has the old 1,000-row page size; the pagination fix never reached "
             "the CSV path."),
            ("notifications", "Two notification rules overlap on their workspace; the older one predates the "
             "rules editor."),
            ("", "Same stack trace as two other reports this week; see request {n} in the logs."),
        ],
        fixes=[
            ("notifications", "The duplicates came from two overlapping notification rules. I've removed the older "
             "one, so you'll get one notification per event from now on.", "Configuration corrected"),
            ("timestamps", "Your workspace timezone was set to UTC; I've set it to match your team, so times in "
             "{feature} are right again.", "Configuration corrected"),
            ("csv", "Exports used to stop at the first page of 1,000 rows; since today's release they include "
             "every row. Could you run yours again?", "Fixed by the latest release"),
            ("", "This was a bug that our latest release fixed. A hard refresh (Ctrl+Shift+R) loads "
             "the new version; could you check it works for you now?", "Fixed by the latest release"),
        ],
    ),
    "feature request": Thread(
        acks=["Thanks for the suggestion! I've passed it on to our product team.",
              "Great idea, thanks. I'm checking whether it's already on our roadmap."],
        asks=[
            ("dark mode", "Would you use it in the web app, the mobile app, or both?",
             "Mostly the web app; half of our team works night shifts."),
            ("roles", "Which roles do you need that Admin, Agent and Viewer don't cover?",
             "One that sees billing but can't edit users, for our finance team."),
            ("webhook", "What would the webhook trigger on your side?",
             "An update in our ERP, so finance sees changes without the nightly export."),
            ("", "Could you tell me a bit more about how you'd use this? Concrete examples help the product team.",
             "Our admins update around {n} records every quarter by hand; this would save them a day each time."),
            ("", "How many people on your team would use this day to day?",
             "About 40, mostly in operations and finance."),
        ],
        notes=[
            ("", "Fifth request for this in a month; added {org} to the roadmap item."),
            ("", "Product says this is planned for next quarter. No dates to customers yet, please."),
        ],
        fixes=[
            ("dark mode", "Dark mode is in beta: turn it on under Profile → Appearance. Feedback is welcome!",
             "Enabled the beta"),
            ("", "I've added your use case and a vote from {org} to the roadmap item. No date yet, but you'll hear "
             "from us when it ships.", "Added to the roadmap"),
            ("bulk edit", "Part of this is already possible: select rows in a saved view of {feature} and use "
             "Actions → Edit. The rest is on our roadmap with your vote.", "Shared the documentation link"),
            ("roles", "Custom roles are available under Settings → Roles on the Growth plan and up; I've sent you "
             "the guide. Finer permissions are on our roadmap with your vote.", "Shared the documentation link"),
        ],
    ),
    "onboarding": Thread(
        acks=["Welcome aboard! I'll be your contact for the setup.",
              "Happy to help you get started. I'm putting a plan together for {org}."],
        asks=[
            ("import", "Roughly how many records are you bringing over from {competitor}, and can you export them "
             "as CSV?", "About {n} contacts and two years of tickets. We can export everything as CSV."),
            ("training", "Which times work for a 45-minute session next week? We'll record it for anyone who can't "
             "join.", "Tuesday or Thursday afternoon our time; about 12 people will join."),
            ("", "Which teams will use it first, and who should be an admin?",
             "Support goes first, then sales next month. I'll be the admin for now."),
        ],
        notes=[
            ("import", "Their {competitor} export uses semicolons; the importer needs the delimiter setting."),
            ("", "Kick-off call booked; sending the agenda the day before."),
        ],
        fixes=[
            ("import", "Your import from {competitor} is done: every record is in, and those without an email are "
             "tagged needs-review.", "Data imported"),
            ("training", "Thanks for joining the training today! The recording and slides are in your shared "
             "folder.", "Training delivered"),
            ("rolling out", "Here's our rollout checklist for {n} seats: roles and SSO first, one pilot team, then "
             "the rest in waves. Happy to review your plan on a call.", "Shared the documentation link"),
            ("", "Here's a step-by-step guide to setting up {feature} with the settings we discussed. Reply here "
             "if anything is unclear.", "Shared the documentation link"),
        ],
    ),
    "integration": Thread(
        acks=["Thanks, I'm checking the integration logs for {org} now.",
              "Sorry about the disruption. I'm going through the integration's sync log now."],
        asks=[
            ("", "When did it last work, and has anyone changed permissions or reconnected the app since?",
             "It stopped {when}. Our admin rotated the API tokens last week, now that I think of it."),
            ("", "Could you send the ID of a record that's missing, so I can trace it in the sync log?",
             "Record {n} is one: created yesterday, never arrived."),
        ],
        notes=[
            ("rate limit", "Nightly sync sends 12k requests in 10 minutes; they should batch, or we raise the "
             "limit for their plan."),
            ("", "The token the integration uses was revoked on their side; every call since returns 401."),
        ],
        fixes=[
            ("rate limit", "I've raised the API limit for your nightly sync window and sent you our batching guide, "
             "which cuts the number of calls by about 90%.", "Configuration corrected"),
            ("", "The integration was using a revoked token. After reconnecting it under Settings → Integrations, "
             "the missing records synced within minutes.", "Configuration corrected"),
        ],
    ),
    "performance": Thread(
        acks=["Thanks for reporting this. I'm looking at response times for {org} now.",
              "Sorry it's slow! I'm checking our monitoring for your workspace."],
        asks=[
            ("api", "Which endpoint times out, and with which page size?",
             "GET /reports with page_size=500, every night around 2am."),
            ("", "Is it slow for everyone, or only for some users or offices? A HAR file from the browser would "
             "help.", "Everyone in our London office; the US team says it's fine. HAR file attached."),
            ("", "Roughly how many rows does the view show when it's slow?",
             "The default view lists about {n} rows; filtered views are quick."),
        ],
        notes=[
            ("api", "The reports API times out at 30 s on their largest report: no limit on joined rows."),
            ("search", "p95 search latency for their workspace is 8x the median since the cluster was resized."),
            ("", "The {feature} query scans their whole workspace: no index for the custom field filter."),
        ],
        fixes=[
            ("api", "We fixed a slow query behind the reports API; your nightly calls now answer in under a "
             "second.", "Fixed by the latest release"),
            ("search", "Our latest release fixes slow searches on large workspaces, and yours is back to normal. "
             "Let me know if you still see delays.", "Fixed by the latest release"),
            ("", "We added an index for the filter your team uses most; {feature} now loads in under two seconds "
             "for you.", "Configuration corrected"),
        ],
    ),
}  # fmt: skip

GREETINGS = ["Hi {first},", "Hello {first},", "Dear {first},"]
SIGNATURES = ["Best,\n{agent}", "Thanks,\n{agent}", "Cheers,\n{agent}", "Kind regards,\n{agent}, Support Team"]
#: the requester, before the ticket is resolved
THANKS = [
    "That did it, thank you {agent}!", "Confirmed, it works now. Thanks for the quick help.",
    "All good on our side now, much appreciated.", "Perfect, that solved it. Feel free to close this one.",
    "Works for {who} again. Thanks!",
]  # fmt: skip
#: the requester, while waiting for an answer
NUDGES = [
    "Any update on this? It's still happening.", "Just checking in: do you need anything else from us?",
    "Some more context: it also happens in a private browser window.", "Is there an ETA? This affects {who}.",
    "Following up on this one; we'd love to get it sorted this week.",
]  # fmt: skip
#: the requester, on a resolved ticket: this reopens it
AGAIN = [
    "Sorry to come back to this, but it's happening again: same symptoms as before.",
    "I spoke too soon: the same problem showed up again today for {who}.",
    "Unfortunately the fix didn't hold. We're seeing exactly the same thing again.",
    "It worked for a day, but it's back. Could you take another look?",
]  # fmt: skip
#: the agent, after a requester reopened the ticket
AGAIN_ACKS = ["Sorry to hear that. I've reopened this and I'm looking into it again.",
              "Thanks for letting us know; I'm picking this back up."]  # fmt: skip
#: an internal note before the escalation
ENGINEERING = [
    "Looping in engineering: {reason}. Steps to reproduce and the customer's details are in the thread.",
    "Looping in engineering: {reason}. No workaround found; {org} is waiting on this.",
    "Escalating: {reason}. Logs for request {n} attached to the issue.",
]  # fmt: skip
#: the agent, after the escalation
ESCALATED = [
    "I've passed this to our engineering team with everything you sent. I'll update you here as soon as there "
    "is a fix.",
    "Engineering confirmed the problem and is working on a fix. I'll keep this ticket open until it ships.",
]  # fmt: skip
#: the agent, once engineering's fix resolved the ticket
RELEASED = [
    "Good news: engineering released a fix for this today. Could you try again and let me know if anything "
    "still looks off?",
    "The fix is live as of this morning's release. Thanks for your patience while we sorted it out.",
]  # fmt: skip
#: the agent, about an enterprise account
ACCOUNT_NOTES = ["{org} is an enterprise account; keep their account owner in the loop.",
                 "Big account: {org} renews next quarter, let's make this one smooth."]  # fmt: skip
#: why a duplicate was merged (the merge's comment, on the original's internal note)
MERGED = [
    "{first} wrote in again about the same problem via {channel}; answering in the original thread.",
    "Duplicate of this ticket, same requester. Keeping the conversation in one place.",
    "Same question sent twice; merged so nobody answers it twice.",
]  # fmt: skip
