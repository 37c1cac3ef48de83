"""The per-request context every resolver sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.db.engine import Database
from resolvers.hooks import Hooks
from resolvers.loaders import Loaders
from resolvers.unit import Publish, UnitOfWork


@dataclass
class Context:
    """Who is asking (tenant, actor), the database, and this request's loaders."""

    db: Database
    tenant: str
    actor: str
    hooks: Hooks
    publish: Publish | None = None
    request: Any = None
    response: Any = None
    request_id: str = ""
    services: Any = None
    #: the WebSocket ``connection_init`` payload (Strawberry fills it in)
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.tenant)

    def unit(self) -> UnitOfWork:
        """A unit of work on behalf of the caller."""
        return UnitOfWork(self.db, tenant=self.tenant, actor=self.actor, hooks=self.hooks, publish=self.publish)
