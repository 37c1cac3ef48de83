"""Outgoing webhooks, the domain: managing webhooks, deciding deliveries from the event log,
claiming attempts, recording their results.

Deciding: a webhook's cursor (``last_seq``) and the ``webhook_delivery`` rows made from the
events after it move in one transaction that holds the webhook's row (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL: a second worker skips a webhook another is deciding for). Claiming: in
the same transaction the due deliveries are leased (``next_attempt_at`` pushed past the time the
attempts may take), so no other worker makes those attempts unless this one dies. First
attempts go out one after another in commit order; while one worker holds a webhook's first
attempts, others take only its retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from models.db.engine import Database
from models.db.plain import as_entity
from models.enums import WebhookDeliveryStatus as Status
from models.event import Event, TenantSequence
from models.ids import new_id, type_of
from models.types import utcnow
from models.webhooks import (
    KEPT_ATTEMPTS,
    MAX_PATTERNS,
    URL_LENGTH,
    Webhook,
    WebhookDelivery,
    attempt,
    bad_patterns,
    matches,
    new_secret,
    payload,
    retry_delay,
)
from resolvers import query
from resolvers.errors import BadInput, NotFound

#: ``check(url)`` raises ``BadInput`` for a url the server must not call (graph/server/ssrf.py)
UrlCheck = Callable[[str], Awaitable[None]]
#: the broker channel that tells every worker's sender to look again (a webhook made or changed)
CHANNEL = "__webhooks__"
#: events read per decision, deliveries claimed per lane
DECIDE_BATCH = 1000
CLAIM_BATCH = 50

_W = Webhook.__table__
_D = WebhookDelivery.__table__
_E = Event.__table__
_OPEN = (Status.PENDING.value, Status.RETRYING.value)


# --- managing webhooks --------------------------------------------------------------------------


async def _clean(url: str | None, events: Sequence[str] | None, check: UrlCheck) -> None:
    if url is not None:
        if len(url) > URL_LENGTH:
            raise BadInput(f"url is longer than {URL_LENGTH} characters", field="url")
        await check(url)
    if events is not None:
        if not events or len(events) > MAX_PATTERNS:
            raise BadInput(f"events lists 1 to {MAX_PATTERNS} event types", field="events")
        bad = bad_patterns(events)
        if bad:
            raise BadInput(f"Not event types: {', '.join(map(repr, bad))} (use Ticket.Created, Ticket.* or *)",
                           field="events")  # fmt: skip


async def _last_seq(session: Any, tenant: str) -> int:
    found = await session.scalar(
        select(TenantSequence.__table__.c.last_seq).where(TenantSequence.__table__.c.tenant == tenant)
    )
    return int(found or 0)


async def create(
    db: Database, *, tenant: str, actor: str, url: str, events: Sequence[str], description: str | None,
    check: UrlCheck,
) -> tuple[Webhook, str]:  # fmt: skip
    """A new webhook for the events committed from now on, and its secret (shown this once)."""
    await _clean(url, events, check)
    now, secret = utcnow(), new_secret()
    values = {
        "id": new_id(Webhook.prefix), "tenant": tenant, "version": 1, "created_at": now, "updated_at": now,
        "created_by": actor, "deleted_at": None, "url": url, "events": list(dict.fromkeys(events)),
        "description": description, "active": True, "secret": secret, "last_seq": 0,
    }  # fmt: skip
    async with db.writing() as session:
        values["last_seq"] = await _last_seq(session, tenant)
        await session.execute(insert(_W), values)
        await session.commit()
    return as_entity(Webhook, values), secret


async def _change(db: Database, tenant: str, id_: str, values: dict[str, Any]) -> Webhook:
    if type_of(id_) != "Webhook":
        raise NotFound(f"No webhook with id {id_!r}", id=id_)
    async with db.writing() as session:
        live = and_(_W.c.id == id_, _W.c.tenant == tenant, _W.c.deleted_at.is_(None))
        row = (await session.execute(select(*_W.columns).where(live).with_for_update())).first()
        if row is None:
            raise NotFound(f"No webhook with id {id_!r}", id=id_)
        current = row._asdict()
        if values.get("active") and not current["active"]:  # events while paused are skipped
            values["last_seq"] = await _last_seq(session, tenant)
        values |= {"version": current["version"] + 1, "updated_at": utcnow()}
        await session.execute(update(_W).where(_W.c.id == id_), values)
        await session.commit()
    return as_entity(Webhook, current | values)


async def update_webhook(db: Database, *, tenant: str, id_: str, values: dict[str, Any], check: UrlCheck) -> Webhook:
    """Change ``url``, ``events``, ``description`` or ``active`` (the keys given)."""
    values = {k: v for k, v in values.items() if k in ("url", "events", "description", "active")}
    for required in ("url", "events", "active"):
        if required in values and values[required] is None:
            raise BadInput(f"{required} cannot be null", field=required)
    await _clean(values.get("url"), values.get("events"), check)
    if "events" in values:
        values["events"] = list(dict.fromkeys(values["events"]))
    return await _change(db, tenant, id_, values)


async def delete(db: Database, *, tenant: str, id_: str) -> Webhook:
    """Soft-delete: nothing more is sent; its deliveries stay readable."""
    return await _change(db, tenant, id_, {"deleted_at": utcnow(), "active": False})


async def rotate_secret(db: Database, *, tenant: str, id_: str) -> tuple[Webhook, str]:
    """A new secret; every attempt from now on is signed with it."""
    secret = new_secret()
    return await _change(db, tenant, id_, {"secret": secret}), secret


async def redeliver(db: Database, *, tenant: str, id_: str) -> WebhookDelivery:
    """Make a delivery PENDING again, due now, with the whole retry schedule ahead of it."""
    now = utcnow()
    values = {"status": Status.PENDING.value, "failures": 0, "next_attempt_at": now, "updated_at": now}
    async with db.writing() as session:
        changed = (
            await session.execute(
                update(_D).where(_D.c.id == id_, _D.c.tenant == tenant).values(values).returning(*_D.columns)
            )
        ).first()
        await session.commit()
    if changed is None:
        raise NotFound(f"No webhook delivery with id {id_!r}", id=id_)
    return as_entity(WebhookDelivery, changed._asdict())


# --- reading ------------------------------------------------------------------------------------


async def deliveries(
    db: Database, *, tenant: str, webhook_id: str, statuses: Sequence[str] | None, first: int | None,
    after: str | None,
) -> query.Page:  # fmt: skip
    """A webhook's deliveries, newest event first."""
    where = {"status": {"in_": list(statuses)}} if statuses else None
    return await query.find(
        db, WebhookDelivery, tenant=tenant, where=where, order=[("event_seq", True)], first=first, after=after,
        scope={"webhook_id": webhook_id},
    )  # fmt: skip


async def counts(db: Database, *, tenant: str, webhook_id: str) -> dict[str, int]:
    """Deliveries of a webhook by status (every status present, zero or more)."""
    statement = (
        select(_D.c.status, func.count()).where(_D.c.tenant == tenant, _D.c.webhook_id == webhook_id)
        .group_by(_D.c.status)
    )  # fmt: skip
    async with db.reading() as session:
        found = {status: int(n) for status, n in (await session.execute(statement)).all()}
    return {s.value: found.get(s.value, 0) for s in Status}


# --- the sender's side: deciding, claiming, recording ------------------------------------------


@dataclass
class Claimed:
    """A delivery leased to this worker: everything one attempt needs."""

    id: str
    webhook_id: str
    tenant: str
    url: str
    secret: str
    event_id: str
    event_seq: int
    body: bytes
    failures: int
    attempts: list[dict[str, Any]]
    lease: datetime
    first: bool


async def active(db: Database) -> dict[str, str]:
    """The active webhooks: id → tenant."""
    async with db.reading() as session:
        found = await session.execute(select(_W.c.id, _W.c.tenant).where(_W.c.active, _W.c.deleted_at.is_(None)))
        return {id_: tenant for id_, tenant in found}


async def work(db: Database, webhook_id: str, now: datetime) -> tuple[bool, datetime | None]:
    """Whether the webhook has events to decide about or attempts due (a read: no write lock
    is taken for nothing), and when its next attempt falls due."""
    behind = (
        select(_W.c.id).join(TenantSequence.__table__, TenantSequence.__table__.c.tenant == _W.c.tenant)
        .where(_W.c.id == webhook_id, TenantSequence.__table__.c.last_seq > _W.c.last_seq)
    )  # fmt: skip
    due = select(func.min(_D.c.next_attempt_at)).where(_D.c.webhook_id == webhook_id, _D.c.next_attempt_at.is_not(None))
    async with db.reading() as session:
        is_behind = await session.scalar(behind) is not None
        next_at: datetime | None = await session.scalar(due)
    return is_behind or (next_at is not None and next_at <= now), next_at


async def _decide(session: Any, hook: dict[str, Any], now: datetime) -> None:
    """Turn the events after the webhook's cursor into deliveries; advance the cursor."""
    statement = (
        select(_E.c.id, _E.c.seq, _E.c.type).where(_E.c.tenant == hook["tenant"], _E.c.seq > hook["last_seq"])
        .order_by(_E.c.seq).limit(DECIDE_BATCH)
    )  # fmt: skip
    events = (await session.execute(statement)).all()
    if not events:
        return
    rows = [
        {"id": new_id(WebhookDelivery.prefix), "tenant": hook["tenant"], "webhook_id": hook["id"], "event_id": id_,
         "event_seq": seq, "status": Status.PENDING.value, "failures": 0, "next_attempt_at": now, "attempts": [],
         "created_at": now, "updated_at": now}
        for id_, seq, type_ in events if matches(hook["events"], type_)
    ]  # fmt: skip
    if rows:
        await session.execute(insert(_D), rows)
    await session.execute(update(_W).where(_W.c.id == hook["id"]).values(last_seq=events[-1].seq))


async def claim(
    db: Database, webhook_id: str, *, now: datetime, lease_seconds: float, retries: int = CLAIM_BATCH
) -> list[Claimed]:
    """Decide the webhook's new events, then lease its due attempts: the first attempts in
    commit order (unless another worker is sending some), then due retries."""
    lease = now + timedelta(seconds=lease_seconds)
    async with db.writing() as session:
        held = select(*_W.columns).where(_W.c.id == webhook_id, _W.c.active, _W.c.deleted_at.is_(None))
        row = (await session.execute(held.with_for_update(skip_locked=True))).first()
        if row is None:  # gone, paused, or another worker holds it right now
            await session.rollback()
            return []
        hook = row._asdict()
        await _decide(session, hook, now)
        mine = and_(_D.c.webhook_id == webhook_id, _D.c.next_attempt_at <= now)
        in_flight = await session.scalar(
            select(_D.c.id).where(_D.c.webhook_id == webhook_id, _D.c.status == Status.PENDING.value,
                                  _D.c.next_attempt_at > now).limit(1)
        )  # fmt: skip
        picked: list[Any] = []
        if in_flight is None:
            first = select(_D.c.id).where(mine, _D.c.status == Status.PENDING.value)
            picked += (await session.execute(first.order_by(_D.c.event_seq).limit(CLAIM_BATCH))).scalars().all()
        due = select(_D.c.id).where(mine, _D.c.status == Status.RETRYING.value)
        picked += (await session.execute(due.order_by(_D.c.next_attempt_at).limit(retries))).scalars().all()
        if not picked:
            await session.commit()
            return []
        leased = (
            update(_D).where(_D.c.id.in_(picked)).values(next_attempt_at=lease)
            .returning(_D.c.id, _D.c.event_id, _D.c.event_seq, _D.c.status, _D.c.failures, _D.c.attempts)
        )  # fmt: skip
        claimed = (await session.execute(leased)).all()
        await session.commit()
    async with db.reading() as session:  # events never change: read them after the write lock is let go
        bodies = await session.execute(select(*_E.columns).where(_E.c.id.in_([c.event_id for c in claimed])))
        events = {e.id: payload(as_entity(Event, e._asdict())) for e in bodies}
    found = [
        Claimed(c.id, webhook_id, hook["tenant"], hook["url"], hook["secret"], c.event_id, c.event_seq,
                events[c.event_id], c.failures, list(c.attempts or []), lease, c.status == Status.PENDING.value)
        for c in claimed if c.event_id in events
    ]  # fmt: skip
    return sorted(found, key=lambda c: (not c.first, c.event_seq))


@dataclass
class Outcome:
    """What one attempt came to."""

    claimed: Claimed
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None = None
    body: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and self.error is None


_RECORD = (
    update(_D).where(_D.c.id == bindparam("b_id"), _D.c.next_attempt_at == bindparam("b_lease"))
    .values(status=bindparam("b_status"), failures=bindparam("b_failures"), attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next"), updated_at=bindparam("b_updated"))
)  # fmt: skip


async def record(db: Database, outcomes: Sequence[Outcome], schedule: Sequence[float]) -> list[str]:
    """Write the attempts' results (only where this worker still holds the lease: one UPDATE,
    executed for each); the new status of each."""
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for outcome in outcomes:
        claimed = outcome.claimed
        attempts = [*claimed.attempts, attempt(outcome.at, outcome.status_code, outcome.duration_ms,
                                               outcome.error, outcome.body)][-KEPT_ATTEMPTS:]  # fmt: skip
        failures, status, next_at = claimed.failures, Status.DELIVERED.value, None
        if not outcome.delivered:
            failures += 1
            delay = retry_delay(schedule, failures, outcome.retry_after)
            status = Status.FAILED.value if delay is None else Status.RETRYING.value
            next_at = None if delay is None else outcome.at + timedelta(seconds=delay)
        rows.append({"b_id": claimed.id, "b_lease": claimed.lease, "b_status": status, "b_failures": failures,
                     "b_attempts": attempts, "b_next": next_at, "b_updated": now})  # fmt: skip
    if rows:
        async with db.writing() as session:
            await session.execute(_RECORD, rows)
            await session.commit()
    return [row["b_status"] for row in rows]


async def release(db: Database, claimed: Sequence[Claimed], now: datetime) -> None:
    """Hand back leased deliveries this worker did not attempt: due again now."""
    if not claimed:
        return
    async with db.writing() as session:
        for c in claimed:
            await session.execute(
                update(_D).where(_D.c.id == c.id, _D.c.next_attempt_at == c.lease).values(next_attempt_at=now)
            )
        await session.commit()
