"""One live game on this process: decide → persist → publish, on one path.

A command is decided and applied in memory at once (the event loop makes that atomic), its
events are queued on the event log in decision order, and only once they are durable are they
turned into each audience's messages (`views`), published in `seq` order and acknowledged.
If the log refuses them, the game is rebuilt from the log before its next use. Timers send
`Tick` at the engine's next deadline. After a crash, `GameHub` rebuilds the game by replaying
its log, so every acknowledged answer and every deadline survives.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tuiz.errors import ErrorCode, TuizError
from tuiz.game.engine import Game
from tuiz.game.model import (
    AnswerAccepted,
    Command,
    Event,
    GameEnded,
    GameStarted,
    Pause,
    Phase,
    PhaseChanged,
    PlayerConnection,
    PlayerKicked,
    SetConnected,
    SubmitAnswer,
    Tick,
)
from tuiz.live import views
from tuiz.live.views import Body, To
from tuiz.logs import get_logger, log_failure
from tuiz.store.batch import GroupCommit
from tuiz.store.events import NewEvent, StoredEvent
from tuiz.store.games import GameProjection, GameRecord

if TYPE_CHECKING:
    from tuiz.live.hub import GameHub

log = get_logger(__name__)

PROJECTION_RETRY_MIN = 0.25  # seconds before a failed projection write is tried again
PROJECTION_RETRY_MAX = 5.0
STATS_INTERVAL = 0.1  # answer counts to the host at most 10 times a second
MISSED_EVENTS_MAX = 500  # messages kept for a rejoin's catch-up; older gaps get a snapshot


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Seats:
    """Which sockets on this process speak for which player of a game, or for its host."""

    player_sids: dict[str, set[str]] = field(default_factory=dict)
    host_sids: set[str] = field(default_factory=set)
    # sid -> its player: a socket leaving is found without a pass over every seat (all of a
    # 10,000-player game's sockets closing at its end, or after a failover, was quadratic).
    player_by_sid: dict[str, str] = field(default_factory=dict)

    def player_of(self, sid: str) -> str | None:
        return self.player_by_sid.get(sid)

    def seat(self, sid: str, player_id: str) -> set[str]:
        """Seat the socket (a socket speaks for one seat of a game); the player's sockets."""
        previous = self.player_by_sid.get(sid)
        if previous is not None and previous != player_id:
            self.player_sids[previous].discard(sid)
        sids = self.player_sids.setdefault(player_id, set())
        sids.add(sid)
        self.player_by_sid[sid] = player_id
        return sids

    def unseat(self, sid: str) -> str | None:
        """The socket's player, whose socket it no longer is."""
        player_id = self.player_by_sid.pop(sid, None)
        if player_id is not None:
            self.player_sids[player_id].discard(sid)
        return player_id

    def remove_player(self, player_id: str) -> set[str]:
        """The kicked player's sockets, seated no more."""
        sids = self.player_sids.pop(player_id, set())
        for sid in sids:
            self.player_by_sid.pop(sid, None)
        return sids


@dataclass(frozen=True, slots=True)
class Sent:
    """A published message, kept for catch-up: where it went and what it said."""

    seq: int
    to: To
    player_id: str | None
    event: str
    body: Body


def reloading() -> TuizError:
    """A broken runner's refusal: its game is being rebuilt from the log."""
    return TuizError(ErrorCode.UNAVAILABLE, "this game is reloading; try again")


class GameRunner:
    """The owner of one live game on this process: the only holder of its state."""

    def __init__(
        self,
        hub: GameHub,
        record: GameRecord,
        game: Game,
        last_seq: int,
        *,
        new: bool = False,
    ) -> None:
        self.hub = hub
        self.record = record
        self.game = game
        self.game_id = str(record.id)
        self.room = self.game_id
        self.last_seq = last_seq
        self.seats = Seats()
        self._emit_lock = asyncio.Lock()
        self._join_lock = asyncio.Lock()
        self.joins: GroupCommit[Any, Any] | None = None  # the hub's join batches
        self.joining: dict[str, asyncio.Future[None]] = {}  # seat -> its join's log write
        self._pending_answers: dict[tuple[str, str], asyncio.Future[list[StoredEvent]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._projection_task: asyncio.Task[None] | None = None
        self._projection_dirty = False
        self._scores_dirty = True  # the first save writes everything (also after a reload)
        self._saved: GameProjection | None = None  # the last projection written, no scores
        self._host_grace: asyncio.TimerHandle | None = None
        self._retire: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._explaining = False
        # Catch-up: what was published since `_complete_after` (older messages were dropped).
        self._sent: deque[Sent] = deque()
        self._complete_after = 0 if new else last_seq  # a new game has published nothing yet
        # The latest reveal: players' own results are built from it on demand.
        self._reveal: tuple[int, str, dict[str, int]] | None = None
        self.broken = False
        self._stopped = False

    def spawn(self, coro: Any) -> None:
        """A fire-and-forget task of this game, kept referenced until it ends."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- commands ------------------------------------------------------------------------

    async def execute(self, command: Command) -> list[StoredEvent]:
        """Decide and apply now; return once the events are durable and published.

        Applying at decision time lets the next command decide against this one's outcome
        while the log writer commits both in one batch (answers from thousands of players
        share commits). Nothing leaves the process before it is durable; if the log refuses
        the events, the game is rebuilt from the log, so memory never keeps an event the log
        does not have, and the caller gets UNAVAILABLE.
        """
        events = self.apply(command)
        if not events:
            if isinstance(command, Tick):
                self._reschedule()  # the timer fired a hair early: wait for the real deadline
            return []
        self._reschedule()
        write = self._persist([(events, command)])
        if isinstance(command, SubmitAnswer) and command.actor is not None:
            key = (command.actor, command.question_id)
            self._pending_answers[key] = write
            write.add_done_callback(lambda _f: self._pending_answers.pop(key, None))
        stored = await write
        await self._after(events, stored)
        return stored

    def apply(self, command: Command) -> list[Event]:
        """Decide and apply in memory only; `log_applied` makes the events durable and
        publishes them (for commands decided one after another, then written together)."""
        if self.broken:
            raise reloading()
        return self.game.handle(command, now_ms())

    def log_applied(self, applied: list[tuple[list[Event], Command]]) -> asyncio.Future[None]:
        """What `execute` does after applying, for several applied commands in one write: the
        events are queued on the log by this call (so a caller holding a lock may let it go
        before they commit); the future settles once they are durable and published."""
        self._reschedule()
        write = self._persist(applied)

        async def publish() -> None:
            await self._after([e for events, _ in applied for e in events], await write)

        return asyncio.ensure_future(publish())

    def _persist(
        self, applied: list[tuple[list[Event], Command]]
    ) -> asyncio.Future[list[StoredEvent]]:
        """Queue the events on the log now, in the order they were applied; the future gives
        them stored. A refusal (now or at the commit) rebuilds the game from the log; a
        broken runner's events are refused (its rebuild may have read the log already)."""
        try:
            if self.broken:
                raise reloading()
            queued = self.hub.events.submit_many(
                (
                    NewEvent(
                        game_id=self.record.id,
                        event_type=e.type,
                        action=type(command).__name__.lower(),
                        payload=e.to_dict(),
                        player_id=_player_uuid(e),
                    )
                    for events, command in applied
                    for e in events
                ),
                ordered=True,
            )
        except Exception as exc:
            failed: asyncio.Future[list[StoredEvent]] = asyncio.get_running_loop().create_future()
            failed.set_exception(self._refused(exc))
            return failed
        return asyncio.ensure_future(self._stored(queued))

    async def _stored(self, queued: list[asyncio.Future[StoredEvent]]) -> list[StoredEvent]:
        done = await asyncio.gather(*queued, return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                raise self._refused(result)
        return done  # type: ignore[return-value]  # no exceptions left

    def _refused(self, exc: BaseException) -> BaseException:
        """Memory now holds events the log refused: rebuild from the log (the hub does as soon
        as the database answers, so timers and seats carry on). The caller's error."""
        self.hub.reload_broken(self)
        if isinstance(exc, TuizError) or not isinstance(exc, Exception):
            return exc
        log.warning("game_events_not_persisted", game_id=self.game_id, error=repr(exc))
        error = TuizError(ErrorCode.UNAVAILABLE, "the game could not be saved just now; try again")
        error.__cause__ = exc
        return error

    async def answer(self, command: SubmitAnswer) -> AnswerAccepted:
        """An answer acknowledged only once durable; a retry with the same id gets the same.

        A retry while the first write is in flight is decided like any command: it adds no
        answer, but a deadline that passed meanwhile is persisted and published like every
        other event (never only applied). Then it waits for the first write.
        """
        assert command.actor is not None
        pending = self._pending_answers.get((command.actor, command.question_id))
        await self.execute(command)
        if pending is not None:
            await asyncio.shield(pending)
        player = self.game.players[command.actor]
        accepted = player.answers.get(command.question_id)
        if accepted is None or accepted.answer_id != command.answer_id:
            raise TuizError(ErrorCode.CONFLICT, "already answered this question")
        body = views.answer_accepted(self, accepted)
        sids = self.seats.player_sids.get(accepted.player_id, set()) | self.seats.host_sids
        await self.hub.publisher.to_sockets(sids, "game:answer:accepted", body)
        return accepted

    # -- after durability ----------------------------------------------------------------

    async def _after(self, events: list[Event], stored: list[StoredEvent]) -> None:
        async with self._emit_lock:
            for event, row in zip(events, stored, strict=True):
                self.last_seq = max(self.last_seq, row.seq)
                await self._publish(event, row.seq)
        if any(isinstance(e, AnswerAccepted) for e in events):
            self._scores_dirty = True
        if any(not isinstance(e, (AnswerAccepted, PlayerConnection)) for e in events):
            self._save_projection_soon()
        if any(isinstance(e, GameEnded) for e in events):
            self._retire_later()

    async def _publish(self, event: Event, seq: int) -> None:
        publisher = self.hub.publisher
        if isinstance(event, GameStarted):
            # The lobby's sockets and seats live as long as the game: keep them out of every
            # later garbage collection (see app.tune_gc).
            gc.freeze()
        if isinstance(event, PlayerKicked):
            await self.hub.games.remove_player(uuid.UUID(event.player_id))
        for to, player_id, name, body in views.event_messages(self, event, seq):
            self._keep(Sent(seq, to, player_id, name, body))
            if to is To.ROOM:
                await publisher.to_room(self.room, name, body)
            elif to is To.WATCHERS:
                await publisher.to_watchers(self.room, name, body)
            elif to is To.HOST:
                await publisher.to_sockets(self.seats.host_sids, name, body)
            elif player_id is not None:
                await publisher.to_sockets(self.seats.player_sids.get(player_id, ()), name, body)
        if isinstance(event, PlayerKicked):
            for sid in self.seats.remove_player(event.player_id):
                await publisher.leave(sid, self.room)
        elif isinstance(event, AnswerAccepted):
            self._stats_soon()
        elif isinstance(event, PhaseChanged):
            await self._after_phase(event, seq)

    async def _after_phase(self, event: PhaseChanged, seq: int) -> None:
        question = self.game.current_question
        if event.phase is Phase.ANSWER_REVEAL and question is not None:
            self._reveal = (seq, question.id, self.game.ranks())
            await self._player_results()
        if event.phase is not Phase.EXPLANATION and self._explaining:
            self._explaining = False
            body = views.base(self, seq)
            self._keep(Sent(seq, To.ROOM, None, "game:explanation:hide", body))
            await self.hub.publisher.to_room(self.room, "game:explanation:hide", body)
        self._explaining = event.phase is Phase.EXPLANATION

    def _keep(self, sent: Sent) -> None:
        if sent.to is To.WATCHERS or sent.to is To.HOST:
            return  # a player's catch-up never contains them
        self._sent.append(sent)
        while len(self._sent) > MISSED_EVENTS_MAX:
            self._complete_after = max(self._complete_after, self._sent.popleft().seq)

    def _result_for(self, player_id: str) -> Body | None:
        if self._reveal is None:
            return None
        seq, question_id, ranks = self._reveal
        player = self.game.players.get(player_id)
        if player is None or player.kicked:
            return None
        return views.player_result(self.game, views.base(self, seq), question_id, player, ranks)

    async def _player_results(self) -> None:
        """Each player's own outcome, rank included: one sort, then one small emit each."""
        for player_id, sids in self.seats.player_sids.items():
            body = self._result_for(player_id) if sids else None
            if body is not None:
                await self.hub.publisher.to_sockets(sids, "game:player:result", body)

    def missed(self, player_id: str, after_seq: int) -> list[Body] | None:
        """What this player would have received live after `after_seq`, in order; None when
        that is no longer known (the client then draws from the snapshot alone)."""
        if after_seq >= self.last_seq:
            return []
        if after_seq < self._complete_after:
            return None
        items: list[Body] = []
        reveal_seq = self._reveal[0] if self._reveal else None
        for sent in self._sent:
            if sent.seq <= after_seq:
                continue
            if sent.to is To.ROOM or sent.player_id == player_id:
                items.append(views.missed_item(sent.seq, sent.event, sent.body))
            if sent.seq == reveal_seq and sent.event == "game:question:ended":
                result = self._result_for(player_id)
                if result is not None:
                    items.append(views.missed_item(sent.seq, "game:player:result", result))
        return items

    def _stats_soon(self) -> None:
        if self._stats_task is None or self._stats_task.done():
            self._stats_task = asyncio.create_task(self._send_stats())

    async def _send_stats(self) -> None:
        """Coalesce answer counts: at most one update per STATS_INTERVAL, to the host only."""
        await asyncio.sleep(STATS_INTERVAL)
        if not self.game.current_question or self.game.phase is not Phase.ANSWERING:
            return
        stats = views.answer_stats(self.game, views.base(self, self.last_seq))
        await self.hub.publisher.to_sockets(self.seats.host_sids, "game:answer:stats:update", stats)
        await self.hub.publisher.to_sockets(self.seats.host_sids, "game:answer:stats", stats)

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

    # -- projections and timers ----------------------------------------------------------

    def _save_projection_soon(self) -> None:
        self._projection_dirty = True
        if self._projection_task is None or self._projection_task.done():
            self._projection_task = asyncio.create_task(self._save_projection())

    async def _save_projection(self, *, retry: bool = True) -> None:
        """Write the projection until it is current. A failed write (the database away) is
        tried again after a pause that grows to PROJECTION_RETRY_MAX, until it lands or the
        runner stops; `retry=False` tries once (shutdown)."""
        pause = PROJECTION_RETRY_MIN
        while self._projection_dirty:
            self._projection_dirty = False
            with_scores, self._scores_dirty = self._scores_dirty, False
            projection = self.projection(with_scores=with_scores)
            if not with_scores and projection == self._saved:
                continue  # what the tables hold already (a lobby filling up changes none of it)
            try:
                await self.hub.games.save(projection)
                self._saved = replace(projection, scores=[])
            except Exception as exc:
                self._projection_dirty = True
                self._scores_dirty = self._scores_dirty or with_scores
                log_failure(log, "projection_save_failed", exc, game_id=self.game_id)
                if not retry or self._stopped:
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, PROJECTION_RETRY_MAX)
                if self._stopped:
                    return
            else:
                pause = PROJECTION_RETRY_MIN

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
        if deadline is None or self.broken:
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
        """No more timers or projection retries (evicted, broken, or shutting down)."""
        self._stopped = True
        for handle in (self._timer, self._host_grace, self._retire):
            if handle is not None:
                handle.cancel()
        self._timer = self._host_grace = self._retire = None

    # -- sockets -------------------------------------------------------------------------

    def snapshot(self, player_id: str | None) -> Body:
        return views.snapshot(self.game, player_id, self.last_seq, now_ms())

    async def seat_socket(self, sid: str, player_id: str | None) -> None:
        """A socket now speaks for a player (or the host when None) and is in the room."""
        await self.hub.publisher.enter(sid, self.room)
        if player_id is None:
            self.seats.host_sids.add(sid)
            if self._host_grace is not None:
                self._host_grace.cancel()
                self._host_grace = None
            return
        first = not self.seats.player_sids.get(player_id)
        self.seats.seat(sid, player_id)
        player = self.game.players.get(player_id)
        if first and player is not None and not player.connected:
            await self.execute(SetConnected(actor=None, player_id=player_id, connected=True))

    async def unseat_socket(self, sid: str) -> None:
        if sid in self.seats.host_sids:
            self.seats.host_sids.discard(sid)
            if not self.seats.host_sids:
                self._start_host_grace()
            return
        player_id = self.seats.unseat(sid)
        if player_id is None:
            return
        sids = self.seats.player_sids[player_id]
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
