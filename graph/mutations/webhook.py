"""Webhook mutations: create, update, delete, rotate the secret, redeliver."""

import dataclasses
from typing import Any

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from graph.server.ssrf import UrlGuard
from graph.server.webhook_sender import url_guard
from graph.types.webhook import CreateWebhookInput, UpdateWebhookInput, Webhook, WebhookDelivery, WebhookSecretPayload
from models.webhooks import Webhook as WebhookRow
from models.webhooks import WebhookDelivery as DeliveryRow
from resolvers import webhooks


def _guard(info: Info) -> UrlGuard:
    services = info.context.services
    return url_guard(bool(services is not None and services.settings.require_auth))


async def _wake(info: Info) -> None:
    """Tell every worker's sender to look again (a webhook made, changed, or a redelivery)."""
    if info.context.publish is not None:
        await info.context.publish(webhooks.CHANNEL, 0)


def _given(data: Any) -> dict[str, Any]:
    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if getattr(data, f.name) is not UNSET}


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="Send the events of these types to a url; the secret is shown only here.")
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> WebhookSecretPayload:
        context = info.context
        given = _given(input)
        webhook, secret = await webhooks.create(
            context.db, tenant=context.tenant, actor=context.actor, url=given["url"], events=given["events"],
            description=given.get("description"), check=_guard(info).check,
        )  # fmt: skip
        await _wake(info)
        return WebhookSecretPayload(webhook=webhook, secret=secret)

    @strawberry.mutation(graphql_type=Webhook, description="Change the fields given (null clears the description).")
    async def update_webhook(self, info: Info, id: strawberry.ID, input: UpdateWebhookInput) -> WebhookRow:
        context = info.context
        webhook = await webhooks.update_webhook(
            context.db, tenant=context.tenant, id_=id, values=_given(input), check=_guard(info).check
        )
        await _wake(info)
        return webhook

    @strawberry.mutation(graphql_type=Webhook, description="Stop sending and remove it from lists.")
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> WebhookRow:
        webhook = await webhooks.delete(info.context.db, tenant=info.context.tenant, id_=id)
        await _wake(info)
        return webhook

    @strawberry.mutation(description="A new signing secret, shown only here; the old one stops signing at once.")
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookSecretPayload:
        webhook, secret = await webhooks.rotate_secret(info.context.db, tenant=info.context.tenant, id_=id)
        return WebhookSecretPayload(webhook=webhook, secret=secret)

    @strawberry.mutation(graphql_type=WebhookDelivery, description="Attempt it again now, with a fresh schedule.")
    async def redeliver_webhook_delivery(self, info: Info, id: strawberry.ID) -> DeliveryRow:
        delivery = await webhooks.redeliver(info.context.db, tenant=info.context.tenant, id_=id)
        await _wake(info)
        return delivery
