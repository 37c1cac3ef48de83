"""A reactions plugin whose registration fails: the server must not start without it."""

from __future__ import annotations

from resolvers.hooks import Hooks


def register(hooks: Hooks) -> None:
    raise LookupError("no escalation queue configured for the fixture plugin")
