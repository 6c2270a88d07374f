"""Request bodies over a size limit answered 413 before they are read (ASGI middleware).

Without it a 100 MB JSON body was read and parsed whole (+286 MB peak), and a long-polling
POST over Engine.IO's `maxPayload` was never answered. A declared `Content-Length` over the
limit is refused from the headers alone; a chunked body is read up to the limit and refused
as soon as it passes it. The answer is the project's error JSON (`PAYLOAD_TOO_LARGE`) with
`Connection: close`, so the rest of the body is never read. A body within the limit with a
`Content-Length` goes to the app untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tuiz.errors import ErrorCode, TuizError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PathLimit:
    """A different limit under a path prefix, and what else to do when it refuses a body."""

    prefix: str
    limit: int
    on_refused: Callable[[Scope], Awaitable[None]] | None = None


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse HTTP request bodies over `limit` bytes (or a `PathLimit`'s) with 413."""

    def __init__(self, app: App, *, limit: int, paths: Sequence[PathLimit] = ()) -> None:
        self.app = app
        self.limit = limit
        self.paths = tuple(paths)
        self.refused = 0  # metrics: bodies refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, on_refused = self.limit, None
        path: str = scope["path"]
        if not path.endswith("/"):
            path += "/"  # `/socket.io` is served as `/socket.io/` is
        for rule in self.paths:
            if path.startswith(rule.prefix):
                limit, on_refused = rule.limit, rule.on_refused
                break
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if length is not None and not chunked:
            if length > limit:
                await self._refuse(scope, send, limit, on_refused)
                return
            await self.app(scope, receive, send)
            return
        if not chunked:
            await self.app(scope, receive, send)  # no body (a GET), or the server's 400
            return
        try:
            body = await _read_body(receive, limit)
        except BodyTooLarge:
            await self._refuse(scope, send, limit, on_refused)
            return
        if body is not None:  # else the client left before the end of its body
            await self.app(scope, _replay(body, receive), send)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        limit: int,
        on_refused: Callable[[Scope], Awaitable[None]] | None,
    ) -> None:
        self.refused += 1
        if on_refused is not None:
            await on_refused(scope)
        error = TuizError(ErrorCode.PAYLOAD_TOO_LARGE, f"request body is over {limit} bytes")
        content = orjson.dumps(error.to_payload())
        await send(
            {
                "type": "http.response.start",
                "status": error.http_status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body (None if the client left first), or BodyTooLarge as soon as more than
    `limit` bytes have come."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then whatever the server says next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
