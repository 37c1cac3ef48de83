"""The unit of work: the one path every verb of every entity takes, in one transaction.

load (row-locked, in the caller's tenant) → check ``expectedVersion`` → check the transition →
before-hooks → apply → version + 1 → append the event → after-hooks → commit → publish.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy.exc import IntegrityError

from models.base import Entity, TableClass
from models.db.engine import Database
from models.db.plain import as_entity
from models.event import Event
from models.history import api_name, jsonable, snapshot
from models.ids import new_id, type_of
from models.lifecycle import LIFECYCLES, event_type
from models.types import utcnow
from resolvers.errors import BadInput, InvalidTransition, NotFound, VersionConflict
from resolvers.hooks import Change, Hooks
from resolvers.unit_link import Link, open_link
from resolvers.unit_sql import (
    MAX_PARAMETERS,
    closing,
    closing_parameters,
    closing_values,
    columns,
    defaults,
    find_all_statement,
    reserve_statement,
    statements,
    unique_checks,
)
from resolvers.validate import clean, references
from resolvers.work import E

#: what a unit's write of a row conflicting with existing data becomes
CONFLICT = "The change conflicts with existing data (a unique field is taken)"

Publish = Callable[[str, int], Awaitable[None]]


class UnitOfWork:
    """A write transaction on behalf of one actor of one tenant.

    Use as ``async with UnitOfWork(db, tenant=..., actor=..., hooks=...) as uow:``; everything done through
    ``uow`` commits together when the block ends, or not at all if it raises. After commit the
    tenant's newest sequence number is published so live subscribers wake up.
    """

    def __init__(self, db: Database, *, tenant: str, actor: str, hooks: Hooks, publish: Publish | None = None) -> None:
        self.db = db
        self.hooks = hooks
        self.tenant = tenant
        self.actor = actor
        self.publish = publish
        self.events: list[Event] = []
        self._causes: list[str] = []
        #: entities this unit created or row-locked: live, in this tenant, no need to ask again
        self._held: dict[str, Entity] = {}
        #: entities this unit read without a lock (a hook's lookups): asked once per unit
        self._read: dict[str, Entity] = {}
        #: ids this unit has seen live in its tenant (read, checked or created), until deleted
        self._live: set[str] = set()
        #: broker channels to wake once this unit commits (a breach timer), with the least value
        self._wakes: dict[str, int] = {}
        #: rows written but not sent yet (see ``_hold``): ("insert" | "update", table, rows)
        self._held_back: list[tuple[str, type[TableClass], list[dict[str, Any]]]] = []
        #: id → its row in ``_held_back``
        self._held_rows: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> UnitOfWork:
        #: the unit's way to its database: straight on the driver (asyncpg, or SQLite's one-hop
        #: adapter), else a session's connection; see resolvers/unit_link.py
        self._link: Link = await open_link(self.db)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                await self._commit()
        except IntegrityError as error:
            await self._link.rollback()
            raise BadInput(CONFLICT) from error
        except BaseException:
            await self._link.rollback()
            raise
        else:
            if exc_type is not None:
                await self._link.rollback()
                if isinstance(exc, IntegrityError):  # a unique value taken by a concurrent writer
                    raise BadInput(CONFLICT) from exc
        finally:
            await self._link.close(exc_type, exc, tb)
        if exc_type is None and self.events and self.publish is not None:
            last = self.events[-1].seq
            assert last is not None  # numbered at commit
            await self.publish(self.tenant, last)
        if exc_type is None and self.publish is not None:
            for channel, value in sorted(self._wakes.items()):
                await self.publish(channel, value)

    def wake(self, channel: str, value: int = 0) -> None:
        """Once this unit commits, wake the listeners of ``channel`` on every worker, telling them
        ``value`` (the least of those given: a due time, for a breach timer)."""
        self._wakes[channel] = min(value, self._wakes.get(channel, value))

    async def _commit(self) -> None:
        """Number this unit's events and commit.

        The events get their sequence numbers last, from the tenant's counter row: its lock is
        the last one the transaction takes and is held only until commit, so numbers follow
        commit order and no two writers can deadlock over it. On PostgreSQL the rows held back,
        the counter and the events go in one statement (``resolvers.unit_sql.closing``), which
        still takes the counter's lock last — and, when the unit wrote nothing before it, runs
        alone and commits as it ends (``models.db.writes``).
        """
        count = len(self.events)
        if count and self.db.dialect == "postgresql" and closing_parameters(self._held_back, count) <= MAX_PARAMETERS:
            rows = [{name: getattr(event, name) for name in columns(Event)} for event in self.events]
            shape, values = closing_values(self._held_back, rows, self.tenant)
            self._held_back, self._held_rows = [], {}
            self._number(max(await self._link.last(closing(shape, count), values, events=count)))
            return
        if count:
            self._number(await self._reserve_seq(count))  # sends the rows held back first
            # events are written once and never changed: a plain INSERT, not ORM bookkeeping
            rows = [{name: getattr(event, name) for name in columns(Event)} for event in self.events]
            await self._link.write(statements(Event).insert, rows, events=count)
        else:
            await self._flush()
        await self._link.commit()

    def _number(self, last: int) -> None:
        """Number this unit's events up to ``last``, in the order they happened."""
        first = last - len(self.events) + 1
        for offset, event in enumerate(self.events):
            event.seq = first + offset

    # --- reading inside the transaction -------------------------------------------------------

    async def load(self, kind: type[E], id_: str, *, lock: bool = True) -> E:
        """The live entity ``id_`` of this tenant, row-locked until commit; else ``NotFound``."""
        held = self._held.get(id_)
        if held is not None and isinstance(held, kind) and held.deleted_at is None:
            return held
        read = self._read.get(id_) if not lock and held is None else None
        if read is not None and isinstance(read, kind):
            return read
        if type_of(id_) != kind.type_name:
            raise NotFound(f"No {kind.type_name} with id {id_!r}", id=id_)
        table = statements(kind)
        query = table.lock if lock else table.read
        found = await self._rows(query, {"id": id_, "tenant": self.tenant}, writes=lock)
        if not found:
            raise NotFound(f"No {kind.type_name} with id {id_!r}", id=id_)
        entity = as_entity(kind, found[0])
        if lock:
            self._held[id_] = entity
            self._read.pop(id_, None)
        else:
            self._read[id_] = entity
        self._live.add(id_)
        return entity

    async def find(self, kind: type[E], id_: str) -> E | None:
        """The live entity ``id_`` of this tenant, unlocked, or None."""
        try:
            return await self.load(kind, id_, lock=False)
        except NotFound:
            return None

    async def claim(self, kind: type[E], statement: Any) -> list[Any]:
        """Run a conditional ``UPDATE … RETURNING`` on ``kind``'s table in this transaction: the
        rows this unit won (a concurrent unit that ran it first got the others)."""
        if self._held_back:
            await self._flush()
        return await self._link.claim(statement)

    async def find_all(self, kind: type[E], **equal: Any) -> list[E]:
        """The live entities of this tenant whose columns equal ``equal``, oldest first."""
        query = find_all_statement(kind, tuple(equal))
        parameters = {"tenant": self.tenant} | {f"eq_{k}": v for k, v in equal.items()}
        found = [as_entity(kind, row) for row in await self._rows(query, parameters)]
        for entity in found:  # live in this tenant: a reference to one needs no second look
            self._live.add(entity.id)
            if entity.id not in self._held:
                self._read.setdefault(entity.id, entity)
        return found

    async def _check_references(self, kind: type[Entity], values: dict[str, Any]) -> None:
        for column, target in references(kind).items():
            ref = values.get(column)
            if ref is None or (ref in self._live and type_of(ref) == target.type_name):
                continue
            if not await self._rows(statements(target).exists, {"id": ref, "tenant": self.tenant}):
                field = api_name(kind, column)
                raise NotFound(f"No {target.type_name} with id {ref!r} for {field}", field=field, id=ref)
            self._live.add(ref)

    async def _check_unique(self, kind: type[Entity], values: dict[str, Any], own_id: str) -> None:
        for name, statement in unique_checks(kind):
            value = values.get(name)
            if value is None:
                continue
            if await self._rows(statement, {"tenant": self.tenant, "value": value, "own_id": own_id}):
                field = api_name(kind, name)
                raise BadInput(f"Another {kind.type_name.lower()} already has {field} {value!r}", field=field)

    # --- the verbs ------------------------------------------------------------------------------

    async def create(self, kind: type[E], values: dict[str, Any], *, args: dict[str, Any] | None = None) -> E:
        """Create an entity (verb ``create``) with its ``Created`` event."""
        values = clean(kind, values, creating=True)
        now = utcnow()
        entity = as_entity(kind, defaults(kind) | {
            "id": new_id(kind.prefix), "tenant": self.tenant, "created_by": self.actor, "version": 1,
            "created_at": now, "updated_at": now, "deleted_at": None,
        })  # fmt: skip
        change = Change(self, entity, "create", event_type(kind.type_name, "create"), values, args or {})
        await self.hooks.run_before(change)
        values = clean(kind, change.values, creating=True)
        await self._check_references(kind, values)
        await self._check_unique(kind, values, entity.id)
        entity.__dict__.update(values)
        self._hold("insert", kind, {name: getattr(entity, name) for name in columns(kind)})
        self._held[entity.id] = entity
        self._live.add(entity.id)
        data = snapshot(entity) | {k: jsonable(v) for k, v in change.args.items() if v is not None}
        change.event = await self._append(entity, change.event_type, data)
        await self._after(change)
        return entity

    async def add(self, kind: type[E], values: dict[str, Any], *, id_: str, at: datetime) -> E:
        """Write a new entity that another entity's verb records in its own event (a ticket's
        comment, in ``Ticket.Commented``): checked as a create is, without an event or hooks."""
        values = clean(kind, values, creating=True)
        await self._check_references(kind, values)
        entity = as_entity(kind, defaults(kind) | values | {
            "id": id_, "tenant": self.tenant, "created_by": self.actor, "version": 1,
            "created_at": at, "updated_at": at, "deleted_at": None,
        })  # fmt: skip
        self._hold("insert", kind, {name: getattr(entity, name) for name in columns(kind)})
        self._live.add(entity.id)
        return entity

    async def transition(
        self,
        kind: type[E],
        id_: str,
        verb: str,
        *,
        values: dict[str, Any] | None = None,
        args: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> E:
        """Apply ``verb`` (update, delete or a lifecycle verb) to an entity, with its event."""
        entity = await self.load(kind, id_)
        if expected_version is not None and entity.version != expected_version:
            raise VersionConflict(id_, expected_version, entity.version)
        lifecycle = LIFECYCLES[kind.type_name]
        field = lifecycle.state_field
        state = getattr(entity, field) if field else None
        if lifecycle.sealed(entity):
            sealed = f"it was {lifecycle.sealed_as} {getattr(entity, str(lifecycle.sealed_by))}"
            raise InvalidTransition(kind.type_name, state, verb, [], message=f"Cannot {verb} {id_}: {sealed}")
        if not lifecycle.permits(verb, state):
            raise InvalidTransition(kind.type_name, state, verb, lifecycle.allowed(state))
        values = clean(kind, values or {}, creating=False)
        if field and verb == "update" and field in values:
            if not lifecycle.may_move(state, values[field]):
                raise InvalidTransition(
                    kind.type_name, state, verb, lifecycle.allowed(state),
                    to=values[field], reachable=sorted(lifecycle.moves.get(state or "", ())),
                )  # fmt: skip
        elif field and (target := lifecycle.target(verb, state)) is not None:
            values[field] = target
        change = Change(self, entity, verb, event_type(kind.type_name, verb), values, args or {}, snapshot(entity))
        await self.hooks.run_before(change)
        values = clean(kind, change.values, creating=False)
        await self._check_references(kind, values)
        await self._check_unique(kind, values, entity.id)
        data: dict[str, Any] = {}
        changed: dict[str, Any] = {}
        for name, value in values.items():
            if getattr(entity, name) != value:
                data[api_name(kind, name)] = {"before": jsonable(getattr(entity, name)), "after": jsonable(value)}
                setattr(entity, name, value)
                changed[name] = value
        now = utcnow()
        if verb == "delete":
            data["deletedAt"] = {"before": None, "after": jsonable(now)}
            entity.deleted_at = changed["deleted_at"] = now
            self._live.discard(entity.id)
        entity.version += 1
        entity.updated_at = now
        self._hold("update", kind, changed | {"version": entity.version, "updated_at": now, "row_id": entity.id})
        data |= {k: jsonable(v) for k, v in change.args.items() if v is not None}
        change.event = await self._append(entity, change.event_type, data)
        await self._after(change)
        return entity

    def _hold(self, op: str, kind: type[TableClass], row: dict[str, Any]) -> None:
        """Write a verb's row (``insert``, or ``update`` of the columns given ``WHERE id =
        :row_id``) with the unit's next statement: before any other statement runs, so the unit's
        later reads (hooks) see it (``_flush``), or in the closing one. Entities are never in
        the ORM session: a unit knows exactly what each verb changed, and a plain statement
        costs a fraction of a flush. A row written again before it is sent is sent once, with
        its last values; a constraint it breaks aborts the unit as ``BadInput``."""
        id_ = row["id"] if op == "insert" else row["row_id"]
        pending = self._held_rows.get(id_)
        if pending is not None:
            pending.update({k: v for k, v in row.items() if k != "row_id"} if "id" in pending else row)
            return
        last = self._held_back[-1] if self._held_back else None
        if op == "insert" and last is not None and last[0] == "insert" and last[1] is kind:
            last[2].append(row)  # one INSERT of several rows
        else:
            self._held_back.append((op, kind, [row]))
        self._held_rows[id_] = row

    async def _flush(self) -> None:
        """Send the rows held back (``_hold``)."""
        held, self._held_back, self._held_rows = self._held_back, [], {}
        try:
            for op, kind, rows in held:
                await self._link.write(statements(kind).insert if op == "insert" else statements(kind).update, rows)
        except IntegrityError as error:
            raise BadInput(CONFLICT) from error

    async def _rows(self, statement: Any, parameters: dict[str, Any], *, writes: bool = False) -> list[dict[str, Any]]:
        """Run a statement in this unit's transaction, once the rows held back are sent;
        ``writes``: it writes or locks (a read before the unit's first write runs outside it)."""
        if self._held_back:
            await self._flush()
        return await self._link.rows(statement, parameters, writes=writes)

    # --- the event log --------------------------------------------------------------------------

    async def _append(self, entity: Entity, type_: str, data: dict[str, Any]) -> Event:
        """Record an event; it is numbered and written at commit (see ``_commit``)."""
        event = as_entity(Event, {
            "id": new_id("evt"), "tenant": self.tenant, "seq": None, "type": type_,
            "entity_type": type(entity).type_name, "target": entity.id, "actor": self.actor,
            "timestamp": entity.updated_at, "version": entity.version, "data": data,
            "cause_id": self._causes[-1] if self._causes else None,
        })  # fmt: skip
        self.events.append(event)
        return event

    async def _reserve_seq(self, count: int) -> int:
        """Advance the tenant's counter by ``count``; the new last sequence number."""
        statement = reserve_statement(self.db.dialect)
        (row,) = await self._rows(statement, {"tenant": self.tenant, "count": count}, writes=True)
        last: int = row["last_seq"]
        return last

    async def _after(self, change: Change) -> None:
        assert change.event is not None
        self._causes.append(change.event.id)
        try:
            await self.hooks.run_after(change)
        finally:
            self._causes.pop()
