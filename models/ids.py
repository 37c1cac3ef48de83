"""Prefixed ids: ``ticket_nV4xKpQm``.

The suffix is a sqid of a random 52-bit number: 8–9 letters and digits, URL-safe, not
sequential. Uniqueness is guaranteed by the primary key; a collision (about one in 10^15 per
pair) is an integrity error, never a silent overwrite.
"""

from __future__ import annotations

import re
import secrets

from sqids import Sqids

_sqids = Sqids(min_length=8)
_ID = re.compile(r"^([a-z]+)_([A-Za-z0-9]{8,12})$")

#: id prefix → entity type name, for every type that has ids.
PREFIXES: dict[str, str] = {
    "ticket": "Ticket",
    "contact": "Contact",
    "organization": "Organization",
    "deal": "Deal",
    "subscription": "Subscription",
    "issue": "Issue",
    "activity": "Activity",
    "metric": "Metric",
    "comment": "Comment",
    "slapolicy": "SlaPolicy",
    "evt": "Event",
    "webhook": "Webhook",
    "webhookdelivery": "WebhookDelivery",
}


def new_id(prefix: str) -> str:
    """A fresh id for an entity of the given prefix (``new_id("ticket")``)."""
    return f"{prefix}_{_sqids.encode([secrets.randbits(52)])}"


def type_of(id_: str) -> str | None:
    """The entity type an id names (``"Ticket"``), or None if it is not one of ours."""
    match = _ID.match(id_) if isinstance(id_, str) else None
    return PREFIXES.get(match.group(1)) if match else None
