"""A ticket's service-level clocks: which policy applies, when each target is due, where it stands.

Pure rules over a ticket's fields; the verb path applies them on every ticket write
(``resolvers.service_levels``) and the breach timer claims what they say is due.

- The active policy with the lowest position whose lists hold the ticket's priority, its
  organization's tier and its channel applies (an empty list holds anything).
- A target is due ``seconds`` of business time after ``created_at``, plus the business time the
  ticket spent PENDING (its pauses), which does not count.
- A target is met when its event (first response, resolution) came at or before its due time;
  it is breached once the timer stamps it; a CLOSED ticket's open targets are waived.
- ``sla_due_at`` is the earliest due time still running (not met, breached or waived; not while
  paused), or ``NEVER``: what the timer sleeps until and what ``SLA_DUE_AT`` orders by.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from models.business_time import BusinessHours, add_business_seconds, business_seconds_between
from models.service_levels import SlaPolicy

#: ``sla_due_at`` of a ticket with no clock running (a NOT NULL column keeps the index simple)
NEVER = datetime(9999, 12, 31, tzinfo=UTC)
#: metric → (target column of the policy, the ticket's due, breach and event columns)
METRICS: dict[str, tuple[str, str, str, str]] = {
    "FIRST_RESPONSE": ("first_response_seconds", "first_response_due_at", "first_response_breached_at",
                       "first_response_at"),
    "RESOLUTION": ("resolution_seconds", "resolution_due_at", "resolution_breached_at", "resolved_at"),
}  # fmt: skip
#: the ticket fields whose change chooses the policy again (with the organization's tier)
CHOOSING = ("priority", "organization_id", "channel")
#: every column the clocks write
COLUMNS = (
    "sla_policy_id", "first_response_due_at", "resolution_due_at", "first_response_breached_at",
    "resolution_breached_at", "sla_paused_at", "sla_pauses", "sla_state", "sla_due_at",
)  # fmt: skip


def choose(
    policies: Iterable[SlaPolicy], *, priority: str | None, tier: str | None, channel: str | None
) -> SlaPolicy | None:
    """The policy that applies to a ticket of this priority, organization tier and channel."""

    def holds(allowed: list[str], value: str | None) -> bool:
        return not allowed or value in allowed

    fitting = [
        p for p in policies
        if p.active and p.deleted_at is None and holds(p.priorities, priority)
        and holds(p.organization_tiers, tier) and holds(p.channels, channel)
    ]  # fmt: skip
    return min(fitting, key=lambda p: (p.position, p.created_at, p.id), default=None)


def hours_of(policy: SlaPolicy) -> BusinessHours | None:
    """The policy's business hours (None: around the clock), read once per distinct document."""
    document = policy.business_hours
    if document is None:
        return None
    key = _frozen(document)
    if key is None:  # not plain JSON: read it as it is, every time
        return BusinessHours.parse(document)
    hours = _PARSED.get(key)
    if hours is None:  # a document that does not parse raises here, each time, and is not kept
        hours = BusinessHours.parse(document)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = hours
    return hours


#: business hours by their document (``_frozen``): the verb path reads the same few on every write
_PARSED: dict[Hashable, BusinessHours] = {}
_PARSED_MAX = 256
_LEAVES = (str, int, float, bool, type(None))


def _frozen(value: Any) -> Hashable | None:
    """A hashable copy of a JSON document that differs from every other document's, types and
    order included (so ``1``, ``True`` and ``1.0`` or a list and a tuple never share one); None
    for anything else."""
    kind = type(value)
    if kind in _LEAVES:
        return (kind, value)
    if kind is list or kind is dict:
        items = value.items() if kind is dict else enumerate(value)
        frozen = []
        for name, item in items:
            leaf = type(item)
            inner = (leaf, item) if leaf in _LEAVES else _frozen(item)  # (inline: most are leaves)
            if inner is None or (kind is dict and type(name) is not str):
                return None
            frozen.append((name, inner))
        return (kind, tuple(frozen))
    return None


def clocks(ticket: Mapping[str, Any], policy: SlaPolicy | None, *, chosen: bool, now: datetime) -> dict[str, Any]:
    """The clock columns of ``ticket`` (its fields after the write).

    ``chosen``: ``policy`` was chosen afresh (None: none applies), and the due times are
    computed again. Otherwise the ticket keeps its policy; ``policy`` is given when a pause starts
    or ends (its hours move the due times), else None (nothing to recompute; also when the policy
    was deleted since: its clocks run on)."""
    paused_at: datetime | None = ticket["sla_paused_at"]
    pauses: list[list[Any]] = list(ticket["sla_pauses"] or [])
    pending = ticket["status"] == "PENDING"
    if pending and paused_at is None:
        paused_at = now
    elif not pending and paused_at is not None:  # the pause holds the targets that were running
        pauses.append([paused_at.isoformat(), now.isoformat(), _running_at(ticket, paused_at)])
        paused_at = None
    out: dict[str, Any] = {"sla_paused_at": paused_at, "sla_pauses": pauses}
    if (chosen and policy is None) or (not chosen and ticket["sla_policy_id"] is None):
        return out | {name: None for name in COLUMNS if name not in out} | {"sla_due_at": NEVER}
    if policy is not None and (chosen or pauses != (ticket["sla_pauses"] or [])):
        out |= {"sla_policy_id": policy.id} | due_times(policy, ticket["created_at"], pauses)
    current = {**ticket, **out}
    out["sla_state"] = state(current)
    out["sla_due_at"] = running_due(current)
    return out


def _running_at(ticket: Mapping[str, Any], moment: datetime) -> list[str]:
    """The targets still open at ``moment`` (not breached, their event not yet come): those a
    pause from then holds. A target settled before a pause keeps its due time."""
    return [
        metric for metric, (_, _, breach, event) in METRICS.items()
        if ticket[breach] is None and (ticket[event] is None or ticket[event] > moment)
    ]  # fmt: skip


def due_times(policy: SlaPolicy, created_at: datetime, pauses: list[list[Any]]) -> dict[str, datetime | None]:
    """Each target's due time: its business seconds after creation, plus the business seconds of
    the pauses that held it (``[start, end, targets]``)."""
    hours = hours_of(policy)
    if created_at.microsecond:  # business time counts whole seconds: never due before its target
        created_at = created_at.replace(microsecond=0) + timedelta(seconds=1)
    due: dict[str, datetime | None] = {}
    for metric, (target, due_column, _, _) in METRICS.items():
        seconds = getattr(policy, target)
        if seconds is None:
            due[due_column] = None
            continue
        paused = sum(
            business_seconds_between(hours, datetime.fromisoformat(pause[0]), datetime.fromisoformat(pause[1]))
            for pause in pauses
            if metric in pause[2]
        )
        due[due_column] = add_business_seconds(hours, created_at, seconds + paused)
    return due


def met(ticket: Mapping[str, Any], metric: str) -> bool:
    _, due_column, _, event_column = METRICS[metric]
    due, happened = ticket[due_column], ticket[event_column]
    return due is not None and happened is not None and happened <= due


def running(ticket: Mapping[str, Any], metric: str) -> bool:
    """Whether the target's clock still runs: due, not met, not breached, not waived, not paused."""
    _, due_column, breach_column, _ = METRICS[metric]
    return (
        ticket[due_column] is not None and ticket[breach_column] is None and not met(ticket, metric)
        and ticket["status"] != "CLOSED" and ticket["sla_paused_at"] is None
    )  # fmt: skip


def state(ticket: Mapping[str, Any]) -> str:
    if any(ticket[breach] is not None for _, _, breach, _ in METRICS.values()):
        return "BREACHED"
    if ticket["status"] == "PENDING":
        return "PAUSED"
    if any(running(ticket, metric) for metric in METRICS):
        return "ACTIVE"
    return "MET"


def running_due(ticket: Mapping[str, Any]) -> datetime:
    """The earliest due time still running, or ``NEVER``."""
    due = [ticket[METRICS[m][1]] for m in METRICS if running(ticket, m)]
    return min(due, default=NEVER)
