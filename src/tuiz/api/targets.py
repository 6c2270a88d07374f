"""Request targets no route can mean: NUL and other control characters, or bytes that are not
UTF-8, in the path or the query string. Refused with 422 VALIDATION_ERROR before any route runs.

One check for every route instead of one per parameter: PostgreSQL text cannot hold NUL, so
such a value used to reach the database and come back as a 500 (`/device-sessions/%00`,
`/websocket-connections?device_id=%00`, `/games/by-code/%00`).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tuiz.errors import ErrorCode, TuizError

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def _problem(encoded: bytes, where: str, *, plus_is_space: bool = False) -> str | None:
    if plus_is_space:
        encoded = encoded.replace(b"+", b" ")
    decoded = unquote_to_bytes(encoded)
    if _CONTROL.search(decoded):
        return f"the {where} contains a control character (NUL, line break, ...)"
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return f"the {where} is not valid UTF-8"
    return None


def target_problem(scope: Scope) -> str | None:
    """Why this request's path or query string cannot be served, or None."""
    raw_path = scope.get("raw_path")
    path = raw_path if isinstance(raw_path, bytes) else scope["path"].encode("utf-8", "replace")
    return _problem(path, "path") or _problem(
        scope.get("query_string", b""), "query string", plus_is_space=True
    )


class RefuseInvalidTargets:
    """ASGI middleware: 422 for a path or query string that `target_problem` refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = target_problem(scope)
            if problem is not None:
                error = TuizError(ErrorCode.VALIDATION_ERROR, problem)
                response = JSONResponse(error.to_payload(), status_code=error.http_status)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
