"""Outgoing webhooks: the tables and the pure rules (matching, signing, the retry schedule).

A ``Webhook`` keeps a cursor into its tenant's event log (``last_seq``, the last sequence number
it has decided about); each matching event after it becomes one ``WebhookDelivery`` row, and
the cursor advances in the same transaction. So deliveries are decided from the log itself: a
crash or a restart loses nothing, and an event is never decided twice.

Signing follows the Standard Webhooks specification: ``v1,`` + base64 HMAC-SHA256 of
``{webhook-id}.{webhook-timestamp}.{body}`` under the secret's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import Entity, enum_column
from models.enums import WebhookDeliveryStatus
from models.event import Event
from models.types import JSONDocument, UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Table

URL_LENGTH = 2000
#: the most event patterns one webhook may list
MAX_PATTERNS = 100
#: attempts kept per delivery (a delivery redelivered again and again keeps its newest ones)
KEPT_ATTEMPTS = 50
#: bytes of a receiver's answer read and kept
KEPT_BODY = 1024
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
_PATTERN = re.compile(r"^(\*|[A-Z][A-Za-z]{0,63}\.(\*|[A-Z][A-Za-z]{0,63}))$")


class Webhook(Entity, table=True):
    """A receiver of a tenant's events: a url, the event types it wants, a signing secret."""

    type_name: ClassVar[str] = "Webhook"
    prefix: ClassVar[str] = "webhook"

    url: str = Field(sa_type=String(URL_LENGTH))
    events: list[str] = Field(default_factory=list, sa_type=JSONDocument)
    description: str | None = Field(default=None, sa_type=String(1000))
    active: bool = True
    #: the signing secret (``whsec_…``); stored as it is, since signing needs it; never read out
    secret: str = Field(sa_type=String(100))
    #: the last sequence number of the tenant's log this webhook has decided about
    last_seq: int = Field(default=0, sa_type=BigInteger)


class WebhookDelivery(SQLModel, table=True):
    """One event to one webhook: its attempts so far and when the next one is due.

    ``next_attempt_at`` is set while an attempt is to be made (PENDING, RETRYING) and null once
    it is settled (DELIVERED, FAILED). A sender that claims the delivery pushes it into the
    future by the timeout and a margin — a lease: should that sender die, the delivery falls due
    again when the lease runs out.
    """

    __tablename__ = "webhook_delivery"
    type_name: ClassVar[str] = "WebhookDelivery"
    prefix: ClassVar[str] = "webhookdelivery"
    if TYPE_CHECKING:  # set by SQLModel
        __table__: ClassVar[Table]
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_delivery_event"),
        Index("ix_webhook_delivery_due", "next_attempt_at"),
        Index("ix_webhook_delivery_webhook_seq", "webhook_id", "event_seq"),
    )

    id: str = Field(primary_key=True, sa_type=String(40))
    tenant: str = Field(sa_type=String(64))
    webhook_id: str = Field(foreign_key="webhook.id", sa_type=String(40))
    event_id: str = Field(sa_type=String(40))
    event_seq: int = Field(sa_type=BigInteger)
    status: str = enum_column(WebhookDeliveryStatus, "PENDING")
    #: failed attempts since the delivery was decided or last redelivered: the schedule's step
    failures: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: ``[{"at", "responseStatus", "durationMs", "error", "body"}]``, oldest first
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONDocument)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- event patterns -------------------------------------------------------------------------


def bad_patterns(patterns: Sequence[str]) -> list[str]:
    """The patterns that are not ``Type.Verb``, ``Type.*`` or ``*``."""
    return [p for p in patterns if not isinstance(p, str) or not _PATTERN.match(p)]


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether an event type is one of ``patterns`` (``Ticket.*`` and ``*`` are wildcards)."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


# --- secrets and signatures -----------------------------------------------------------------


def new_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of a message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def payload(event: Event) -> bytes:
    """The body of an event's message: ``{"type", "timestamp", "data"}``, ``data`` the event as
    GraphQL shows it. The same bytes on every attempt."""
    stamp = event.timestamp.isoformat()
    data = {
        "id": event.id, "type": event.type, "entityType": event.entity_type, "target": event.target,
        "actor": event.actor, "timestamp": stamp, "version": event.version, "sequence": event.seq,
        "data": event.data,
    }  # fmt: skip
    return orjson.dumps({"type": event.type, "timestamp": stamp, "data": data})


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }


# --- the retry schedule -----------------------------------------------------------------------


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"5,300,1800"`` → delays in seconds; empty: no retries. Raises ValueError."""
    delays = tuple(float(part) for part in text.split(",") if part.strip())
    if any(d < 0 for d in delays):
        raise ValueError("retry delays must not be negative")
    return delays


def retry_delay(schedule: Sequence[float], failures: int, retry_after: float | None = None) -> float | None:
    """Seconds until the next attempt after ``failures`` failed ones, or None: give up.

    A receiver's ``Retry-After`` (429, 503) replaces the step's delay, capped at the schedule's
    longest delay; the number of attempts stays the schedule's.
    """
    if failures > len(schedule):
        return None
    delay = schedule[failures - 1]
    if retry_after is not None:
        delay = min(max(retry_after, 0.0), max(schedule))
    return delay


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds from ``now``; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds()) if when.tzinfo else None


def attempt(at: datetime, status: int | None, duration_ms: int, error: str | None, body: str | None) -> dict[str, Any]:
    return {"at": at.isoformat(), "responseStatus": status, "durationMs": duration_ms, "error": error, "body": body}
