"""Every live game this process owns, loaded on first use or at start-up, and who may act.

Credentials, never claims: a device id says which device is speaking, it proves nothing. The
host role needs the host token or the owner's JWT; a seat is taken back only with its resume
token (tokens are HMACs over the game, the seat and the device, so a token works only from the
device it was issued to).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from tuiz.auth import Caller, host_token, same_token, seat_token
from tuiz.cluster.ownership import Leases
from tuiz.config import Settings
from tuiz.errors import ErrorCode, TuizError, client_error
from tuiz.game.engine import Game
from tuiz.game.model import (
    EVENT_TYPES,
    Command,
    End,
    Event,
    GameStatus,
    Join,
    Quiz,
    event_from_dict,
    quiz_from_dict,
    quiz_to_dict,
    settings_from_dict,
    settings_to_dict,
)
from tuiz.live.publisher import Publisher
from tuiz.live.runner import GameRunner, Seats, now_ms, reloading
from tuiz.live.views import Audience
from tuiz.logs import get_logger, log_failure
from tuiz.store.batch import GroupCommit
from tuiz.store.events import EventLog, NewEvent, validate
from tuiz.store.games import GameRecord, GameRepository, NewSeat
from tuiz.store.ids import new_id

log = get_logger(__name__)

RELOAD_RETRY_MIN = 0.1  # seconds between attempts to reload a broken game, doubling
RELOAD_RETRY_MAX = 2.0


@dataclass(slots=True)
class JoiningSocket:
    """The socket a join comes from: its participation is written with the seat (one commit
    for both); `written` says whether it was (not for a retry answered with its seat)."""

    socket_id: str
    user_id: uuid.UUID | None
    written: bool = False


# device, name, the join key's hash, the joining socket
SeatRequest = tuple[str, str, str | None, JoiningSocket | None]
SeatResult = tuple[str, "asyncio.Future[None] | None"] | Exception
NOT_ENGINE_MAX = 10_000  # remembered games that are not engine games (then forgotten at once)

CREATED = "game:created"
"""The first event of every game: the quiz (answer key included) and settings, for recovery
and replay. It is read by the server only, never served to a client."""


class NotAnEngineGame(TuizError):
    """The game's log does not start with its creation: it will never load (logs only grow)."""


def _game_from_created(game_id: str, created: dict[str, Any]) -> Game:
    return Game.create(
        game_id=game_id,
        pin=created["pin"],
        quiz=quiz_from_dict(created["quiz"]),
        settings=settings_from_dict(created["settings"]),
        host_id=created["host_id"],
        host_device_id=created["host_device_id"],
        now=created["at"],
    )


async def replay(events: EventLog, game_id: uuid.UUID) -> tuple[Game, int]:
    """The game as its log says it is, and the last seq read (`tuiz replay`, recovery)."""
    game: Game | None = None
    last_seq, after, page_size = 0, 0, 5000
    first = await events.read(game_id, after_seq=0, limit=1)
    if first and first[0].event_type != CREATED:
        # A game's log starts with its creation (hub.create writes it before the id is out),
        # so this is no engine game: say so without reading a log that may be long.
        raise NotAnEngineGame(ErrorCode.NOT_FOUND, f"game {game_id} has no creation event")
    while True:
        page = await events.read(game_id, after_seq=after, limit=page_size)
        for row in page:
            if row.event_type == CREATED:
                game = _game_from_created(str(game_id), row.payload)
            elif row.event_type in EVENT_TYPES:
                if game is None:
                    raise TuizError(ErrorCode.NOT_FOUND, f"game {game_id} has no creation event")
                game.apply(event_from_dict(row.payload))
            last_seq = row.seq
        if len(page) < page_size:
            break
        after = page[-1].seq
    if game is None:
        raise TuizError(ErrorCode.NOT_FOUND, f"game {game_id} has no event log")
    return game, last_seq


class GameHub:
    """The live games of this process: one `GameRunner` each, one lease each."""

    def __init__(
        self,
        *,
        publisher: Publisher,
        settings: Settings,
        events: EventLog,
        games: GameRepository,
    ) -> None:
        self.publisher = publisher
        self.settings = settings
        self.events = events
        self.games = games
        self.runners: dict[str, GameRunner] = {}
        self._loading: dict[str, asyncio.Future[GameRunner]] = {}
        self.leases = Leases(games, settings.game_lease_ms)
        # A game's decisions reach the log only while its lease is ours (store/events.py).
        events.lease_owner = self.leases.owner
        # Games whose runner broke (the log refused its events): their seats, until reloaded.
        self._reloading: dict[str, Seats] = {}
        self._reload_tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._expiry: asyncio.Task[None] | None = None
        self._creating: set[uuid.UUID] = set()  # rows whose log is being started
        self._not_engine: set[str] = set()  # games whose log does not start with a creation
        # Told of every game this process takes up from its log (cluster: failover re-seats).
        self.load_hooks: list[Callable[[GameRunner], None]] = []

    @property
    def owner(self) -> str:
        return self.leases.owner

    def start(self) -> None:
        self.leases.start(
            held=lambda: [r.record.id for r in self.runners.values()], lost=self._lost
        )
        self._expiry = asyncio.create_task(self._expire_forever(), name="tuiz-lobby-expiry")

    def _lost(self, game_id: uuid.UUID) -> None:
        runner = self.runners.get(str(game_id))
        if runner is not None:
            runner.broken = True
            self.evict(runner)

    def evict(self, runner: GameRunner) -> None:
        runner.stop()
        if self.runners.get(runner.game_id) is runner:
            del self.runners[runner.game_id]
            if runner.broken:  # a lost lease is someone else's now; a broken game reloads
                self.leases.forget(runner.record.id)
            else:
                self.leases.release_soon(runner.record.id)

    def reload_broken(self, runner: GameRunner) -> None:
        """The log refused this runner's events: drop it and rebuild the game from the log as
        soon as the database answers (not only when a client next asks), so its timers run
        again and the sockets seated on it stay seated."""
        already = runner.broken
        runner.broken = True
        self.evict(runner)
        if already or self._closing:
            return
        self._reloading.setdefault(runner.game_id, runner.seats)
        if runner.game_id not in self._reload_tasks:
            task = asyncio.create_task(self._reload(runner.game_id), name="tuiz-game-reload")
            self._reload_tasks[runner.game_id] = task
            task.add_done_callback(lambda _t: self._reload_tasks.pop(runner.game_id, None))

    async def _reload(self, game_id: str) -> None:
        """Try to load the game again, pausing a little longer each time the database is away."""
        pause = RELOAD_RETRY_MIN
        while not self._closing:
            try:
                await self.get(game_id)
                log.info("game_reloaded", game_id=game_id)
                return
            except Exception as exc:
                error = client_error(exc)
                if error is None or error.code is not ErrorCode.UNAVAILABLE or error.details:
                    # Gone, or run by another process now: nothing for this process to do.
                    log.warning("game_reload_abandoned", game_id=game_id, error=repr(exc))
                    self._reloading.pop(game_id, None)
                    return
            await asyncio.sleep(pause)
            pause = min(pause * 2, RELOAD_RETRY_MAX)

    async def get(self, game_id: str | uuid.UUID) -> GameRunner:
        key = str(game_id)
        runner = self.runners.get(key)
        if runner is not None:
            return runner
        if key in self._not_engine:  # every room:join of such a room asks: no task for it
            raise NotAnEngineGame(ErrorCode.NOT_FOUND, f"game {key} has no creation event")
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load(key))
            self._loading[key] = loading
            loading.add_done_callback(lambda _f: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def by_pin(self, pin: str) -> GameRecord | None:
        """The live game with this PIN: from a game this process runs (no round trip on the
        join path), else from the table."""
        for runner in self.runners.values():
            game = runner.game
            if game.pin == pin and not runner.broken and game.status is not GameStatus.FINISHED:
                return runner.record
        return await self.games.by_pin(pin)

    async def create(
        self,
        *,
        quiz: Quiz,
        quiz_set_id: uuid.UUID | None,
        raw_settings: dict[str, Any],
        user_id: uuid.UUID | None,
        host_device_id: str,
        host_name: str,
    ) -> GameRunner:
        """A new game. Its first log event holds the quiz and settings as they are now, so
        editing the quiz later never changes a game being played or replayed."""
        settings = settings_from_dict(raw_settings)
        created = {
            "type": CREATED,
            "quiz": quiz_to_dict(quiz),
            "settings": settings_to_dict(settings),
            "host_id": str(uuid.UUID(int=0)),  # the same size as the real ids, set below
            "host_device_id": host_device_id,
            "pin": "000000",
            "at": now_ms(),
        }
        # What the log would refuse (a quiz over its size limit: 413) is refused before a row
        # exists: a refused game must not hold a PIN.
        validate(NewEvent(uuid.UUID(int=0), event_type=CREATED, action="create", payload=created))
        record = await self.games.create(
            quiz_set_id=quiz_set_id,
            total_questions=len(quiz.questions),
            settings=settings_to_dict(settings),
            user_id=user_id,
            host_device_id=host_device_id,
            host_name=host_name,
        )
        assert record.host_player_id is not None
        self._creating.add(record.id)
        try:
            await self.leases.claim(record.id)
            created.update(host_id=str(record.host_player_id), pin=record.pin, at=now_ms())
            stored = await self.events.append(
                NewEvent(game_id=record.id, event_type=CREATED, action="create", payload=created)
            )
        except Exception:
            # A game exists only once its log starts with it: undo the row, free the PIN.
            await self._discard(record.id)
            raise
        finally:
            self._creating.discard(record.id)
        game = _game_from_created(str(record.id), created)
        runner = GameRunner(self, record, game, stored.seq, new=True)
        self.runners[runner.game_id] = runner
        return runner

    async def _load(self, game_id: str) -> GameRunner:
        """Rebuild a game from its event log alone (crash recovery is this, too)."""
        try:
            gid = uuid.UUID(game_id)
        except ValueError:
            raise TuizError(ErrorCode.NOT_FOUND, f"no game {game_id!r}") from None
        record = await self.games.get(gid)
        if record is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no game {game_id}")
        await self.leases.claim(gid)
        if game_id in self._reloading:
            # The broken runner's events still queued (a join batch's, whose seats were
            # written before the next batch broke it) are in the log before it is read.
            await self.events.settled()
        self.events.resume(gid)  # the old runner is gone: its game's events are welcome again
        began = time.monotonic()
        try:
            game, last_seq = await replay(self.events, gid)
        except NotAnEngineGame:
            # Every room:join of such a room asks again (the TUIZ-client hook): answer from
            # memory instead of the database each time.
            if len(self._not_engine) >= NOT_ENGINE_MAX:
                self._not_engine.clear()
            self._not_engine.add(game_id)
            raise
        log.info(
            "game_loaded",
            game_id=game_id,
            events=last_seq,
            replay_ms=round((time.monotonic() - began) * 1000, 1),
        )
        runner = GameRunner(self, record, game, last_seq)
        seats = self._reloading.pop(game_id, None)
        if seats is not None:  # after a break: same sockets, and the tables catch up
            runner.seats = seats
            runner._save_projection_soon()
        self.runners[game_id] = runner
        runner._reschedule()  # a deadline already past fires at once
        for hook in self.load_hooks:
            hook(runner)
        return runner

    async def resume_live_games(self) -> int:
        """After a restart: take up every active game so its timers run again."""
        count = 0
        for game_id in await self.games.live_game_ids():
            try:
                await self.get(game_id)
                count += 1
            except Exception:
                log.exception("resume_failed", game_id=str(game_id))
        return count

    async def _discard(self, game_id: uuid.UUID) -> None:
        try:
            await self.games.discard(game_id)
            await self.leases.release([game_id])
        except Exception:
            log.exception("game_discard_failed", game_id=str(game_id))

    # -- lobbies that never start ----------------------------------------------------------

    async def expire_lobbies(self) -> int:
        """End every game still in its lobby `TUIZ_ROOM_TTL_MS` after it was created.

        The end goes through the engine (an `end` in the log, `game:end` to the lobby), so the
        game is finished everywhere and its PIN is free. Games another live process owns are
        left to that process; a lobby whose log never started is discarded.
        """
        ended = 0
        for game_id in await self.games.stale_lobbies(self.settings.room_ttl_ms, self.owner):
            if game_id in self._creating:  # its log is being started right now
                continue
            try:
                runner = await self.get(game_id)
            except TuizError as exc:
                if exc.code is ErrorCode.NOT_FOUND:  # no creation event: never a real game
                    await self._discard(game_id)
                    ended += 1
                continue  # UNAVAILABLE: run by another process, which expires it itself
            if runner.game.status is not GameStatus.WAITING:
                continue
            try:
                await runner.execute(End(actor=runner.game.host_id))
            except TuizError as exc:
                log.warning("lobby_expiry_refused", game_id=runner.game_id, error=exc.code.value)
                continue
            log.info("lobby_expired", game_id=runner.game_id, pin=runner.record.pin)
            ended += 1
        return ended

    async def _expire_forever(self) -> None:
        interval = min(60.0, max(0.25, self.settings.room_ttl_ms / 10_000))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_lobbies()
            except Exception as exc:  # the database away: tried again next round
                log_failure(log, "lobby_expiry_failed", exc)

    async def close(self) -> None:
        """Stop every game's timers, write their projections one last time, let them go.

        One attempt each: with the database away, shutdown must not wait for it (the log is
        the truth; projections are rebuilt from it by whoever loads the game next)."""
        self._closing = True
        for task in list(self._reload_tasks.values()):
            task.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        await self.leases.stop()
        for runner in list(self.runners.values()):
            runner.stop()
            runner._projection_dirty = True
            await runner._save_projection(retry=False)
        with contextlib.suppress(Exception):
            await self.events.settled()  # the leases fence these writes: release them after
            await self.leases.release([r.record.id for r in self.runners.values()])

    # -- credentials -----------------------------------------------------------------------

    def seat_token(self, runner: GameRunner, player_id: str, device_id: str) -> str:
        return seat_token(self.settings.jwt_secret, runner.game_id, player_id, device_id)

    def host_token(self, runner: GameRunner) -> str:
        return host_token(self.settings.jwt_secret, runner.game_id, runner.game.host_id)

    def is_host(self, runner: GameRunner, who: Caller, token: object) -> bool:
        """The service role, the game's owner (JWT), or whoever holds the host token."""
        owner = runner.record.user_id
        if who.is_service or (owner is not None and who.user_id == owner):
            return True
        return token is not None and same_token(self.host_token(runner), token)

    def require_host(self, runner: GameRunner, who: Caller, token: object) -> None:
        if not self.is_host(runner, who, token):
            raise TuizError(ErrorCode.FORBIDDEN, "host commands need the host token or the owner")

    def audience(self, runner: GameRunner, who: Caller, token: object) -> Audience:
        return Audience.HOST if self.is_host(runner, who, token) else Audience.PUBLIC

    def check_seat(self, runner: GameRunner, player_id: str, token: object) -> None:
        """The seat's resume token, or FORBIDDEN: a device id alone never takes a seat."""
        player = runner.game.players.get(player_id)
        if player is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no player {player_id} in this game")
        expected = self.seat_token(runner, player_id, player.device_id)
        if not same_token(expected, token):
            raise TuizError(ErrorCode.FORBIDDEN, "this seat needs its resume token")
        if player.kicked:
            raise TuizError(ErrorCode.FORBIDDEN, "you were removed from this game")

    async def join(
        self,
        runner: GameRunner,
        device_id: str,
        name: str,
        *,
        join_key: str | None = None,
        socket: JoiningSocket | None = None,
    ) -> str:
        """A new seat for this device: engine rules first, then the row.

        A device that already holds a seat gets CONFLICT: it returns with `game:rejoin` and the
        seat's resume token. Handing the seat to whoever names the device would let anyone
        who learns a device id take that player's place. The one exception is the same join
        asked again, its reply lost: a join carrying the `join_key` (a secret the client chose)
        the seat was taken with gets that seat back, and no new events. Only the key's hash is
        kept, in the log, so the retry works on a game rebuilt from it.

        Joins arriving while a batch of them is being written are decided one after another
        in the next batch, whose seats are written in one statement and whose events in one
        log write (a lobby filling up costs a few commits, not two per player). A batch's
        events are queued on the log in the order the batch decided them, once its seats are
        written, and the next batch's seats are written while they commit.

        `socket`'s participation is written with the seat, in the same commit.
        """
        key_hash = hash_join_key(join_key) if join_key is not None else None
        _refuse_seated(runner, device_id, key_hash)
        if runner.joins is None:
            runner.joins = GroupCommit(partial(self._join_batch, runner), max_batch=500)
        # A retry goes through the batch too: it answers once the first join is committed.
        result: SeatResult = await runner.joins.submit((device_id, name, key_hash, socket))
        if isinstance(result, Exception):
            raise result
        player_id, logged = result
        if logged is not None:
            await asyncio.shield(logged)
        return player_id

    async def _join_batch(
        self, runner: GameRunner, batch: Sequence[SeatRequest]
    ) -> list[SeatResult]:
        """Decide the batch's joins, write their seats, queue their events; each seat comes
        with the write its join waits for (None: nothing left to wait for)."""
        results: list[SeatResult] = []
        seats: list[NewSeat] = []
        sockets: dict[str, JoiningSocket] = {}
        applied: list[tuple[list[Event], Command]] = []
        async with runner._join_lock:
            if runner.broken:  # memory may hold seats the log refused: none is answered from it
                unavailable = reloading()
                return [unavailable for _ in batch]
            for device_id, name, key_hash, socket in batch:
                retried = runner.game.retried_seat(device_id, key_hash)
                if retried is not None:  # its seat: nothing to write; the first join's wait,
                    # taken now (once that write fails, its seat is not to be answered)
                    results.append((retried.id, runner.joining.get(retried.id)))
                    continue
                player_id = str(new_id())  # time-ordered: see store/ids.py
                command = Join(
                    actor=None,
                    player_id=player_id,
                    device_id=device_id,
                    name=name,
                    key_hash=key_hash,
                )
                try:
                    _refuse_seated(runner, device_id, None)  # a device's second join in a batch
                    events = runner.apply(command)
                except TuizError as exc:
                    results.append(exc)
                    continue
                results.append((player_id, None))
                sid, user_id = (socket.socket_id, socket.user_id) if socket else (None, None)
                name = " ".join(name.split())
                seats.append(NewSeat(uuid.UUID(player_id), device_id, name, sid, user_id))
                if socket is not None:
                    sockets[player_id] = socket
                applied.append((events, command))
            if not applied:
                return results
            fresh = {str(seat.player_id) for seat in seats}
            try:
                written = await self._add_seats(runner, seats)
            except Exception as exc:
                # Memory holds seats the tables refused: rebuild the game from its log.
                self.reload_broken(runner)
                return [exc if _fresh(r, fresh) else r for r in results]
            for player_id in written:
                sockets[player_id].written = True
            # Refused (UNAVAILABLE) if the runner broke meanwhile: its rebuild may have read
            # the log already, so these joins' events must not reach it now.
            logged = runner.log_applied(applied)
            for player_id in fresh:
                runner.joining[player_id] = logged
            logged.add_done_callback(partial(_joined, runner, fresh))
            return [(pid, logged) if (pid := _fresh(r, fresh)) else r for r in results]

    async def _add_seats(self, runner: GameRunner, seats: list[NewSeat]) -> set[str]:
        """Write the seats' rows. A row the game does not know (its join's log write was cut
        off, so the rebuilt game never saw it) would keep that device and nickname out for
        good: the engine has already said both are free, so such orphans are dropped and the
        seats written again. Only the owner writes seats, under the game's join lock. Returns
        the seats whose socket's participation was written with them."""
        try:
            return await self.games.add_players(runner.record.id, seats)
        except TuizError as exc:
            if exc.code is not ErrorCode.CONFLICT or runner.broken:
                raise
            held: set[str] = set()
            for seat in seats:
                held.update(
                    await self.games.current_seats(runner.record.id, seat.device_id, seat.name)
                )
            orphans = [pid for pid in held if pid not in runner.game.players]
            if not orphans or len(orphans) < len(held):
                raise
            log.warning("orphan_seats_dropped", game_id=runner.game_id, count=len(orphans))
            await self.games.drop_seats(runner.record.id, orphans)
            return await self.games.add_players(runner.record.id, seats)


def _fresh(result: SeatResult, fresh: set[str]) -> str | None:
    """The seat this batch took in `result` (None: an error, or a retry's seat)."""
    if isinstance(result, Exception) or result[0] not in fresh:
        return None
    return result[0]


def _joined(runner: GameRunner, player_ids: set[str], logged: asyncio.Future[None]) -> None:
    """A batch's events are written (or refused: its joiners were told)."""
    for player_id in player_ids:
        if runner.joining.get(player_id) is logged:
            del runner.joining[player_id]
    if not logged.cancelled():
        logged.exception()  # its joiners got it; a joiner gone meanwhile needs no warning


def hash_join_key(join_key: str) -> str:
    """What the game keeps of a join key: its SHA-256, hex."""
    return hashlib.sha256(join_key.encode()).hexdigest()


def _refuse_seated(runner: GameRunner, device_id: str, key_hash: str | None) -> None:
    existing = runner.game.player_by_device(device_id)
    if existing is not None and not existing.kicked:
        if runner.game.retried_seat(device_id, key_hash) is not None:
            return
        raise TuizError(
            ErrorCode.CONFLICT,
            "this device already has a seat in this game; rejoin with its resume token",
            playerId=existing.id,
        )
