"""Service levels in the verb path: every ticket write keeps its clocks, and due targets are
claimed as breaches exactly once, however many workers look.

``keep_clocks`` is a before-hook on every ticket event (registered with the shipped reactions):
it chooses the policy again when priority, organization or channel change and writes the clock
columns of ``models.sla_clock``. ``breach_due`` is what the breach timer of each worker runs when
a due time comes: for each tenant, one unit of work claims the due targets with one conditional
UPDATE per metric (``… WHERE …_breached_at IS NULL … RETURNING``), so of two workers only one gets
a row, and records each claim as a ``Ticket.SlaBreached`` event (actor ``system``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, or_, select, update

from models.db.engine import Database
from models.entities import Organization, Ticket
from models.history import api_name
from models.service_levels import SlaPolicy
from models.sla_clock import CHOOSING, METRICS, NEVER, choose, clocks
from models.types import utcnow
from resolvers.hooks import Change, Hooks
from resolvers.unit import Publish, UnitOfWork
from resolvers.work import Work

#: the actor of the events the clocks write themselves
SYSTEM_ACTOR = "system"
#: the broker channel on which a write that moved a due time earlier tells every worker's breach
#: timer the new due time (whole seconds since the epoch, rounded down)
TIMER_CHANNEL = "__sla_timer__"
#: how many due tickets one unit of work claims
BATCH = 500

_ticket = Ticket.__table__


async def keep_clocks(change: Change) -> None:
    """Before every ticket verb: the clock columns as the ticket will stand after it."""
    ticket = cast(Ticket, change.entity)
    values, uow = change.values, change.uow
    if change.verb == "delete":  # a deleted ticket's clocks stop where they are
        values["sla_due_at"] = NEVER
        return
    after = {name: getattr(ticket, name) for name in Ticket.model_fields} | values
    chosen = change.before is None or any(name in values and values[name] != getattr(ticket, name) for name in CHOOSING)
    if chosen:
        organization = await uow.find(Organization, after["organization_id"]) if after["organization_id"] else None
        policy = choose(
            await uow.find_all(SlaPolicy),
            priority=after["priority"], tier=organization.tier if organization else None, channel=after["channel"],
        )  # fmt: skip
    elif ticket.sla_policy_id is not None and (after["status"] == "PENDING") != (ticket.sla_paused_at is not None):
        policy = await uow.find(SlaPolicy, ticket.sla_policy_id)  # a pause starts or ends: its hours count
    else:
        policy = None  # the clocks run on as they are
    settled = clocks(after, policy, chosen=chosen, now=utcnow())
    values.update({k: v for k, v in settled.items() if v != after.get(k)})
    due = values.get("sla_due_at", NEVER)
    if due < ticket.sla_due_at:  # perhaps earlier than a timer sleeps until: it decides
        uow.wake(TIMER_CHANNEL, int(due.timestamp()))


async def breach(
    uow: Work, id_: str, *, metric: str, due_at: datetime, policy: str | None, breached_at: datetime
) -> Ticket:
    """Record a target the timer claimed as missed (``Ticket.SlaBreached``). The claim stamped
    it already; the event says so too, so the ticket replays with it (``asOf``)."""
    stamp = api_name(Ticket, METRICS[metric][2])
    return await uow.transition(
        Ticket, id_, "sla_breach", args={
            "metric": metric, "dueAt": due_at.isoformat(), "policy": policy,
            stamp: {"before": None, "after": breached_at.isoformat()},
        },
    )  # fmt: skip


async def next_due(db: Database) -> datetime | None:
    """The earliest due time still running in any tenant (one step of an index), or None."""
    async with db.reading() as session:
        # no other condition: min() of an indexed column is one step of the index on both
        # databases (deleted tickets' clocks are stopped at NEVER by ``keep_clocks``)
        due: datetime | None = (await session.execute(select(func.min(_ticket.c.sla_due_at)))).scalar()
    return None if due is None or due >= NEVER else due


async def breach_due(db: Database, hooks: Hooks, publish: Publish | None, now: datetime) -> int:
    """Claim and record every target due by ``now`` (up to ``BATCH`` per tenant); how many."""
    async with db.reading() as session:
        rows = (
            await session.execute(
                select(_ticket.c.tenant, _ticket.c.id)
                .where(_ticket.c.sla_due_at <= now, _ticket.c.deleted_at.is_(None))
                .order_by(_ticket.c.sla_due_at)
                .limit(BATCH)
            )
        ).all()
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for tenant, id_ in rows:
        by_tenant[tenant].append(id_)
    recorded = 0
    for tenant, ids in by_tenant.items():
        async with UnitOfWork(db, tenant=tenant, actor=SYSTEM_ACTOR, hooks=hooks, publish=publish) as uow:
            for metric in METRICS:
                for id_, due_at, policy in await uow.claim(Ticket, _claim(metric, ids, now)):
                    await breach(uow, id_, metric=metric, due_at=due_at, policy=policy, breached_at=now)
                    recorded += 1
    return recorded


def _claim(metric: str, ids: list[str], now: datetime) -> Any:
    """``UPDATE … SET <metric>_breached_at = now WHERE`` the target is due, still running and
    unclaimed ``RETURNING id, due time, policy``: whoever runs it first gets each row."""
    _, due_column, breach_column, event_column = METRICS[metric]
    due, breached, happened = _ticket.c[due_column], _ticket.c[breach_column], _ticket.c[event_column]
    return (
        update(_ticket)
        .where(
            _ticket.c.id.in_(ids), breached.is_(None), due <= now, _ticket.c.sla_paused_at.is_(None),
            _ticket.c.status != "CLOSED", _ticket.c.deleted_at.is_(None), or_(happened.is_(None), happened > due),
        )
        .values({breach_column: now})
        .returning(_ticket.c.id, due, _ticket.c.sla_policy_id)
    )  # fmt: skip


def register(hooks: Hooks) -> None:
    """Keep every ticket's clocks (after the shipped hooks that change its fields)."""
    events = [f"Ticket.{past}" for past in (
        "Created", "Updated", "Assigned", "Resolved", "Escalated", "Closed", "Reopened", "Commented",
        "Merged", "SlaBreached", "Deleted",
    )]  # fmt: skip
    hooks.before(*events)(keep_clocks)
