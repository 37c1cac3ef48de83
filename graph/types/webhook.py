"""Webhook, WebhookDelivery and WebhookAttempt: outgoing webhooks and their delivery log.

No ``from __future__ import annotations`` here: Strawberry reads the annotations at runtime.
A webhook's secret is never a field: it is shown once, by ``WebhookSecretPayload``.
"""

from datetime import datetime
from typing import Any, Optional

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.types.common import Connection, MetaFields, Node, given
from graph.types.event import Event
from models.enums import WebhookDeliveryStatus
from models.event import Event as EventRow
from models.webhooks import Webhook as WebhookRow
from models.webhooks import WebhookDelivery as DeliveryRow
from resolvers import webhooks

strawberry.enum(WebhookDeliveryStatus, description="PENDING: to be attempted; RETRYING: failed, tried again later.")


@strawberry.type(description="One attempt to deliver an event.")
class WebhookAttempt:
    at: datetime
    response_status: Optional[int] = strawberry.field(description="The receiver's HTTP status; null: no answer.")
    duration_ms: int
    error: Optional[str] = strawberry.field(description="Why it failed, when it did not get a 2xx answer.")


@strawberry.type(description="Deliveries of a webhook by status.")
class WebhookDeliveryCounts:
    pending: int
    delivered: int
    retrying: int
    failed: int
    total: int


@strawberry.type(description="Receives the events of its types, signed (Standard Webhooks), retried until delivered.")
class Webhook(Node, MetaFields):
    url: str
    events: list[str] = strawberry.field(description='Event types; "Ticket.*" and "*" are wildcards.')
    description: Optional[str]
    active: bool = strawberry.field(description="Inactive: nothing is sent; events meanwhile are skipped.")

    @strawberry.field(description="Its deliveries, newest event first.")
    async def deliveries(
        self, root: strawberry.Parent[WebhookRow], info: Info, first: Optional[int] = UNSET,
        after: Optional[str] = UNSET, status: Optional[list[WebhookDeliveryStatus]] = UNSET,
    ) -> Connection["WebhookDelivery"]:  # fmt: skip
        context = info.context
        page = await webhooks.deliveries(
            context.db, tenant=context.tenant, webhook_id=root.id,
            statuses=None if status in (UNSET, None) else [s.value for s in status],
            first=given(first), after=given(after),
        )  # fmt: skip
        return Connection.of(page)

    @strawberry.field(description="How many of its deliveries are in each status.")
    async def delivery_counts(self, root: strawberry.Parent[WebhookRow], info: Info) -> WebhookDeliveryCounts:
        found = await webhooks.counts(info.context.db, tenant=info.context.tenant, webhook_id=root.id)
        return WebhookDeliveryCounts(
            pending=found["PENDING"], delivered=found["DELIVERED"], retrying=found["RETRYING"],
            failed=found["FAILED"], total=sum(found.values()),
        )  # fmt: skip

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, WebhookRow)


@strawberry.type(description="One event to one webhook: its status and attempts.")
class WebhookDelivery(Node):
    status: WebhookDeliveryStatus
    next_attempt_at: Optional[datetime] = strawberry.field(description="When the next attempt is due, if any.")
    created_at: datetime

    @strawberry.field
    async def webhook(self, root: strawberry.Parent[DeliveryRow], info: Info) -> Webhook:
        found: Any = await info.context.loaders.by_id(WebhookRow).load(root.webhook_id)
        return found

    @strawberry.field(description="The event delivered; the webhook-id header is its id.")
    async def event(self, root: strawberry.Parent[DeliveryRow], info: Info) -> Event:
        found: Any = await info.context.loaders.by_id(EventRow).load(root.event_id)
        return found

    @strawberry.field(description="Oldest first.")
    def attempts(self, root: strawberry.Parent[DeliveryRow]) -> list[WebhookAttempt]:
        return [
            WebhookAttempt(
                at=datetime.fromisoformat(a["at"]),
                response_status=a.get("responseStatus"),
                duration_ms=a.get("durationMs") or 0,
                error=a.get("error"),
            )
            for a in root.attempts or []
        ]

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, DeliveryRow)


@strawberry.type(description="A webhook with its signing secret, shown only here.")
class WebhookSecretPayload:
    webhook: Any = strawberry.field(graphql_type=Webhook)
    secret: str = strawberry.field(description="whsec_ + base64: verify signatures with it; it is not shown again.")


@strawberry.input
class CreateWebhookInput:
    url: str
    events: list[str]
    description: Optional[str] = UNSET


@strawberry.input(description="Only the fields given change.")
class UpdateWebhookInput:
    url: Optional[str] = UNSET
    events: Optional[list[str]] = UNSET
    description: Optional[str] = UNSET
    active: Optional[bool] = UNSET
