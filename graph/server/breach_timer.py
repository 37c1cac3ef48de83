"""The breach timer of one worker: it sleeps until the earliest running due time, then claims
what is due (``resolvers.service_levels.breach_due``).

Nothing polls: between due times it waits on an event, set when this or another worker commits
a write that makes a due time earlier than the one it sleeps until (the broker's
``TIMER_CHANNEL`` carries the new due time, so later ones wake nobody). On start it first claims
whatever fell due while no server ran. Every worker runs one; the claims make each breach one
event, whoever wakes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from graph.server import metrics
from models.db.engine import Database
from models.types import utcnow
from resolvers.hooks import Hooks
from resolvers.service_levels import TIMER_CHANNEL, breach_due, next_due
from resolvers.unit import Publish
from resolvers.wakeups import Broker

log = logging.getLogger("support_graph.sla")

#: the longest sleep: a due time set while a wake-up was lost (a broker outage) is still met
#: within this many seconds; an idle worker wakes this often, for one indexed query
LONGEST_SLEEP = 60.0
#: after a failure (the database down), the wait before trying again
RETRY_SECONDS = 1.0


class BreachTimer:
    """Claims due service-level targets as they fall due; ``start``/``stop`` with the process."""

    def __init__(self, db: Database, hooks: Hooks, broker: Broker, publish: Publish | None = None) -> None:
        self.db, self.hooks, self.broker = db, hooks, broker
        self.publish = publish if publish is not None else broker.publish
        self._woken = asyncio.Event()
        #: when the timer wakes by itself (epoch seconds); it is woken for earlier due times only
        self._sleeping_until = math.inf
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None
        #: breaches this worker recorded (for tests and logs)
        self.recorded = 0

    async def start(self) -> None:
        self._unlisten = self.broker.listen(TIMER_CHANNEL, self._told)
        self._task = asyncio.create_task(self._run(), name="sla-breach-timer")

    def _told(self, _channel: str, due: int) -> None:
        """A write made a due time ``due`` (epoch seconds): wake if that is before the one this
        timer sleeps until (or if the broker asks every listener to look again: ``due`` ≤ 0)."""
        if due <= 0 or due < self._sleeping_until:
            self._woken.set()

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._woken.clear()  # before looking: a wake-up from here on is not lost
            self._sleeping_until = math.inf  # and while looking, every wake-up counts
            try:
                recorded = await breach_due(self.db, self.hooks, self.publish, utcnow())
                self.recorded += recorded
                if recorded:
                    metrics.sla_breached(recorded)
                    log.info("recorded %d service-level breaches", recorded)
                    continue  # there may be more due than one batch
                due = await next_due(self.db)
            except Exception:
                log.exception("the breach timer failed; retrying in %s s", RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            sleep = LONGEST_SLEEP if due is None else min(LONGEST_SLEEP, (due - utcnow()).total_seconds())
            if sleep <= 0:  # due, yet nothing to claim: another worker is recording it, or a
                sleep = RETRY_SECONDS  # clock is stale; never a busy loop either way
            if sleep > 0:
                self._sleeping_until = utcnow().timestamp() + sleep
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), sleep)
