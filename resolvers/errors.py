"""Domain errors. Each carries the ``extensions.code`` the API promises (API.md, "Transport").

Also the one classification of outages every layer shares: ``is_unavailable(exc)`` tells an
error that means "the database (or broker) cannot be reached or refuses writes" — answered
``UNAVAILABLE``, HTTP 503 with ``Retry-After`` — from a bug, which stays ``INTERNAL``.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exc as sa_exc

#: the ``Retry-After`` (seconds) of an ``UNAVAILABLE`` answer
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = (
    "The database cannot be reached or refuses writes right now; nothing was written. "
    f"Retry in {RETRY_AFTER_SECONDS} s."
)


class DomainError(Exception):
    """An error the caller can act on: its message and extensions reach the client as they are."""

    code = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadInput(DomainError):
    code = "BAD_USER_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class VersionConflict(DomainError):
    code = "VERSION_CONFLICT"

    def __init__(self, target: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{target} is at version {actual}, not {expected}: reload it and try again",
            expected=expected,
            actual=actual,
        )


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"

    def __init__(
        self, entity: str, state: str | None, verb: str, allowed: list[str], *, message: str | None = None,
        **extensions: Any,
    ) -> None:  # fmt: skip
        noun = entity.lower()
        described = str(state).lower().replace("_", " ")
        article = "an" if described[0] in "aeiou" else "a"
        if message is None and "to" in extensions:
            message = f"Cannot move {article} {described} {noun} to {extensions['to']}"
        elif message is None:
            message = f"Cannot {verb} {article} {described} {noun}"
        hint = f"; allowed: {', '.join(v.upper() for v in allowed)}" if allowed else ""
        super().__init__(
            message + hint,
            **{"from": state, "verb": verb.upper(), "allowed": [v.upper() for v in allowed]},
            **extensions,
        )


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class RateLimited(DomainError):
    code = "RATE_LIMITED"


class QueryTooComplex(DomainError):
    code = "QUERY_TOO_COMPLEX"


class HookFailed(DomainError):
    """A hook failed for a reason of its own (a bug, an outage): the verb wrote nothing."""

    code = "INTERNAL"


class Unavailable(DomainError):
    """The database or broker cannot be reached or refuses writes: nothing was written."""

    code = "UNAVAILABLE"

    def __init__(self, message: str = UNAVAILABLE_MESSAGE, **extensions: Any) -> None:
        super().__init__(message, retryAfter=RETRY_AFTER_SECONDS, **extensions)


# --- what an outage looks like ----------------------------------------------------------------------

#: SQLite primary result codes of a database that cannot be opened, read or written right now
_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_FULL,  # database or disk is full (also a reached max_page_count)
    sqlite3.SQLITE_IOERR,  # disk I/O error
    sqlite3.SQLITE_CANTOPEN,  # unable to open database file
    sqlite3.SQLITE_READONLY,  # attempt to write a readonly database
    sqlite3.SQLITE_BUSY,  # another process held the write lock past busy_timeout
}
_SQLITE_REFUSES_WRITES = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY}
_SQLITE_MESSAGES = ("database or disk is full", "disk i/o error", "unable to open database", "readonly database")
#: PostgreSQL SQLSTATEs of a server that cannot be reached or refuses writes (class 08 too)
_PG_UNAVAILABLE = {
    "53100",  # disk_full
    "53300",  # too_many_connections
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, shutting down, in recovery)
    "25006",  # read_only_sql_transaction (a standby, or default_transaction_read_only)
}
_PG_REFUSES_WRITES = {"53100", "25006"}
_OS_UNAVAILABLE = {
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ECONNREFUSED, errno.ECONNRESET,
    errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH,
    errno.ENETDOWN, errno.EADDRNOTAVAIL,
}  # fmt: skip
_OS_REFUSES_WRITES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """``error``, what caused it and what it happened while handling, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending and len(seen) < 32:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__context__, current.__cause__, getattr(current, "original_error", None)]
        if isinstance(current, sa_exc.DBAPIError):
            pending.append(current.orig)


def _sqlite_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF  # extended codes carry the primary one in the low byte


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


#: the modules that talk to the database or the broker
_DRIVERS = ("asyncpg", "sqlalchemy", "aiosqlite", "sqlite3", "redis", "models.db", "graph.server.brokers")


def _from_a_driver(error: BaseException) -> bool:
    """Whether a plain ``OSError`` came up through the database's or the broker's client: a
    plugin whose own upstream refuses it is a hook failure (``INTERNAL``), not our outage."""
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__", "").startswith(_DRIVERS):
            return True
        frame = frame.tb_next
    return False


def _one_unavailable(error: BaseException) -> bool:
    if isinstance(error, DomainError):
        return isinstance(error, Unavailable)
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        # SQLite reports a syntax error or a missing table as OperationalError too: its own
        # result code decides (below); any other driver's OperationalError is about the connection
        return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)) and not isinstance(
            error.orig, sqlite3.Error
        )
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, sqlite3.Error):
        code = _sqlite_code(error)
        if code is not None:
            return code in _SQLITE_UNAVAILABLE
        return any(text in str(error).lower() for text in _SQLITE_MESSAGES)
    state = _sqlstate(error)
    if state is not None:
        return state.startswith("08") or state in _PG_UNAVAILABLE
    if isinstance(error, (TimeoutError, ConnectionError, socket.gaierror)):
        return _from_a_driver(error)
    if isinstance(error, OSError):
        return error.errno in _OS_UNAVAILABLE and _from_a_driver(error)
    kind = type(error)
    if kind.__module__.startswith("asyncpg") and kind.__name__ in ("InterfaceError", "ConnectionDoesNotExistError"):
        # "connection is closed", "connection was closed in the middle of operation"; not
        # "another operation is in progress", which is a bug of ours
        return "closed" in str(error) or "connection" in str(error).lower()
    if kind.__module__.startswith("redis"):  # the broker
        return any(k.__name__ in ("ConnectionError", "TimeoutError") for k in kind.__mro__)
    return False


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` (or anything in its chain of causes) means the database or broker
    cannot be reached or refuses writes: an outage, answered ``UNAVAILABLE``, not a bug."""
    return any(_one_unavailable(e) for e in _chain(error))


def refuses_writes(error: BaseException | None) -> bool:
    """Whether ``error`` says the database is reachable but cannot write: a full disk, a read-only
    file or server, an I/O error. Readiness remembers these (see ``resolvers.outages``)."""
    for e in _chain(error):
        if isinstance(e, sqlite3.Error):
            code = _sqlite_code(e)
            if code in _SQLITE_REFUSES_WRITES or (code is None and "full" in str(e).lower()):
                return True
        elif (state := _sqlstate(e)) is not None:
            if state in _PG_REFUSES_WRITES:
                return True
        elif isinstance(e, OSError) and e.errno in _OS_REFUSES_WRITES:
            return True
    return False
