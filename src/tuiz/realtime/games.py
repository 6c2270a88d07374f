"""Live games: the I/O around the pure engine (one owner per game on this process).

A `GameRunner` owns one `Game`. A command is decided and applied in memory at once (the
event loop makes that atomic), its events are queued on the event log in decision order, and
only once they are durable are they broadcast (in `seq` order) and acknowledged. Timers send
`Tick` at the engine's next deadline. After a crash, `GameHub.load` rebuilds the game by
replaying its log, so every acknowledged answer and every deadline survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import socketio

from tuiz.auth import host_token, same_token, seat_token
from tuiz.config import Settings
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.engine import Game
from tuiz.game.model import (
    EVENT_TYPES,
    AnswerAccepted,
    Command,
    End,
    Event,
    GameEnded,
    GamePaused,
    GameResumed,
    GameStarted,
    Join,
    Kick,
    Lock,
    Next,
    Pause,
    Phase,
    PhaseChanged,
    PlayerConnection,
    PlayerJoined,
    PlayerKicked,
    Quiz,
    Resume,
    RoomLocked,
    SetConnected,
    Skip,
    Start,
    SubmitAnswer,
    Tick,
    event_from_dict,
    quiz_from_dict,
    quiz_to_dict,
    settings_from_dict,
    settings_to_dict,
)
from tuiz.logs import get_logger
from tuiz.realtime.server import watchers_room
from tuiz.store.events import EventLog, NewEvent, StoredEvent
from tuiz.store.games import GameProjection, GameRecord, GameRepository

log = get_logger(__name__)

STATS_INTERVAL = 0.1  # answer counts to the host at most 10 times a second
MISSED_EVENTS_MAX = 500


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Seat:
    """Which sockets on this process speak for which player of a game."""

    player_sids: dict[str, set[str]] = field(default_factory=dict)
    host_sids: set[str] = field(default_factory=set)

    def player_of(self, sid: str) -> str | None:
        for player_id, sids in self.player_sids.items():
            if sid in sids:
                return player_id
        return None


class GameRunner:
    """The owner of one live game on this process."""

    def __init__(self, hub: GameHub, record: GameRecord, game: Game, last_seq: int) -> None:
        self.hub = hub
        self.record = record
        self.game = game
        self.game_id = str(record.id)
        self.room = self.game_id
        self.last_seq = last_seq
        self.seats = Seat()
        self._emit_lock = asyncio.Lock()
        self._join_lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._pending_answers: dict[tuple[str, str], asyncio.Future[list[StoredEvent]]] = {}
        self._stats_task: asyncio.Task[None] | None = None
        self._projection_task: asyncio.Task[None] | None = None
        self._projection_dirty = False
        self._scores_dirty = True  # the first save writes everything (also after a reload)
        self._host_grace: asyncio.TimerHandle | None = None
        self._retire: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.broken = False

    def spawn(self, coro: Any) -> None:
        """A fire-and-forget task of this game, kept referenced until it ends."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- commands ------------------------------------------------------------------------

    async def execute(self, command: Command) -> list[StoredEvent]:
        """Decide and apply now; return once the events are durable (and being broadcast)."""
        if self.broken:
            raise TuizError(ErrorCode.UNAVAILABLE, "this game is reloading; try again")
        events = self.game.handle(command, now_ms())
        if not events:
            if isinstance(command, Tick):
                self._reschedule()  # the timer fired a hair early: wait for the real deadline
            return []
        self._reschedule()
        write = asyncio.ensure_future(self._persist(events, command))
        if isinstance(command, SubmitAnswer) and command.actor is not None:
            key = (command.actor, command.question_id)
            self._pending_answers[key] = write
            write.add_done_callback(lambda _f: self._pending_answers.pop(key, None))
        stored = await write
        await self._after(events, stored)
        return stored

    async def _persist(self, events: list[Event], command: Command) -> list[StoredEvent]:
        try:
            return await self.hub.events.append_many(
                NewEvent(
                    game_id=self.record.id,
                    event_type=e.type,
                    action=type(command).__name__.lower(),
                    payload=e.to_dict(),
                    player_id=_player_uuid(e),
                )
                for e in events
            )
        except Exception:
            # Memory now holds events the log refused: rebuild from the log on next use.
            self.broken = True
            self.hub.evict(self)
            raise

    async def answer(self, command: SubmitAnswer) -> AnswerAccepted:
        """An answer acknowledged only when durable; a retry with the same id gets the same."""
        assert command.actor is not None
        key = (command.actor, command.question_id)
        pending = self._pending_answers.get(key)
        if pending is None:
            await self.execute(command)
        else:
            await asyncio.shield(pending)
            self.game.handle(command, now_ms())  # refuses a different answer id (CONFLICT)
        player = self.game.players[command.actor]
        accepted = player.answers.get(command.question_id)
        if accepted is None or accepted.answer_id != command.answer_id:
            raise TuizError(ErrorCode.CONFLICT, "already answered this question")
        if (pending := self._pending_answers.get(key)) is not None:
            await asyncio.shield(pending)
        return accepted

    # -- after durability ----------------------------------------------------------------

    async def _after(self, events: list[Event], stored: list[StoredEvent]) -> None:
        async with self._emit_lock:
            for event, row in zip(events, stored, strict=True):
                self.last_seq = max(self.last_seq, row.seq)
                await self._broadcast(event, row.seq)
        if any(isinstance(e, AnswerAccepted) for e in events):
            self._scores_dirty = True
        if any(not isinstance(e, (AnswerAccepted, PlayerConnection)) for e in events):
            self._save_projection_soon()
        if any(isinstance(e, GameEnded) for e in events):
            self._retire_later()

    def _retire_later(self) -> None:
        """A finished game leaves memory after a while (REST reads load it again if asked)."""
        delay = self.hub.settings.finished_game_ttl_ms / 1000

        def retire() -> None:
            if self.seats.host_sids or any(self.seats.player_sids.values()):
                self._retire = asyncio.get_running_loop().call_later(delay, retire)
                return
            self.spawn(self._flush_and_evict())

        self._retire = asyncio.get_running_loop().call_later(delay, retire)

    async def _flush_and_evict(self) -> None:
        await self.flush()
        self.hub.evict(self)

    def _base(self, seq: int) -> dict[str, Any]:
        return {"roomId": self.room, "gameId": self.game_id, "seq": seq}

    async def _emit(
        self,
        event: str,
        body: dict[str, Any],
        *,
        to: Iterable[str] | None = None,
        room: bool = False,
    ) -> None:
        if room:
            await self.hub.sio.emit(event, body, room=self.room)
            return
        for sid in to or ():
            await self.hub.sio.emit(event, body, to=sid)

    async def _broadcast(self, event: Event, seq: int) -> None:
        base = self._base(seq)
        game = self.game
        if isinstance(event, PlayerJoined):  # to the host and screens: N, not N², per lobby
            await self.hub.sio.emit(
                "game:player-joined",
                {
                    **base,
                    "playerId": event.player_id,
                    "playerName": event.name,
                    "playersCount": sum(1 for _ in game.seated()),
                },
                room=watchers_room(self.room),
            )
        elif isinstance(event, PlayerConnection):
            name = "game:player-reconnected" if event.connected else "game:player-left"
            await self.hub.sio.emit(
                name, {**base, "playerId": event.player_id}, room=watchers_room(self.room)
            )
        elif isinstance(event, PlayerKicked):
            await self.hub.games.remove_player(uuid.UUID(event.player_id))
            body = {
                **base,
                "player_id": event.player_id,
                "player_name": game.players[event.player_id].name,
                "game_id": self.game_id,
                "banned": event.banned,
                "kicked_by": "host",
                "timestamp": event.at,
            }
            kicked = self.seats.player_sids.pop(event.player_id, set())
            await self._emit("game:player-kicked", body, to=kicked | self.seats.host_sids)
            for sid in kicked:
                await self.hub.sio.leave_room(sid, self.room)
        elif isinstance(event, RoomLocked):
            await self._emit("game:room-locked", {**base, "locked": event.locked}, room=True)
        elif isinstance(event, GameStarted):
            # The lobby's sockets and seats live as long as the game: keep them out of every
            # later garbage collection (see app.tune_gc).
            gc.freeze()
            await self._emit(
                "game:started",
                {**base, "roomCode": self.record.pin, "startedAt": event.at},
                room=True,
            )
        elif isinstance(event, PhaseChanged):
            await self._phase_changed(event, base)
        elif isinstance(event, AnswerAccepted):
            self._stats_soon()
        elif isinstance(event, GamePaused):
            await self._emit("game:pause", {**base, "remainingMs": event.remaining_ms}, room=True)
        elif isinstance(event, GameResumed):
            await self._emit("game:resume", {**base, "endsAt": event.ends_at}, room=True)
        elif isinstance(event, GameEnded):
            await self._emit(
                "game:end",
                {
                    **base,
                    "completed": event.completed,
                    "podium": [camel(row) for row in game.leaderboard(3)],
                },
                room=True,
            )

    async def _phase_changed(self, event: PhaseChanged, base: dict[str, Any]) -> None:
        game = self.game
        await self._emit(
            "game:phase:change",
            {
                **base,
                "phase": event.phase.value,
                "questionIndex": event.question_index,
                "questionId": event.question_id,
                "startedAt": event.at,
                "endsAt": event.ends_at,
            },
            room=True,
        )
        question = game.current_question
        if event.phase in (Phase.QUESTION, Phase.ANSWERING):
            await self._emit(
                "game:question:started",
                {
                    **base,
                    "question": {
                        **(game.public_question(reveal=False) or {}),
                        "index": event.question_index,
                    },
                    "phase": event.phase.value,
                    "startsAt": event.at,
                    "endsAt": event.ends_at,
                    "totalQuestions": len(game.quiz.questions),
                },
                room=True,
            )
        elif event.phase is Phase.ANSWER_REVEAL and question is not None:
            counts = game.answer_counts()
            revealed = game.public_question(reveal=True) or {}
            await self._emit(
                "game:question:ended",
                {
                    **base,
                    "questionId": question.id,
                    "correctChoiceIds": [c.id for c in question.choices if c.is_correct],
                    "acceptedAnswers": list(question.accepted_answers),
                    "counts": counts,
                    "question": revealed,
                },
                room=True,
            )
            stats = self._stats_body(base)
            await self._emit("game:answer:stats", stats, room=True)
            await self._emit("game:answer:stats:update", stats, room=True)
            await self._player_results(base, question.id)
        elif event.phase is Phase.EXPLANATION and question is not None:
            explanation = question.explanation
            await self._emit(
                "game:explanation:show",
                {
                    **base,
                    "questionId": question.id,
                    "explanation": {
                        "title": explanation.title if explanation else None,
                        "text": explanation.text if explanation else None,
                        "image_url": explanation.image_url if explanation else None,
                        "show_time": question.show_explanation_time,
                    },
                },
                room=True,
            )
        elif event.phase in (Phase.LEADERBOARD, Phase.PODIUM):
            await self._emit(
                "game:leaderboard:update",
                {
                    **base,
                    "leaderboard": game.leaderboard(game.settings.leaderboard_size),
                    "total": sum(1 for _ in game.seated()),
                },
                room=True,
            )
        if event.phase is not Phase.EXPLANATION and self._explaining:
            self._explaining = False
            await self._emit("game:explanation:hide", base, room=True)
        self._explaining = event.phase is Phase.EXPLANATION

    _explaining = False

    async def _player_results(self, base: dict[str, Any], question_id: str) -> None:
        """Each player's own outcome, rank included: one sort, then one small emit each."""
        ranks = self.game.ranks()
        for player_id, sids in self.seats.player_sids.items():
            player = self.game.players.get(player_id)
            if player is None or not sids:
                continue
            answer = player.answers.get(question_id)
            body = {
                **base,
                "questionId": question_id,
                "answered": answer is not None,
                "correct": answer.correct if answer else False,
                "points": answer.points if answer else 0,
                "score": player.score,
                "rank": ranks.get(player_id),
                "streak": player.streak,
            }
            await self._emit("game:player:result", body, to=sids)

    def _stats_body(self, base: dict[str, Any]) -> dict[str, Any]:
        question = self.game.current_question
        answered = 0
        if question is not None:
            answered = sum(1 for p in self.game.players.values() if question.id in p.answers)
        return {
            **base,
            "questionId": question.id if question else None,
            "counts": self.game.answer_counts(),
            "answered": answered,
            "total": sum(1 for p in self.game.players.values() if not p.kicked),
        }

    def _stats_soon(self) -> None:
        if self._stats_task is None or self._stats_task.done():
            self._stats_task = asyncio.create_task(self._send_stats())

    async def _send_stats(self) -> None:
        """Coalesce answer counts: at most one update per STATS_INTERVAL to the host."""
        await asyncio.sleep(STATS_INTERVAL)
        stats = self._stats_body(self._base(self.last_seq))
        await self._emit("game:answer:stats:update", stats, to=self.seats.host_sids)
        await self._emit("game:answer:stats", stats, to=self.seats.host_sids)

    # -- projections and timers ----------------------------------------------------------

    def _save_projection_soon(self) -> None:
        self._projection_dirty = True
        if self._projection_task is None or self._projection_task.done():
            self._projection_task = asyncio.create_task(self._save_projection())

    async def _save_projection(self) -> None:
        while self._projection_dirty:
            self._projection_dirty = False
            with_scores, self._scores_dirty = self._scores_dirty, False
            try:
                await self.hub.games.save(self.projection(with_scores=with_scores))
            except Exception:
                self._scores_dirty = self._scores_dirty or with_scores
                log.exception("projection_save_failed", game_id=self.game_id)
                return

    async def flush(self) -> None:
        """Wait for the projection writer (tests, shutdown)."""
        if self._projection_task is not None:
            await self._projection_task

    def projection(self, *, with_scores: bool = True) -> GameProjection:
        """The tables' view of the game; scores and answer reports only when asked (they are
        the costly part: every seat, every answer), i.e. after answers came in."""
        game = self.game
        question = game.current_question
        questions = game.quiz.questions
        nxt = game.question_index + 1
        return GameProjection(
            game_id=self.record.id,
            status=game.status.value,
            locked=game.locked,
            question_index=max(game.question_index, 0),
            question_id=uuid.UUID(question.id) if question else None,
            next_question_id=uuid.UUID(questions[nxt].id) if 0 <= nxt < len(questions) else None,
            question_started_at=game.phase_started_at if question else None,
            question_ends_at=game.phase_ends_at,
            started_at=game.started_at,
            paused_at=game.phase_started_at if game.paused else None,
            ended_at=game.ended_at,
            scores=[
                (uuid.UUID(p.id), p.score, _answer_report(p.answers.values()))
                for p in game.players.values()
            ]
            if with_scores
            else [],
        )

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.game.next_deadline()
        if deadline is None:
            return
        delay = max(0.0, (deadline - now_ms()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.spawn(self._tick())

    async def _tick(self) -> None:
        try:
            await self.execute(Tick(actor=None))
        except TuizError as exc:
            log.warning("tick_refused", game_id=self.game_id, error=exc.code.value)
            self._reschedule()
        except Exception:
            log.exception("tick_failed", game_id=self.game_id)

    def stop(self) -> None:
        for handle in (self._timer, self._host_grace, self._retire):
            if handle is not None:
                handle.cancel()
        self._timer = self._host_grace = self._retire = None

    # -- sockets -------------------------------------------------------------------------

    def snapshot(self, player_id: str | None) -> dict[str, Any]:
        """The engine's snapshot in the protocol's camelCase, with `lastSeq` and the clock."""
        now = now_ms()
        snap = camel(self.game.snapshot(player_id, now))
        if isinstance(snap.get("me"), dict):
            snap["me"] = camel(snap["me"])
        return {**snap, "lastSeq": self.last_seq, "serverTime": now}

    async def seat_socket(self, sid: str, player_id: str | None) -> None:
        """A socket now speaks for a player (or the host when None) and is in the room."""
        await self.hub.sio.enter_room(sid, self.room)
        if player_id is None:
            self.seats.host_sids.add(sid)
            if self._host_grace is not None:
                self._host_grace.cancel()
                self._host_grace = None
            return
        sids = self.seats.player_sids.setdefault(player_id, set())
        first = not sids
        sids.add(sid)
        player = self.game.players.get(player_id)
        if first and player is not None and not player.connected:
            await self.execute(SetConnected(actor=None, player_id=player_id, connected=True))

    async def unseat_socket(self, sid: str) -> None:
        if sid in self.seats.host_sids:
            self.seats.host_sids.discard(sid)
            if not self.seats.host_sids:
                self._start_host_grace()
            return
        player_id = self.seats.player_of(sid)
        if player_id is None:
            return
        sids = self.seats.player_sids[player_id]
        sids.discard(sid)
        player = self.game.players.get(player_id)
        if not sids and player is not None and player.connected and not player.kicked:
            with contextlib.suppress(TuizError):
                await self.execute(SetConnected(actor=None, player_id=player_id, connected=False))

    def _start_host_grace(self) -> None:
        """The host has gone: if no host socket is back within the grace period, pause."""
        if self._host_grace is not None or self.game.status.value not in ("active",):
            return
        delay = self.hub.settings.host_grace_ms / 1000

        def fire() -> None:
            self._host_grace = None
            if not self.seats.host_sids and self.game.status.value == "active":
                self.spawn(self._pause_for_host())

        self._host_grace = asyncio.get_running_loop().call_later(delay, fire)

    async def _pause_for_host(self) -> None:
        try:
            await self.execute(Pause(actor=self.game.host_id))
            log.info("paused_host_away", game_id=self.game_id)
        except TuizError:
            pass


CREATED = "game:created"


def _dead_here(owner: str) -> bool:
    """True when `owner` was a process on this host that no longer runs (a crash)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier life of this pid: that owner id is not ours
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def camel(data: dict[str, Any]) -> dict[str, Any]:
    def key(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {key(k): v for k, v in data.items()}


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


def _player_uuid(event: Event) -> uuid.UUID | None:
    player_id = getattr(event, "player_id", None)
    return uuid.UUID(player_id) if isinstance(player_id, str) else None


def _answer_report(answers: Iterable[AnswerAccepted]) -> dict[str, Any]:
    return {
        a.question_id: {
            "answer_id": a.answer_id,
            "choice_ids": list(a.choice_ids),
            "text": a.text,
            "correct": a.correct,
            "points": a.points,
            "elapsed_ms": a.elapsed_ms,
        }
        for a in answers
    }


class GameHub:
    """Every live game this process owns, loaded on first use or at start-up."""

    def __init__(
        self,
        *,
        sio: socketio.AsyncServer,
        settings: Settings,
        events: EventLog,
        games: GameRepository,
    ) -> None:
        self.sio = sio
        self.settings = settings
        self.events = events
        self.games = games
        self.runners: dict[str, GameRunner] = {}
        self._loading: dict[str, asyncio.Future[GameRunner]] = {}
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease_task: asyncio.Task[None] | None = None

    # -- ownership: one process runs a game at a time --------------------------------------

    async def _claim(self, game_id: uuid.UUID) -> None:
        ttl = self.settings.game_lease_ms
        holder = await self.games.claim(game_id, self.owner, ttl)
        if holder is None:
            return
        if _dead_here(holder) and await self.games.take_over(game_id, holder, self.owner, ttl):
            log.info("game_taken_over", game_id=str(game_id), from_owner=holder)
            return
        raise TuizError(
            ErrorCode.UNAVAILABLE,
            "this game is run by another tuiz process; connect to that one",
            owner=holder,
        )

    def start(self) -> None:
        self._lease_task = asyncio.create_task(self._renew_forever(), name="tuiz-game-leases")

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.game_lease_ms / 3000)
            try:
                ids = [r.record.id for r in self.runners.values()]
                if not ids:
                    continue
                kept = await self.games.renew(ids, self.owner, self.settings.game_lease_ms)
                for runner in list(self.runners.values()):
                    if runner.record.id not in kept:  # we stalled past the lease: let go
                        log.error("game_lease_lost", game_id=runner.game_id)
                        runner.broken = True
                        self.evict(runner)
            except Exception:
                log.exception("game_lease_renewal_failed")

    def evict(self, runner: GameRunner) -> None:
        runner.stop()
        if self.runners.get(runner.game_id) is runner:
            del self.runners[runner.game_id]
            if not runner.broken:  # a lost lease is someone else's now
                runner.spawn(self.games.release([runner.record.id], self.owner))

    async def get(self, game_id: str | uuid.UUID) -> GameRunner:
        key = str(game_id)
        runner = self.runners.get(key)
        if runner is not None:
            return runner
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load(key))
            self._loading[key] = loading
            loading.add_done_callback(lambda _f: self._loading.pop(key, None))
        return await asyncio.shield(loading)

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
        record = await self.games.create(
            quiz_set_id=quiz_set_id,
            total_questions=len(quiz.questions),
            settings=settings_to_dict(settings),
            user_id=user_id,
            host_device_id=host_device_id,
            host_name=host_name,
        )
        assert record.host_player_id is not None
        await self._claim(record.id)
        created = {
            "type": CREATED,
            "quiz": quiz_to_dict(quiz),
            "settings": settings_to_dict(settings),
            "host_id": str(record.host_player_id),
            "host_device_id": host_device_id,
            "pin": record.pin,
            "at": now_ms(),
        }
        stored = await self.events.append(
            NewEvent(game_id=record.id, event_type=CREATED, action="create", payload=created)
        )
        runner = GameRunner(self, record, _game_from_created(str(record.id), created), stored.seq)
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
        await self._claim(gid)
        game, last_seq = await replay(self.events, gid)
        runner = GameRunner(self, record, game, last_seq)
        self.runners[game_id] = runner
        runner._reschedule()  # a deadline already past fires at once
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

    async def close(self) -> None:
        """Stop every game's timers, write their projections one last time, let them go."""
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        for runner in list(self.runners.values()):
            runner.stop()
            runner._projection_dirty = True
            await runner._save_projection()
        await self.games.release([r.record.id for r in self.runners.values()], self.owner)

    def tokens(self, runner: GameRunner, player_id: str, device_id: str) -> str:
        return seat_token(self.settings.jwt_secret, runner.game_id, player_id, device_id)

    def host_token(self, runner: GameRunner) -> str:
        return host_token(self.settings.jwt_secret, runner.game_id, runner.game.host_id)

    def check_host(self, runner: GameRunner, token: object) -> None:
        expected = host_token(self.settings.jwt_secret, runner.game_id, runner.game.host_id)
        if not same_token(expected, token):
            raise TuizError(ErrorCode.FORBIDDEN, "not the host of this game")

    async def join(self, runner: GameRunner, device_id: str, name: str) -> str:
        """A new seat (or the device's existing one): engine rules first, then the row."""
        existing = runner.game.player_by_device(device_id)
        if existing is not None and not existing.kicked:
            return existing.id
        async with runner._join_lock:
            player_id = str(uuid.uuid4())
            command = Join(actor=None, player_id=player_id, device_id=device_id, name=name)
            runner.game.decide(command, now_ms())  # refuse before writing anything
            await self.games.add_player(
                runner.record.id, uuid.UUID(player_id), device_id, " ".join(name.split())
            )
            await runner.execute(command)
        return player_id


# Re-exported for the socket layer.
HOST_COMMANDS: dict[str, Callable[[str, dict[str, Any]], Command]] = {
    "game:flow:start": lambda host, _d: Start(actor=host),
    "game:started": lambda host, _d: Start(actor=host),
    "game:flow:next": lambda host, _d: Next(actor=host),
    "game:phase:change": lambda host, _d: Next(actor=host),
    "game:flow:skip": lambda host, _d: Skip(actor=host),
    "game:flow:end": lambda host, _d: End(actor=host),
    "game:end": lambda host, _d: End(actor=host),
    "game:flow:pause": lambda host, _d: Pause(actor=host),
    "game:pause": lambda host, _d: Pause(actor=host),
    "game:flow:resume": lambda host, _d: Resume(actor=host),
    "game:resume": lambda host, _d: Resume(actor=host),
    "game:lock": lambda host, d: Lock(actor=host, locked=bool(d.get("locked", True))),
    "game:room-locked": lambda host, d: Lock(actor=host, locked=bool(d.get("locked", True))),
    "game:kick": lambda host, d: Kick(
        actor=host, player_id=str(d.get("playerId", "")), ban=bool(d.get("ban", False))
    ),
}
