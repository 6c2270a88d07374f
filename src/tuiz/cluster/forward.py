"""Any process serves any client of any game: what it cannot run itself goes to the owner.

A game's socket events and REST requests run where the game is: on this process when it owns
the game (or can claim it), else on the owner named by the game's lease, over `ClusterBus`.
The owner runs the very handler it would run for its own clients, with a copy of the socket's
state (device, caller, seats, rooms) or the raw HTTP request (headers, so the same credentials
are checked), and answers only once the command is durable; results and typed errors come back
unchanged. What the handler changed about the socket (a seat, a room) is applied here. The
game's events come back through the owner's delivery stream (`deliver.py`): room emits, and
emits to one socket, delivered by the process that holds it.

After a failover the new owner asks every process for the sockets seated in the game
(`reseat`), so per-seat events (an answer's acknowledgement, a player's own result) keep
reaching them. A socket that goes away tells the owner (`unseat`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from tuiz.auth import Caller
from tuiz.cluster.bus import ClusterBus, OwnerGone
from tuiz.cluster.fanout import serving_remote
from tuiz.cluster.presence import Presence
from tuiz.errors import ErrorCode, TuizError
from tuiz.logs import get_logger
from tuiz.realtime.ratelimit import TokenBucket
from tuiz.realtime.server import Client, watchers_room
from tuiz.store.rooms import RoomAccess

if TYPE_CHECKING:
    from tuiz.live.hub import GameHub
    from tuiz.live.runner import GameRunner
    from tuiz.realtime.server import Realtime

log = get_logger(__name__)

SocketHandler = Callable[[Client, Any], Awaitable[Any]]
ASGIApp = Callable[..., Awaitable[None]]

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GAME_PATH = re.compile(rf"^/games/({_UUID})(?:/|$)")
PIN_PATH = re.compile(r"^/games/by-code/(\d{6})$")
ANSWER_PATH = re.compile(r"/players/[^/]+/answer$")
JOIN_PATH = re.compile(rf"^/games/{_UUID}/join$")
RETRY_SAFE_EVENTS = frozenset(
    {
        "game:answer:submit",  # keyed by its answer id: a second copy is the same answer
        "game:rejoin",
        "game:host:join",
        "game:state",
        "game:leaderboard:request",
        "room:join",
        "game:lock",  # names the state it sets
        "game:room-locked",
        "game:kick",  # a seat already kicked stays as it is
    }
)
"""Events that change nothing when applied twice: asked again after the owner died."""
STEP_EVENTS = frozenset({"game:flow:start", "game:flow:next", "game:flow:skip"})
"""Host steps that, naming the step they advance from, change nothing once it is left."""
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"})
MAX_FORWARDED_BODY = 1 << 20
PIN_TTL = 2.0  # seconds a PIN's game is remembered (PINs are reused only after a game ends)


def _keyed_join(event: str, data: Any) -> bool:
    """A `game:join` with a join key: asked again, it gets the seat the first one took."""
    return event == "game:join" and isinstance(data, dict) and isinstance(data.get("joinKey"), str)


def _from_step(event: str, data: Any) -> bool:
    """A host step naming the step it advances from (`from`): applied twice, it advances
    once (the owner's handler validates `from`; a bad one changes nothing anywhere)."""
    return event in STEP_EVENTS and isinstance(data, dict) and isinstance(data.get("from"), dict)


def _keyed_rest_join(body: bytes) -> bool:
    """A REST join's body with a `join_key` (the handler validates it; a bad one changes
    nothing wherever it runs)."""
    try:
        parsed = orjson.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("join_key"), str)


def _rooms_out(rooms: dict[str, RoomAccess]) -> dict[str, list[Any]]:
    return {
        room: [str(a.game_id), str(a.player_id) if a.player_id else None, a.role]
        for room, a in rooms.items()
    }


def _rooms_in(rooms: dict[str, list[Any]]) -> dict[str, RoomAccess]:
    return {
        room: RoomAccess(uuid.UUID(g), uuid.UUID(p) if p else None, str(role))
        for room, (g, p, role) in rooms.items()
    }


def client_context(client: Client) -> dict[str, Any]:
    """What a handler reads of a socket, for the owner to rebuild it."""
    caller = client.caller
    return {
        "sid": client.sid,
        "role": caller.role,
        "user": str(caller.user_id) if caller.user_id else None,
        "claims": caller.claims,
        "ip": client.ip,
        "ua": client.user_agent,
        "device": client.device_id,
        "reconnects": client.reconnect_count,
        "seats": client.seats,
        "rooms": _rooms_out(client.rooms),
    }


def remote_client(ctx: dict[str, Any]) -> Client:
    """The socket as its own process sees it (its rate limit was counted there)."""
    user = ctx.get("user")
    return Client(
        sid=str(ctx["sid"]),
        caller=Caller(
            role=str(ctx["role"]), user_id=uuid.UUID(user) if user else None, claims=ctx["claims"]
        ),
        ip=ctx.get("ip"),
        user_agent=ctx.get("ua"),
        bucket=TokenBucket(1e9, 1e9),
        last_seen=time.monotonic(),
        device_id=ctx.get("device"),
        reconnect_count=int(ctx.get("reconnects") or 0),
        rooms=_rooms_in(ctx.get("rooms") or {}),
        seats=dict(ctx.get("seats") or {}),
    )


def _game_ref(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    ref = data.get("gameId", data.get("roomId"))
    if not isinstance(ref, str) or len(ref) > 64:
        return None
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        return None


class GameRouter:
    """Where each game runs, and the forwarding of socket events and REST requests to it."""

    def __init__(
        self, bus: ClusterBus, hub: GameHub, realtime: Realtime, api: ASGIApp, presence: Presence
    ) -> None:
        self.bus = bus
        self.presence = presence
        self.hub = hub
        self.realtime = realtime
        self.api = api  # the REST app itself (not this router's middleware: no loops)
        self.handlers: dict[str, SocketHandler] = {}
        # game id -> its owner, until a failover says otherwise (reseat), the owner is gone, or
        # it answers that another process runs the game now. Not on a timer: at 10,000 players
        # each re-lookup queried a saturated database and refused thousands of answers.
        self._owners: dict[str, str] = {}
        self._resolving: dict[str, asyncio.Future[str | None]] = {}
        self._pins: dict[str, tuple[str, float]] = {}  # PIN -> (game id, known until)
        self._tasks: set[asyncio.Task[None]] = set()
        bus.handlers["socket"] = self._serve_socket
        bus.handlers["http"] = self._serve_http
        bus.handlers["seat"] = self._serve_seat
        bus.notices["unseat"] = self._serve_unseat
        bus.notices["reseat"] = self._on_reseat
        realtime.disconnect_hooks.append(self._on_disconnect)
        hub.load_hooks.append(self._on_load)

    # -- where a game runs ---------------------------------------------------------------

    async def owner_of(self, game_id: str) -> str | None:
        """The process to ask, or None to run it here (owned, claimed now, or no such game:
        the handler then gives the same error it gives anywhere)."""
        if game_id in self.hub.runners:
            return None
        known = self._owners.get(game_id)
        if known is not None:
            return known
        resolving = self._resolving.get(game_id)
        if resolving is None:  # one lookup per game at a time, however many sockets ask
            resolving = asyncio.ensure_future(self._resolve(game_id))
            self._resolving[game_id] = resolving
            resolving.add_done_callback(lambda _f: self._resolving.pop(game_id, None))
        return await asyncio.shield(resolving)

    async def _resolve(self, game_id: str) -> str | None:
        try:
            await self.hub.get(game_id)
        except TuizError as exc:
            owner = exc.details.get("owner") if exc.code is ErrorCode.UNAVAILABLE else None
            if isinstance(owner, str) and owner != self.bus.owner:
                self._owners[game_id] = owner
                return owner
            return None
        except Exception:
            return None  # the database away: the handler says so
        self._owners.pop(game_id, None)
        return None

    async def _ask(
        self, game_id: str, op: str, body: dict[str, Any], *, retry_safe: bool
    ) -> tuple[bool, Any]:
        """(True, answer) from the owner, or (False, None): run it here.

        When the owner is gone, ask again where the lease then says (this process, once it has
        taken the game over), for up to the forward timeout. A request nobody received is
        always asked again: it cannot have been applied. One the owner received before dying
        may have been applied; it is asked again only when applying it twice changes nothing
        (`retry_safe`: answers carry their id, reads and rejoins change nothing); otherwise
        the client gets UNAVAILABLE and decides."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bus.timeout
        pause = 0.1
        while True:
            owner = await self.owner_of(game_id)
            if owner is None:
                return False, None
            try:
                return True, await self.bus.request(owner, op, body)
            except OwnerGone as exc:
                self._owners.pop(game_id, None)
                if (exc.delivered and not retry_safe) or loop.time() + pause > deadline:
                    raise
            except TuizError as exc:
                # That process let the game go and another runs it now: it refused before
                # doing anything (its handler's first step is to load the game).
                moved = exc.details.get("owner") if exc.code is ErrorCode.UNAVAILABLE else None
                if not isinstance(moved, str) or moved == owner or loop.time() > deadline:
                    raise
                self._owners[game_id] = moved
                continue
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    # -- sockets -------------------------------------------------------------------------

    def route(self, event: str, handler: SocketHandler) -> SocketHandler:
        """`handler` for this event, run on the game's owner wherever the socket is."""
        self.handlers[event] = handler

        async def routed(client: Client, data: Any) -> Any:
            game_id = await self._game_of(event, data)
            if game_id is None:
                return await handler(client, data)
            body = {"event": event, "data": data, "client": client_context(client)}
            safe = event in RETRY_SAFE_EVENTS or _keyed_join(event, data) or _from_step(event, data)
            remote, reply = await self._ask(game_id, "socket", body, retry_safe=safe)
            if not remote:
                return await handler(client, data)
            for gid, seat in reply["seats"].items():
                client.seats[gid] = seat
            entered = {r: a for r, a in reply["rooms"].items() if r not in client.rooms}
            for room, access in _rooms_in(entered).items():  # usually none: parse only new ones
                if room not in client.rooms:
                    client.rooms[room] = access
                    await self.realtime.sio.enter_room(client.sid, room)  # now, not via Redis
                    if access.role != "player":
                        await self.realtime.sio.enter_room(client.sid, watchers_room(room))
            await self.presence.flush()  # counted everywhere before the client hears back
            return reply["ack"]

        return routed

    async def _game_of(self, event: str, data: Any) -> str | None:
        if event == "game:join" and isinstance(data, dict):
            pin = data.get("pin")
            if not isinstance(pin, str) or not re.fullmatch(r"\d{6}", pin):
                return None
            return await self._game_of_pin(pin)
        return _game_ref(data)

    async def _game_of_pin(self, pin: str) -> str | None:
        """A lobby's PIN, looked up once for its burst of joins (the handler, wherever it
        runs, looks it up again with the per-address limits)."""
        known = self._pins.get(pin)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        record = await self.hub.games.by_pin(pin)
        if record is None:
            return None
        self._pins[pin] = (str(record.id), time.monotonic() + PIN_TTL)
        if len(self._pins) > 10_000:  # bounded: forget the oldest
            for stale in list(self._pins)[:1000]:
                del self._pins[stale]
        return str(record.id)

    async def _serve_socket(self, body: dict[str, Any]) -> dict[str, Any]:
        client = remote_client(body["client"])
        handler = self.handlers.get(str(body["event"]))
        if handler is None:
            raise TuizError(ErrorCode.UNKNOWN_EVENT, "not a game event")
        token = serving_remote.set(client.sid)
        try:
            ack = await handler(client, body.get("data"))
        finally:
            serving_remote.reset(token)
        return {"ack": ack, "seats": client.seats, "rooms": _rooms_out(client.rooms)}

    async def _on_disconnect(self, client: Client) -> None:
        for game_id in client.seats:
            if game_id in self.hub.runners:
                continue  # GameSockets unseats it here
            with contextlib.suppress(Exception):
                owner = await self.owner_of(game_id)
                if owner is not None:
                    await self.bus.notify(owner, "unseat", {"game": game_id, "sid": client.sid})

    async def _serve_unseat(self, body: dict[str, Any]) -> None:
        runner = self.hub.runners.get(str(body["game"]))
        if runner is not None:
            await runner.unseat_socket(str(body["sid"]))

    # -- failover: the new owner learns which sockets are seated where ---------------------

    def _on_load(self, runner: GameRunner) -> None:
        task = asyncio.create_task(
            self.bus.broadcast("reseat", {"game": runner.game_id, "owner": self.bus.owner})
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_reseat(self, body: dict[str, Any]) -> None:
        game_id, owner = str(body["game"]), str(body["owner"])
        if owner != self.bus.owner:
            self._owners[game_id] = owner
        else:
            self._owners.pop(game_id, None)
        seats = [
            [c.sid, c.seats[game_id]]
            for c in list(self.realtime.clients.values())
            if game_id in c.seats
        ]
        if not seats:
            return
        if owner == self.bus.owner:
            await self._serve_seat({"game": game_id, "seats": seats})
        else:
            with contextlib.suppress(TuizError):
                await self.bus.request(owner, "seat", {"game": game_id, "seats": seats})

    async def _serve_seat(self, body: dict[str, Any]) -> int:
        runner = self.hub.runners.get(str(body["game"]))
        if runner is None:
            return 0
        for sid, player_id in body["seats"]:
            await runner.seat_socket(str(sid), str(player_id) if player_id else None)
        return len(body["seats"])

    # -- REST ----------------------------------------------------------------------------

    async def game_of_path(self, path: str) -> str | None:
        found = GAME_PATH.match(path)
        if found:
            return found.group(1).lower()
        found = PIN_PATH.match(path)
        if found:
            record = await self.hub.games.by_pin(found.group(1))
            return str(record.id) if record else None
        return None

    async def http(self, game_id: str, scope: dict[str, Any], body: bytes) -> dict[str, Any] | None:
        """The owner's response to this request, or None: serve it here."""
        request = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": [
                [k.decode("latin-1"), v.decode("latin-1")]
                for k, v in scope.get("headers", [])
                if k.lower() not in HOP_BY_HOP
            ],
            "client": list(scope["client"]) if scope.get("client") else None,
            "scheme": scope.get("scheme", "http"),
            "body": base64.b64encode(body).decode(),
        }
        safe = (
            scope["method"] in ("GET", "HEAD")
            or ANSWER_PATH.search(scope["path"]) is not None
            or (JOIN_PATH.search(scope["path"]) is not None and _keyed_rest_join(body))
        )
        remote, reply = await self._ask(game_id, "http", request, retry_safe=safe)
        return reply if remote else None

    async def _serve_http(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run a forwarded request through this process's REST app, as if it came here."""
        body = base64.b64decode(request["body"])
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request["method"],
            "scheme": request["scheme"],
            "path": request["path"],
            "raw_path": request["path"].encode(),
            "query_string": request["query"].encode("latin-1"),
            "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request["headers"]],
            "client": tuple(request["client"]) if request["client"] else None,
            "server": None,
        }
        status = 500
        headers: list[list[str]] = []
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers.extend(
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.api(scope, _replay(body), send)
        return {
            "status": status,
            "headers": headers,
            "body": base64.b64encode(b"".join(chunks)).decode(),
        }


class ForwardGames:
    """ASGI middleware: a game's REST request goes to the process that runs the game."""

    def __init__(self, app: ASGIApp, router: Callable[[], GameRouter | None]) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        router = self.router() if scope["type"] == "http" else None
        game_id = await router.game_of_path(scope["path"]) if router is not None else None
        if router is None or game_id is None:
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORWARDED_BODY:
                await _respond_error(send, TuizError(ErrorCode.PAYLOAD_TOO_LARGE, "too large"))
                return
        try:
            reply = await router.http(game_id, scope, body)
        except TuizError as exc:
            await _respond_error(send, exc)
            return
        if reply is None:
            await self.app(scope, _replay(body), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": reply["status"],
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1")) for k, v in reply["headers"]
                ],
            }
        )
        await send({"type": "http.response.body", "body": base64.b64decode(reply["body"])})


def _replay(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A `receive` that hands the already-read body to the app once."""
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive


async def _respond_error(send: Any, error: TuizError) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(error.to_payload())})
