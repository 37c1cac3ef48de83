"""Domain errors. Each carries the ``extensions.code`` the API promises (API.md, "Transport")."""

from __future__ import annotations

from typing import Any


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

    def __init__(self, entity: str, state: str | None, verb: str, allowed: list[str], **extensions: Any) -> None:
        noun = entity.lower()
        described = str(state).lower().replace("_", " ")
        article = "an" if described[0] in "aeiou" else "a"
        if "to" in extensions:
            message = f"Cannot move {article} {described} {noun} to {extensions['to']}"
        else:
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
