"""The webhook sender of one worker: it turns committed events into signed POSTs.

It listens on the broker for the commits of every tenant with an active webhook (and for
``resolvers.webhooks.CHANNEL``, which a new or changed webhook wakes), and polls every few
seconds besides, so a lost wake-up costs latency only. Each webhook with work gets a task of its
own that claims (``resolvers.webhooks.claim``), sends and records until nothing is due — so a
slow or dead receiver holds up its own webhook and nothing else, and a mutation never waits on
any of it. First attempts go out one after another in commit order; retries alongside them.

One ``httpx.AsyncClient`` per worker, with pool limits; at most ``concurrency_per_receiver``
requests to one host at once; redirects are not followed; at most 1 KB of an answer is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.server import metrics
from graph.server.ssrf import UrlGuard, UrlRefused, shown
from models.db.engine import Database
from models.types import utcnow
from models.webhooks import DEFAULT_SCHEDULE, KEPT_BODY, headers, parse_schedule, retry_after_seconds
from resolvers import webhooks
from resolvers.wakeups import Broker
from resolvers.webhooks import Claimed, Outcome

log = logging.getLogger("support_graph.webhooks")

#: after a failure of the sender itself (the database down), the wait before trying again
RETRY_SECONDS = 1.0
#: the least time between two looks of one webhook for work, however many commits wake it
LOOK_EVERY = 0.02
#: added to a lease (three timeouts: see ``_serve``)
LEASE_MARGIN = 5.0
#: how long a stopping sender tries to hand back the deliveries it holds
RELEASE_WAIT = 5.0


class WebhookSettings(BaseSettings):
    """``WEBHOOK_TIMEOUT_SECONDS``, ``WEBHOOK_RETRY_SCHEDULE``, ``WEBHOOK_ALLOW_PRIVATE`` …"""

    model_config = SettingsConfigDict(env_ignore_empty=True, env_prefix="WEBHOOK_")

    timeout_seconds: float = Field(10.0, gt=0)
    retry_schedule: str = ",".join(str(d) for d in DEFAULT_SCHEDULE)
    allow_private: bool = False
    #: the fallback poll (seconds): the longest a lost wake-up delays an attempt
    poll_seconds: float = Field(2.0, gt=0)
    concurrency_per_receiver: int = Field(8, ge=1)
    #: with a backlog of more than this many first attempts due, this many of one webhook are in
    #: flight at once (started in commit order); else one at a time. 1: always one at a time
    in_order_window: int = Field(8, ge=1)
    max_connections: int = Field(100, ge=1)

    @property
    def schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.retry_schedule)


def url_guard(require_auth: bool, settings: WebhookSettings | None = None) -> UrlGuard:
    """The guard for create, update and send, from ``--require-auth`` and ``WEBHOOK_ALLOW_PRIVATE``."""
    return UrlGuard(require_auth=require_auth, allow_private=(settings or WebhookSettings()).allow_private)


class WebhookSender:
    """Delivers webhooks; ``start``/``stop`` with the process."""

    def __init__(self, db: Database, broker: Broker, *, require_auth: bool,
                 settings: WebhookSettings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:  # fmt: skip
        self.db, self.broker = db, broker
        self.settings = settings or WebhookSettings()
        self.schedule = self.settings.schedule
        self.guard = url_guard(require_auth, self.settings)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._serving: dict[str, asyncio.Task[None]] = {}
        self._ending: set[asyncio.Task[None]] = set()
        self._listening: dict[str, Callable[[], None]] = {}
        #: per tenant, the wake-ups of its webhooks' tasks
        self._wakes: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._receivers: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.settings.concurrency_per_receiver)
        )
        #: attempts this worker made, and how many delivered (for tests and logs)
        self.attempted = 0
        self.delivered = 0

    async def start(self) -> None:
        timeout = self.settings.timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=self.settings.max_connections, max_keepalive_connections=20),
            transport=self._transport,
            trust_env=False,
        )
        self._listening[webhooks.CHANNEL] = self.broker.listen(webhooks.CHANNEL, self._changed)
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        for unlisten in self._listening.values():
            unlisten()
        self._listening.clear()
        tasks = [t for t in (self._task, *self._serving.values(), *self._ending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    def _changed(self, _channel: str, _value: int) -> None:
        """A webhook was made, changed or redelivered: every webhook looks again."""
        self._woken.set()
        for wakes in self._wakes.values():
            for wake in wakes:
                wake.set()

    def _committed(self, tenant: str, _seq: int) -> None:
        for wake in self._wakes.get(tenant, ()):
            wake.set()

    # --- finding work ---------------------------------------------------------------------------

    async def _run(self) -> None:
        """Keep one task per active webhook, listening to the commits of its tenant."""
        while True:
            self._woken.clear()  # before looking: a wake-up from here on is not lost
            try:
                hooks = await webhooks.active(self.db)
            except Exception:
                log.exception("the webhook sender failed; retrying in %s s", RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for webhook_id, tenant in hooks.items():
                if webhook_id not in self._serving:
                    self._serving[webhook_id] = asyncio.create_task(self._serve(webhook_id, tenant))
            for webhook_id in set(self._serving) - hooks.keys():  # deleted or paused: its task ends
                ending = self._serving.pop(webhook_id)
                ending.cancel()
                self._ending.add(ending)
                ending.add_done_callback(self._ending.discard)
            for tenant in {*hooks.values()} - self._listening.keys():
                self._listening[tenant] = self.broker.listen(tenant, self._committed)
            for tenant in set(self._listening) - {*hooks.values(), webhooks.CHANNEL}:
                self._listening.pop(tenant)()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.settings.poll_seconds)

    async def _serve(self, webhook_id: str, tenant: str) -> None:
        """Claim, send and record for one webhook; between rounds, sleep until its tenant commits,
        its next attempt is due, or the poll."""
        wake = asyncio.Event()
        self._wakes[tenant].add(wake)
        # an attempt may wait for its receiver's turn (one timeout), then take one: a lane starts
        # none after one timeout, and retries are claimed no more than a receiver takes at once
        lease = 3 * self.settings.timeout_seconds + LEASE_MARGIN
        retry_batch = self.settings.concurrency_per_receiver
        try:
            busy = False  # after a round that sent something, claim again straight away
            while True:
                wake.clear()
                try:
                    was_busy, due = busy, None
                    if not busy:
                        busy, due = await webhooks.work(self.db, webhook_id, utcnow())
                    claimed = (
                        await webhooks.claim(
                            self.db, webhook_id, now=utcnow(), lease_seconds=lease, retries=retry_batch
                        )
                        if busy
                        else []
                    )
                    busy = bool(claimed)
                    if was_busy and not claimed:
                        continue  # look again (when the next attempt is due) before sleeping
                    if claimed:
                        first = [c for c in claimed if c.first]
                        retries = [c for c in claimed if not c.first]
                        try:
                            await asyncio.gather(self._in_order(first), *(self._retry(c) for c in retries))
                        except asyncio.CancelledError:  # stopping: what was not recorded is due again now
                            with contextlib.suppress(Exception):
                                await asyncio.wait_for(webhooks.release(self.db, claimed, utcnow()), RELEASE_WAIT)
                            raise
                        continue
                except Exception:
                    log.exception("webhook %s: sending failed; trying again in %s s", webhook_id, RETRY_SECONDS)
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                sleep = self.settings.poll_seconds
                if due is not None:
                    sleep = max(LOOK_EVERY, min(sleep, (due - utcnow()).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), sleep)
                busy = wake.is_set()  # woken by a commit (or a change): there is work, claim at once
                await asyncio.sleep(LOOK_EVERY)  # commits close together are decided together
        finally:
            self._wakes[tenant].discard(wake)

    async def _in_order(self, claimed: list[Claimed]) -> None:
        """First attempts, started in commit order and recorded together: one at a time (so they
        also arrive in that order) unless a backlog of more than ``in_order_window`` is due,
        then that many at once; those not started within one timeout are handed back."""
        size = self.settings.in_order_window
        window = asyncio.Semaphore(size if len(claimed) > size else 1)
        started = time.monotonic()

        async def attempt(delivery: Claimed) -> Outcome:
            try:
                return await self._attempt(delivery)
            finally:
                window.release()

        sending: list[asyncio.Task[Outcome]] = []
        for index, delivery in enumerate(claimed):
            await window.acquire()
            if time.monotonic() - started > self.settings.timeout_seconds:
                window.release()
                await webhooks.release(self.db, claimed[index:], utcnow())
                break
            sending.append(asyncio.create_task(attempt(delivery)))
        outcomes = list(await asyncio.gather(*sending))
        if outcomes:
            await self._record(outcomes)

    async def _retry(self, delivery: Claimed) -> None:
        await self._record([await self._attempt(delivery)])

    async def _record(self, outcomes: list[Outcome]) -> None:
        statuses = await webhooks.record(self.db, outcomes, self.schedule)
        for outcome, status in zip(outcomes, statuses):
            metrics.webhook_attempted(status, outcome.duration_ms / 1000)
            c = outcome.claimed
            log.info(
                "webhook %s delivery %s event %s to %s: attempt %d → %s in %d ms%s; now %s",
                c.webhook_id, c.id, c.event_id, shown(c.url), len(c.attempts) + 1,
                outcome.status_code if outcome.status_code is not None else "no answer", outcome.duration_ms,
                f" ({outcome.error})" if outcome.error else "", status,
            )  # fmt: skip

    # --- one attempt ------------------------------------------------------------------------------

    async def _attempt(self, delivery: Claimed) -> Outcome:
        """POST one signed message; never raises (a failure is an outcome)."""
        assert self._client is not None
        at = utcnow()
        started = time.monotonic()
        status: int | None = None
        body: str | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            target = await self.guard.target(delivery.url)
            stamp = int(time.time())
            sent = {**headers(delivery.secret, delivery.event_id, stamp, delivery.body), **target.headers}
            request = self._client.build_request(
                "POST", target.url, content=delivery.body, headers=sent, extensions=dict(target.extensions)
            )
            async with (
                self._receivers[httpx.URL(target.url).netloc.decode()],
                asyncio.timeout(self.settings.timeout_seconds),
            ):
                response = await self._client.send(request, stream=True)
                try:
                    status = response.status_code
                    body = await _head(response)
                finally:
                    await response.aclose()
            if 300 <= status < 400:
                error = f"redirect ({status}) not followed"
            elif status in (429, 503):
                retry_after = retry_after_seconds(response.headers.get("retry-after"), utcnow())
        except UrlRefused as refused:
            error = f"refused: {refused}"
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except httpx.TimeoutException as failure:
            error = f"timed out ({type(failure).__name__})"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:200]
        except OSError as failure:
            error = f"{type(failure).__name__}: {failure}"[:200]
        self.attempted += 1
        duration = int((time.monotonic() - started) * 1000)
        outcome = Outcome(delivery, at, status, duration, error, body, retry_after)
        self.delivered += outcome.delivered
        return outcome


async def _head(response: httpx.Response) -> str:
    """At most ``KEPT_BODY`` bytes of an answer, as text."""
    kept = b""
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= KEPT_BODY:
            break
    return kept[:KEPT_BODY].decode("utf-8", "replace")
