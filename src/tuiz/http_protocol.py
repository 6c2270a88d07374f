"""uvicorn's httptools HTTP protocol with deadlines for reading a request (slowloris).

uvicorn closes a connection idle between requests (`timeout_keep_alive`), but not one that
never finishes sending a request: a connection that sends nothing, or half its headers, or a
body a byte at a time, was held for good, and with a 1,024-descriptor limit 1,010 of them
locked every new client out. Here each request must have its headers within
`header_timeout` of its first byte (or of the connection's opening) and its body within
`body_timeout` of its headers, or the connection is closed. The deadlines cover reading the
request only: a long-poll waiting for its answer, a response being written and a WebSocket
after its upgrade have none.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState


class ReadTimeoutHttpProtocol(HttpToolsProtocol):
    """Bound to its deadlines by `read_timeout_protocol()`."""

    header_timeout: ClassVar[float]
    body_timeout: ClassVar[float]
    timeouts: ClassVar[int] = 0  # connections closed for a late request (a metric)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._read_deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            type(self).timeouts += 1
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_deadline is None:  # a new request on a kept-alive connection
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()


def read_timeout_protocol(
    *, header_timeout: float, body_timeout: float
) -> type[ReadTimeoutHttpProtocol]:
    """The uvicorn `http` protocol class with these deadlines (seconds)."""

    class TuizHttpProtocol(ReadTimeoutHttpProtocol):
        pass

    TuizHttpProtocol.header_timeout = header_timeout
    TuizHttpProtocol.body_timeout = body_timeout
    return TuizHttpProtocol
