"""Typed errors with stable codes, mapped once to Socket.IO `ws:error` and once to HTTP."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import asyncpg


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHORIZED = "UNAUTHORIZED"
    CONFLICT = "CONFLICT"
    GAME_LOCKED = "GAME_LOCKED"
    GAME_FULL = "GAME_FULL"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_CONNECTED = "NOT_CONNECTED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNKNOWN_EVENT = "UNKNOWN_EVENT"
    TOO_LATE = "TOO_LATE"
    WRONG_PHASE = "WRONG_PHASE"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.CONFLICT: 409,
    ErrorCode.GAME_LOCKED: 423,
    ErrorCode.GAME_FULL: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NOT_CONNECTED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNKNOWN_EVENT: 400,
    ErrorCode.TOO_LATE: 409,
    ErrorCode.WRONG_PHASE: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}


class TuizError(Exception):
    """An error a client caused or may see; `code` is part of the public protocol."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_payload(self) -> dict[str, Any]:
        """The body sent as `ws:error` and as the HTTP error JSON."""
        body: dict[str, Any] = {"error": self.code.value, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


# SQLSTATE classes that say "the database cannot serve you now", not "your request is wrong":
# 08 connection exception, 53 insufficient resources (too many connections, disk full),
# 57 operator intervention (shutting down, starting up, crash, statement cancelled).
_OUTAGE_CLASSES = ("08", "53", "57")


def is_database_outage(exc: BaseException) -> bool:
    """True when `exc` means PostgreSQL is unreachable or going away, not that a query is bad.

    Connecting to a stopped server raises OSError (refused, or the Unix socket is gone); a
    bounded acquire or query raises TimeoutError; a connection lost mid-query raises
    ConnectionDoesNotExistError, or InterfaceError when the pool has already reclaimed it.
    """
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "").startswith(_OUTAGE_CLASSES)
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        return any(word in text for word in ("closed", "closing", "released"))
    return False


def client_error(exc: BaseException) -> TuizError | None:
    """What a client may be told about `exc`: itself when it is a TuizError, UNAVAILABLE when
    the database is away, 401/409 for a row it named that does not exist (`missing_row`),
    None for anything else (a bug: log it, answer INTERNAL_ERROR).

    The one mapping shared by HTTP (`api.errors`) and Socket.IO (`Realtime.on`)."""
    if isinstance(exc, TuizError):
        return exc
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return missing_row(exc.constraint_name)
    if is_database_outage(exc):
        error = TuizError(
            ErrorCode.UNAVAILABLE, "the database is unavailable just now; try again shortly"
        )
        error.__cause__ = exc
        return error
    return None


def missing_row(constraint: str | None) -> TuizError:
    """A foreign-key violation as the client's error: a valid token whose user is not in
    auth.users (deleted, or another project's) may own nothing (401); any other dangling
    reference is a conflict. Never a 500."""
    if "user_id" in (constraint or ""):
        return TuizError(ErrorCode.UNAUTHORIZED, "the account of this access token does not exist")
    return TuizError(ErrorCode.CONFLICT, "this refers to something that no longer exists")
