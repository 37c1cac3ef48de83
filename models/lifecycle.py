"""Every entity's state machine, in one place.

A table is a list of rows ``(verb, from-states, to-state)``. ``ANY`` as from-states means the verb
is allowed in every state; ``None`` as to-state means the state is left as it is. Verbs that
change an entity without a row here (``update`` of other fields, ``delete``) are always
allowed. ``moves`` are the state changes ``update`` may make through its state field
(``updateTicket(input: {status: PENDING})``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ANY: frozenset[str] = frozenset({"*"})

#: Past tense of every verb, which names its event (``Ticket.Escalated``).
PAST_TENSE = {
    "create": "Created", "update": "Updated", "delete": "Deleted", "assign": "Assigned",
    "resolve": "Resolved", "escalate": "Escalated", "close": "Closed", "reopen": "Reopened",
    "qualify": "Qualified", "advance": "Advanced", "win": "Won", "lose": "Lost",
    "activate": "Activated", "pause": "Paused", "cancel": "Cancelled",
    "reactivate": "Reactivated", "upgrade": "Upgraded", "downgrade": "Downgraded",
    "renew": "Renewed", "complete": "Completed", "record": "Recorded",
    "comment": "Commented", "merge": "Merged", "sla_breach": "SlaBreached",
}  # fmt: skip


@dataclass(frozen=True)
class Lifecycle:
    """The state machine of one entity type."""

    entity: str
    state_field: str | None
    rows: tuple[tuple[str, frozenset[str], str | None], ...] = ()
    moves: dict[str, frozenset[str]] = field(default_factory=dict)
    #: a column that, once set, ends the entity's life: no verb is allowed after it; and how
    #: to say so ("merged into" ticket_…)
    sealed_by: str | None = None
    sealed_as: str = ""
    #: verbs the server itself applies, in any state, never offered to callers
    system: frozenset[str] = frozenset()

    @property
    def verbs(self) -> list[str]:
        """All verbs of the entity except create, in a stable order."""
        named = list(dict.fromkeys(verb for verb, _, _ in self.rows))
        return ["update", "delete", *named]

    def permits(self, verb: str, state: str | None) -> bool:
        if verb in ("update", "delete") or verb in self.system:
            return True
        return any(v == verb and (src is ANY or state in src) for v, src, _ in self.rows)

    def target(self, verb: str, state: str | None) -> str | None:
        """The state after ``verb`` (None: unchanged). Call only when ``permits`` is true."""
        for v, src, to in self.rows:
            if v == verb and (src is ANY or state in src):
                return to
        return None

    def allowed(self, state: str | None) -> list[str]:
        """The verbs allowed from ``state`` — what a UI may offer next."""
        return [verb for verb in self.verbs if self.permits(verb, state)]

    def sealed(self, entity: object) -> bool:
        """Whether ``entity`` takes no more verbs (a ticket merged into another)."""
        return self.sealed_by is not None and getattr(entity, self.sealed_by) is not None

    def may_move(self, state: str | None, new_state: str) -> bool:
        """Whether ``update`` may set the state field from ``state`` to ``new_state``."""
        return state == new_state or new_state in self.moves.get(state or "", frozenset())


def _s(*states: str) -> frozenset[str]:
    return frozenset(states)


_TICKET_LIVE = _s("OPEN", "PENDING", "IN_PROGRESS", "ESCALATED", "REOPENED", "RESOLVED")
_DEAL_OPEN = _s("PROSPECTING", "QUALIFICATION", "PROPOSAL", "NEGOTIATION")
_SUBSCRIPTION_BILLED = _s("TRIALING", "ACTIVE", "PAST_DUE")

LIFECYCLES: dict[str, Lifecycle] = {
    lc.entity: lc
    for lc in (
        Lifecycle(
            "Ticket",
            "status",
            rows=(
                ("assign", _TICKET_LIVE, None),
                ("escalate", _s("OPEN", "IN_PROGRESS", "REOPENED"), "ESCALATED"),
                ("resolve", _s("OPEN", "PENDING", "IN_PROGRESS", "ESCALATED", "REOPENED"), "RESOLVED"),
                ("close", _s("OPEN", "RESOLVED", "REOPENED"), "CLOSED"),
                ("reopen", _s("CLOSED", "RESOLVED"), "REOPENED"),
                ("comment", _TICKET_LIVE, None),  # the rules of a requester's reply: resolvers/verbs/ticket.py
                ("merge", _TICKET_LIVE, "CLOSED"),
            ),
            moves={
                "OPEN": _s("PENDING", "IN_PROGRESS"),
                "PENDING": _s("IN_PROGRESS"),  # the customer answered
                "IN_PROGRESS": _s("PENDING"),  # waiting on the customer
                "REOPENED": _s("OPEN"),
            },
            sealed_by="merged_into_id",
            sealed_as="merged into",
            system=frozenset({"sla_breach"}),
        ),
        Lifecycle(
            "Contact",
            "stage",
            rows=(
                ("qualify", _s("LEAD"), "QUALIFIED"),
                ("assign", ANY, None),
            ),
            moves={
                "QUALIFIED": _s("CUSTOMER", "PARTNER"),
                "CUSTOMER": _s("CHURNED", "PARTNER"),
                "CHURNED": _s("CUSTOMER"),
                "LEAD": _s("PARTNER"),
            },
        ),
        Lifecycle("Organization", None),
        Lifecycle(
            "Deal",
            "stage",
            rows=(
                ("advance", _s("PROSPECTING"), "QUALIFICATION"),
                ("advance", _s("QUALIFICATION"), "PROPOSAL"),
                ("advance", _s("PROPOSAL"), "NEGOTIATION"),
                ("win", _DEAL_OPEN, "WON"),
                ("lose", _DEAL_OPEN, "LOST"),
                ("close", _DEAL_OPEN | _s("WON", "LOST"), "CLOSED"),
                ("reopen", _s("WON", "LOST", "CLOSED"), "PROSPECTING"),
            ),
        ),
        Lifecycle(
            "Subscription",
            "status",
            rows=(
                ("activate", _s("TRIALING", "INCOMPLETE", "PAST_DUE"), "ACTIVE"),
                ("pause", _SUBSCRIPTION_BILLED, "PAUSED"),
                ("cancel", _SUBSCRIPTION_BILLED | _s("PAUSED", "INCOMPLETE"), "CANCELLED"),
                ("reactivate", _s("PAUSED", "CANCELLED"), "ACTIVE"),
                ("upgrade", _SUBSCRIPTION_BILLED, None),
                ("downgrade", _SUBSCRIPTION_BILLED, None),
                ("renew", _s("ACTIVE", "PAST_DUE"), "ACTIVE"),
            ),
            moves={"ACTIVE": _s("PAST_DUE"), "INCOMPLETE": _s("PAST_DUE")},
        ),
        Lifecycle(
            "Issue",
            "status",
            rows=(
                ("assign", _s("OPEN", "REOPENED"), "ASSIGNED"),
                ("assign", _s("ASSIGNED", "IN_PROGRESS", "REVIEW"), None),
                ("close", _s("OPEN", "ASSIGNED", "IN_PROGRESS", "REVIEW", "DONE", "REOPENED"), "CLOSED"),
                ("reopen", _s("CLOSED", "DONE"), "REOPENED"),
            ),
            moves={
                "OPEN": _s("IN_PROGRESS"),
                "ASSIGNED": _s("IN_PROGRESS"),
                "REOPENED": _s("IN_PROGRESS"),
                "IN_PROGRESS": _s("REVIEW", "DONE"),
                "REVIEW": _s("IN_PROGRESS", "DONE"),
            },
        ),
        Lifecycle(
            "Activity",
            "status",
            rows=(
                ("complete", _s("PENDING", "IN_PROGRESS"), "COMPLETED"),
                ("cancel", _s("PENDING", "IN_PROGRESS"), "CANCELLED"),
            ),
            moves={"PENDING": _s("IN_PROGRESS"), "IN_PROGRESS": _s("PENDING")},
        ),
        Lifecycle("Metric", None, rows=(("record", ANY, None),)),
        Lifecycle("Comment", None),
        Lifecycle("SlaPolicy", None),
    )
}


def event_type(entity: str, verb: str) -> str:
    """``event_type("Ticket", "escalate") == "Ticket.Escalated"``."""
    return f"{entity}.{PAST_TENSE[verb]}"
