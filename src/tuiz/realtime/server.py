"""The Socket.IO endpoint: registration (`ws:connect`), heartbeats, rooms, limits and errors.

State per socket lives in one small `Client` object; everything durable goes through the
connection store and the game event log. Every event sent to a game room carries its `seq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
import socketio

from tuiz.auth import Caller, InvalidCredential, authenticate, bearer
from tuiz.authlimit import AuthFailures, AuthGate
from tuiz.config import Settings
from tuiz.errors import ErrorCode, TuizError, client_error
from tuiz.logs import get_logger, log_failure, log_outage
from tuiz.metrics import Metrics
from tuiz.netaddr import client_address
from tuiz.realtime.protocol import RoomJoin, RoomLeave, RoomMessage, WsConnect, parse
from tuiz.realtime.ratelimit import TokenBucket
from tuiz.store.connections import (
    ConnectionStatus,
    ConnectionStore,
    NewConnection,
    Participation,
)
from tuiz.store.events import NewEvent, StoredEvent
from tuiz.store.rooms import RoomAccess, RoomDirectory

log = get_logger(__name__)

MAX_METADATA_BYTES = 4096
MAX_EARLY_JOINS = 4


class EventSink(Protocol):
    def submit(self, event: NewEvent) -> asyncio.Future[StoredEvent]: ...


@dataclass(slots=True, eq=False)
class Client:
    """One Socket.IO connection on this process."""

    sid: str
    caller: Caller
    ip: str | None
    user_agent: str | None
    bucket: TokenBucket
    last_seen: float
    device_id: str | None = None
    reconnect_count: int = 0
    rooms: dict[str, RoomAccess] = field(default_factory=dict)
    seats: dict[str, str | None] = field(default_factory=dict)  # game id -> player id; None: host
    timed_out: bool = False
    early_joins: list[Any] = field(default_factory=list)  # room:join sent before ws:connect


def _server_time() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def client_ip(environ: dict[str, Any], settings: Settings) -> str | None:
    """The peer address, or the X-Forwarded-For client when the peer is a trusted proxy."""
    peer = environ.get("REMOTE_ADDR")
    if isinstance(environ.get("asgi.scope"), dict):
        client = environ["asgi.scope"].get("client")
        peer = client[0] if client else peer
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    return client_address(
        str(peer) if peer else None,
        str(forwarded) if forwarded else None,
        settings.trusted_proxy_networks,
    )


def _json_size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:
        raise TuizError(ErrorCode.VALIDATION_ERROR, "value is not JSON") from None


Handler = Callable[[Client, Any], Awaitable[Any]]

PRESENCE_EVENTS = frozenset({"room:user-joined", "room:user-left"})
"""Who came and went is told to the room's host and spectators, not to every player: a room
of N players then costs N announcements instead of N² (the host's list is what shows it)."""


def watchers_room(room_id: str) -> str:
    """The Socket.IO room of a game room's members that are not players."""
    return f"{room_id}#watchers"


class Realtime:
    """Registers the protocol's handlers on a python-socketio server and runs its timers."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        *,
        settings: Settings,
        store: ConnectionStore,
        rooms: RoomDirectory,
        events: EventSink | None,
        metrics: Metrics,
        auth_failures: AuthGate | None = None,
    ) -> None:
        self.sio = sio
        self.settings = settings
        self.auth_failures = auth_failures or AuthGate(
            AuthFailures(settings.auth_fail_limit, settings.auth_fail_window_ms / 1000)
        )
        self.store = store
        self.rooms = rooms
        self.events = events if settings.log_events else None
        self.metrics = metrics
        self.clients: dict[str, Client] = {}
        self._heartbeats: set[str] = set()
        self.disconnect_hooks: list[Callable[[Client], Awaitable[None]]] = []
        # After a room:join (the live layer binds TUIZ-client sockets to their seats here).
        self.room_join_hooks: list[Callable[[Client, str], Awaitable[None]]] = []
        # Members of a room on every process (cluster presence); this process's alone if None.
        self.room_size: Callable[[str, str], Awaitable[int]] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._draining = False
        self._register()

    # -- wiring --------------------------------------------------------------------------

    def _register(self) -> None:
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_unknown)
        self.on("ws:connect", self._ws_connect, registered=False)
        self.on("ws:heartbeat", self._ws_heartbeat)
        self.on("room:join", self._room_join, registered=False)
        self.on("room:leave", self._room_leave)
        self.on("room:message", self._room_message)
        # The TUIZ client announces itself before registering; the reference ignores it.
        self.on("client:hello", self._ignore, registered=False)

    def on(
        self,
        event: str,
        handler: Handler,
        *,
        registered: bool = True,
        error_event: str = "ws:error",
    ) -> None:
        """Add a client event handler behind the shared guard: rate limit, registration, errors.

        What the handler returns is the Socket.IO acknowledgement (when the client asked for
        one). A refusal is sent as `error_event {error, message}` and also returned as
        `{ok: false, error, message}` for clients that use acknowledgements.
        """

        async def guarded(sid: str, *args: Any) -> Any:
            client = self.clients.get(sid)
            if client is None or not await self._admit(client):
                return {"ok": False, "error": ErrorCode.RATE_LIMITED.value, "message": "refused"}
            try:
                if registered and client.device_id is None:
                    raise TuizError(
                        ErrorCode.NOT_CONNECTED, "send ws:connect with a deviceId first"
                    )
                return await handler(client, args[0] if args else None)
            except Exception as exc:
                error = self._refusal(exc, socket_event=event, sid=sid)
            await self.send_error(sid, error, event=error_event, cause=event)
            return {"ok": False, **error.to_payload()}

        self.sio.on(event, guarded)

    @staticmethod
    def _refusal(exc: Exception, **context: Any) -> TuizError:
        """The client's error for a failed handler: its own, UNAVAILABLE while the database is
        away (a warning, not a traceback per event), else INTERNAL_ERROR (logged in full)."""
        error = client_error(exc)
        if error is None:
            log.error("handler_failed", exc_info=exc, **context)
            return TuizError(ErrorCode.INTERNAL_ERROR, "the server failed to handle this")
        if error is not exc and error.code is ErrorCode.UNAVAILABLE:
            log_outage(log, "database_unavailable", exc, **context)
        return error

    async def _admit(self, client: Client) -> bool:
        """Count the event against the rate limit; refuse floods, disconnect sustained ones."""
        now = time.monotonic()
        client.last_seen = now
        if client.bucket.take(now):
            return True
        if client.bucket.strikes >= self.settings.rate_limit_disconnect_after:
            log.warning("rate_limit_disconnect", sid=client.sid, device_id=client.device_id)
            await self.send_error(
                client.sid, TuizError(ErrorCode.RATE_LIMITED, "too many events; disconnecting")
            )
            await self.sio.disconnect(client.sid)
        elif client.bucket.strikes <= 1:
            await self.send_error(
                client.sid, TuizError(ErrorCode.RATE_LIMITED, "too many events; slow down")
            )
        return False

    async def send_error(
        self, sid: str, error: TuizError, *, event: str = "ws:error", cause: str | None = None
    ) -> None:
        self.metrics.errors.labels(error.code.value).inc()
        body = error.to_payload()
        if cause is not None and event != "ws:error":
            body["event"] = cause
        await self.sio.emit(event, body, to=sid)

    # -- connection lifecycle ------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if self._draining:
            raise socketio.exceptions.ConnectionRefusedError(
                {"error": ErrorCode.UNAVAILABLE.value, "message": "server is shutting down"}
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        token = token or bearer(environ.get("HTTP_AUTHORIZATION"))
        ip = client_ip(environ, self.settings)
        try:
            if token:
                await self.auth_failures.check(ip)  # guesses are counted per address, as in REST
            caller = authenticate(
                token if isinstance(token, str) else None,
                jwt_secret=self.settings.jwt_secret,
                service_key=self.settings.service_key,
            )
        except TuizError as exc:
            if isinstance(exc, InvalidCredential) and exc.guess:
                await self.auth_failures.failed(ip)
            # Socket.IO clients get `message` and `data` ({error, message}) on connect_error.
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, exc.to_payload()
            ) from None
        user_agent = environ.get("HTTP_USER_AGENT")
        self.clients[sid] = Client(
            sid=sid,
            caller=caller,
            ip=ip,
            user_agent=str(user_agent)[:1024] if user_agent else None,
            bucket=TokenBucket(self.settings.rate_limit_per_sec, self.settings.rate_limit_burst),
            last_seen=time.monotonic(),
        )
        self.metrics.connections.inc()
        self.metrics.connects.inc()

    def _wake_long_poll(self, sid: str) -> None:
        """python-engineio leaves a closed polling socket's pending GET hanging until its ping
        timeout (~45 s); wake it so the request ends now, as the Node server does."""
        with contextlib.suppress(Exception):
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
            if socket is not None and not socket.upgraded:
                socket.queue.put_nowait(None)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._wake_long_poll(sid)
        client = self.clients.pop(sid, None)
        if client is None:
            return
        self.metrics.connections.dec()
        self._heartbeats.discard(sid)
        if client.device_id is None:
            return
        for hook in self.disconnect_hooks:
            try:
                await hook(client)
            except Exception as exc:
                log_failure(log, "disconnect_hook_failed", exc, sid=sid)
        status = ConnectionStatus.TIMEOUT if client.timed_out else ConnectionStatus.DISCONNECTED
        try:
            await self.store.close(sid, status)
            for room_id, access in client.rooms.items():
                await self._announce(
                    client,
                    access,
                    "room:user-left",
                    "disconnect",
                    {"roomId": room_id, "socketId": sid, "reason": status.value},
                    skip_sid=sid,
                )
        except Exception as exc:
            log_failure(log, "disconnect_bookkeeping_failed", exc, sid=sid)

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> None:
        client = self.clients.get(sid)
        if client is None or not await self._admit(client):
            return
        await self.send_error(
            sid, TuizError(ErrorCode.UNKNOWN_EVENT, f"unknown event {event[:100]!r}")
        )

    # -- client events -------------------------------------------------------------------

    async def _ws_connect(self, client: Client, data: Any) -> None:
        payload = parse(WsConnect, data)
        if client.device_id is not None:
            if payload.device_id != client.device_id:
                raise TuizError(
                    ErrorCode.CONFLICT, "this socket is already registered with another deviceId"
                )
        else:
            if _json_size(payload.metadata) > MAX_METADATA_BYTES:
                raise TuizError(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"metadata is over {MAX_METADATA_BYTES} bytes"
                )
            opened = await self.store.open(
                NewConnection(
                    socket_id=client.sid,
                    device_id=payload.device_id,
                    user_id=client.caller.user_id,
                    ip_address=client.ip,
                    user_agent=client.user_agent,
                    metadata=payload.metadata,
                )
            )
            client.device_id = payload.device_id
            client.reconnect_count = opened.reconnect_count
        await self.sio.emit(
            "ws:connected",
            {
                "socketId": client.sid,
                "deviceId": client.device_id,
                "reconnectCount": client.reconnect_count,
                "serverTime": _server_time(),
                "authenticated": client.caller.user_id is not None,
            },
            to=client.sid,
        )
        early, client.early_joins = client.early_joins, []
        for data in early:  # the TUIZ client's hooks may join before registering
            try:
                await self._room_join(client, data)
            except Exception as exc:
                error = self._refusal(exc, socket_event="room:join", sid=client.sid)
                await self.send_error(client.sid, error)

    async def _ignore(self, client: Client, data: Any) -> None:
        return None

    async def _ws_heartbeat(self, client: Client, data: Any) -> None:
        self._heartbeats.add(client.sid)
        await self.sio.emit("ws:pong", {"serverTime": _server_time()}, to=client.sid)

    async def _room_join(self, client: Client, data: Any) -> None:
        payload = parse(RoomJoin, data)
        if client.device_id is None:
            # Accepted once ws:connect registers the socket (a few at most).
            if len(client.early_joins) >= MAX_EARLY_JOINS:
                raise TuizError(ErrorCode.NOT_CONNECTED, "send ws:connect with a deviceId first")
            client.early_joins.append(data)
            return
        access = client.rooms.get(payload.room_id)
        if access is None:  # else the TUIZ client re-joins on a re-render: nothing changes
            access, recorded = await self.rooms.enter(
                payload.room_id, client.device_id, client.sid, client.caller.user_id
            )
            await self.join_room(client, payload.room_id, access, joined=False, recorded=recorded)
        for hook in self.room_join_hooks:
            await hook(client, payload.room_id)
        # Only once the hooks have bound the socket to its seat: whatever is sent to the seat
        # after `room:joined` (a kick, a question) reaches this socket.
        await self._send_joined(client, payload.room_id, access)

    async def join_room(
        self,
        client: Client,
        room_id: str,
        access: RoomAccess,
        *,
        joined: bool = True,
        recorded: bool = False,
    ) -> None:
        """Put a registered socket in a game's room: participant row (unless the caller has
        `recorded` it), room, announcement; `room:joined` to it unless the caller sends that
        itself (`joined=False`)."""
        assert client.device_id is not None
        if access.player_id is not None and not recorded:
            await self.store.join(
                Participation(
                    game_id=access.game_id,
                    socket_id=client.sid,
                    device_id=client.device_id,
                    player_id=access.player_id,
                    role=access.role,
                    user_id=client.caller.user_id,
                )
            )
        await self.sio.enter_room(client.sid, room_id)
        if access.role != "player":
            await self.sio.enter_room(client.sid, watchers_room(room_id))
        client.rooms[room_id] = access
        if joined:
            await self._send_joined(client, room_id, access)
        # Logged in order now, told to the room once committed, without holding the join's
        # acknowledgement for that commit (the joiner's own rows are already durable).
        body = {"roomId": room_id, "socketId": client.sid, "role": access.role}
        logged = self._log(client, access, "room:user-joined", "join", body)
        self._in_background(client, self._send_logged(logged, "room:user-joined", body, client.sid))

    async def _send_joined(self, client: Client, room_id: str, access: RoomAccess) -> None:
        if self.room_size is not None:
            clients = await self.room_size(room_id, client.sid)
        else:
            clients = len(self.sio.manager.rooms.get("/", {}).get(room_id, {}))
        await self.sio.emit(
            "room:joined",
            {"roomId": room_id, "clients": clients, "role": access.role},
            to=client.sid,
        )

    async def _room_leave(self, client: Client, data: Any) -> None:
        payload = parse(RoomLeave, data)
        access = client.rooms.pop(payload.room_id, None)
        if access is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"not in room {payload.room_id}")
        await self.sio.leave_room(client.sid, payload.room_id)
        await self.sio.leave_room(client.sid, watchers_room(payload.room_id))
        await self.store.leave(client.sid, access.game_id)
        await self.sio.emit("room:left", {"roomId": payload.room_id}, to=client.sid)
        await self._announce(
            client,
            access,
            "room:user-left",
            "leave",
            {"roomId": payload.room_id, "socketId": client.sid},
            skip_sid=client.sid,
        )

    async def _room_message(self, client: Client, data: Any) -> None:
        payload = parse(RoomMessage, data)
        access = client.rooms.get(payload.room_id)
        if access is None:
            raise TuizError(ErrorCode.FORBIDDEN, f"join room {payload.room_id} before messaging it")
        if (
            self.settings.store != "memory"
            and access.role == "spectator"
            and str(access.game_id) not in client.seats
        ):
            # A game's room is its players' and host's, not any socket that knows its id.
            raise TuizError(
                ErrorCode.FORBIDDEN, "only the game's seated players and host may message it"
            )
        if _json_size(payload.message) > self.settings.max_message_bytes:
            raise TuizError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"message is over {self.settings.max_message_bytes} bytes",
            )
        # Pipelined: the socket's next event is handled while this one commits; messages still
        # reach the room in the order they were sent (the log keeps a game's order, and
        # commits resolve in that order).
        self._in_background(
            client,
            self._announce(
                client,
                access,
                "room:message",
                "message",
                {
                    "roomId": payload.room_id,
                    "from": client.sid,
                    "message": payload.message,
                    "timestamp": _server_time(),
                },
            ),
        )

    def _in_background(self, client: Client, work: Awaitable[None]) -> None:
        """Run `work` without holding the socket's event queue; its error goes to the client."""

        async def run() -> None:
            try:
                await work
            except Exception as exc:
                await self.send_error(client.sid, self._refusal(exc, sid=client.sid))

        task = asyncio.create_task(run())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    # -- broadcasting --------------------------------------------------------------------

    async def _announce(
        self,
        client: Client,
        access: RoomAccess,
        event: str,
        action: str,
        body: dict[str, Any],
        *,
        skip_sid: str | None = None,
    ) -> None:
        """Log a room event (when logging is on) and send it to the room with its `seq`."""
        await self._send_logged(
            self._log(client, access, event, action, body), event, body, skip_sid
        )

    def _log(
        self, client: Client, access: RoomAccess, event: str, action: str, body: dict[str, Any]
    ) -> asyncio.Future[StoredEvent] | None:
        """Queue a room event on the log (its place in the game's order is taken now)."""
        if self.events is None:
            return None
        return self.events.submit(
            NewEvent(
                game_id=access.game_id,
                event_type=event,
                action=action,
                payload=body,
                socket_id=client.sid,
                device_id=client.device_id,
                player_id=access.player_id,
                user_id=client.caller.user_id,
            )
        )

    async def _send_logged(
        self,
        logged: asyncio.Future[StoredEvent] | None,
        event: str,
        body: dict[str, Any],
        skip_sid: str | None,
    ) -> None:
        """Send a room event once its log entry committed, with its `seq`."""
        if logged is not None:
            stored = await asyncio.shield(logged)
            body = {**body, "seq": stored.seq}
        room = str(body["roomId"])
        if event in PRESENCE_EVENTS:
            room = watchers_room(room)
        await self.sio.emit(event, body, room=room, skip_sid=skip_sid)

    # -- timers and shutdown -------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._tick_forever(), name="tuiz-realtime-ticks")

    async def _tick_forever(self) -> None:
        interval = self.settings.heartbeat_flush_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except Exception as exc:
                log_failure(log, "realtime_tick_failed", exc)

    async def tick(self) -> None:
        """Write the coalesced heartbeats in one statement; drop sockets silent too long."""
        if self._heartbeats:
            batch, self._heartbeats = self._heartbeats, set()
            try:
                await self.store.heartbeat(batch)
            except Exception as exc:
                # The database is away: keep them for the next tick, or a long outage would
                # leave live sockets looking silent to the stale sweep once it is back.
                self._heartbeats |= batch
                log_failure(log, "heartbeat_write_failed", exc)
        deadline = time.monotonic() - self.settings.heartbeat_timeout_ms / 1000
        for client in [c for c in self.clients.values() if c.last_seen < deadline]:
            client.timed_out = True
            await self.sio.disconnect(client.sid)

    async def drain(self) -> None:
        """On SIGTERM: refuse new sockets, close every transport, record them as disconnected.

        Closing at the Engine.IO level (not a Socket.IO "server disconnect") lets clients
        reconnect by themselves to the next instance, and wakes pending long-polls at once.
        """
        if not self._draining:
            log.info("draining", sockets=len(self.clients))
        self._draining = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._inflight:  # room messages still committing: let them land and go out
            await asyncio.wait(set(self._inflight), timeout=5)
        if self.sio.eio.sockets:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.sio.eio.disconnect()
        for sid in list(self.clients):  # whatever the transports did not report
            await self._on_disconnect(sid)
        if self._heartbeats:
            await self.store.heartbeat(self._heartbeats)
            self._heartbeats = set()

    @property
    def stale_after(self) -> timedelta:
        return timedelta(milliseconds=self.settings.heartbeat_timeout_ms)
