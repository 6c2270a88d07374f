"""The rules of one live game: `decide` turns a command into events, `apply` evolves the state.

Event sourced and sans-I/O. `handle(command, now)` = `decide` then `apply` each event;
replaying a game is `Game.create(...)` then `apply` for every logged event, which rebuilds
exactly the live state (crash recovery and `tuiz replay` rely on it), so `apply` never looks
at a clock and never recomputes a score.

Time: `now` is the server's clock in ms. Every command first catches up with deadlines that
passed (a late timer must not change outcomes): each overdue phase ends *at its deadline*,
not at `now`. The answering deadline is inclusive: an answer at exactly `phase_ends_at` is
accepted, so answering closes at `phase_ends_at + 1`, which is what `next_deadline` returns.

Seats: a `Join` from a device that already holds a seat is a reconnection (a
`PlayerConnection` event if it was away, else nothing), accepted even when locked, full or
finished. A kicked seat stays in `players` (`kicked=True`, for reports); its device may join
again as a new seat (new id, zero score) unless banned. Late joiners (setting `late_join`)
may join in any phase but answer only questions that open after they joined.
"""

from __future__ import annotations

import bisect
import dataclasses
import hmac
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tuiz.errors import ErrorCode
from tuiz.game.model import (
    AnswerAccepted,
    Command,
    End,
    Event,
    GameEnded,
    GameError,
    GamePaused,
    GameResumed,
    GameSettings,
    GameStarted,
    GameStatus,
    HostStep,
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
    PlayerState,
    Question,
    QuestionType,
    Quiz,
    Resume,
    RoomLocked,
    SetConnected,
    Skip,
    Standing,
    Start,
    StepRef,
    SubmitAnswer,
    Tick,
    refuse,
)
from tuiz.game.scoring import normalise_text, score_answer

MAX_ANSWER_TEXT = 200
SINGLE_CHOICE = (QuestionType.MULTIPLE_CHOICE, QuestionType.TRUE_FALSE, QuestionType.POLL)
QUESTION_PHASES = (
    Phase.QUESTION,
    Phase.ANSWERING,
    Phase.ANSWER_REVEAL,
    Phase.EXPLANATION,
    Phase.LEADERBOARD,
)
FINISHED_PHASES = (Phase.PODIUM, Phase.ENDED)
AFTER_REVEAL = (Phase.ANSWER_REVEAL, Phase.LEADERBOARD, Phase.EXPLANATION)
STEP_RANK = {
    # Host-driven games, in the TUIZ client's order within one question.
    Phase.COUNTDOWN: 0,
    Phase.QUESTION: 1,
    Phase.ANSWERING: 1,
    Phase.ANSWER_REVEAL: 2,
    Phase.LEADERBOARD: 3,
    Phase.EXPLANATION: 4,
}
PHASE_ORDER = {
    # Where a phase comes within the game, for a step a host names (`StepRef`); the
    # explanation and the leaderboard come in either order, so they share a place.
    Phase.WAITING: 0,
    Phase.COUNTDOWN: 1,
    Phase.QUESTION: 2,
    Phase.ANSWERING: 3,
    Phase.ANSWER_REVEAL: 4,
    Phase.EXPLANATION: 5,
    Phase.LEADERBOARD: 5,
    Phase.PODIUM: 6,
    Phase.ENDED: 6,
}


class _Memo:
    """The leaderboard order as of one standings version: derived from the game's state, so
    it takes no part in comparing two games (a live one and its replay are equal whether or
    not either has sorted yet)."""

    def __init__(self) -> None:
        self.version = -1
        self.shown: list[tuple[PlayerState, Standing]] = []
        self.negated: list[int] = []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Memo)

    __hash__ = None  # type: ignore[assignment]


def clean_name(name: str) -> str:
    """A nickname as shown: trimmed, inner whitespace collapsed to one space."""
    return " ".join(name.split())


def name_key(name: str) -> str:
    """What makes two nicknames 'the same': NFKC (full/half-width collide) and casefold."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


@dataclass(frozen=True, slots=True)
class Clock:
    """Where the game is in its timeline; small and immutable so `decide` can look ahead
    (catch up with passed deadlines) without touching the game."""

    phase: Phase = Phase.WAITING
    question_index: int = -1
    started_at: int = 0
    ends_at: int | None = None
    paused: bool = False
    remaining_ms: int | None = None  # while paused: what was left of the phase
    paused_at: int | None = None

    def due_at(self) -> int | None:
        """When a Tick changes something; answering stays open through its deadline ms."""
        if self.paused or self.ends_at is None:
            return None
        return self.ends_at + 1 if self.phase is Phase.ANSWERING else self.ends_at

    def evolve(self, event: Event) -> Clock:
        if isinstance(event, PhaseChanged):
            return Clock(event.phase, event.question_index, event.at, event.ends_at)
        if isinstance(event, GamePaused):
            return dataclasses.replace(
                self,
                paused=True,
                ends_at=None,
                remaining_ms=event.remaining_ms,
                paused_at=event.at,
            )
        if isinstance(event, GameResumed):
            return dataclasses.replace(
                self, paused=False, ends_at=event.ends_at, remaining_ms=None, paused_at=None
            )
        return self


class Game:
    """One game's state. Mutated only by `apply`; read through the properties and views."""

    def __init__(
        self,
        *,
        game_id: str,
        pin: str,
        quiz: Quiz,
        settings: GameSettings,
        host_id: str,
        host_device_id: str,
        created_at: int,
    ) -> None:
        self.game_id = game_id
        self.pin = pin
        self.quiz = quiz
        self.settings = settings
        self.host_id = host_id
        self.host_device_id = host_device_id
        self.created_at = created_at
        self.clock = Clock(started_at=created_at)
        self.locked = False
        self.host_connected = True
        self.started_at: int | None = None
        self.ended_at: int | None = None
        self.completed: bool | None = None
        self.players: dict[str, PlayerState] = {}
        self.banned_devices: set[str] = set()
        self._seat_by_device: dict[str, str] = {}  # device -> its latest seat (maybe kicked)
        self._names: dict[str, str] = {}  # name_key -> player id, seated players only
        # Kept as seats change, so a snapshot (one per join) is not a pass over every seat.
        self._seated_count = 0
        self._connected_count = 0  # seated and connected
        self._scored = False  # some answer earned points: until then every rank is 1
        # Shown standings change only at a reveal, a join or a kick (an answer's points stay
        # hidden until its reveal): seats in leaderboard order, and their scores, are sorted
        # once per change, not once per snapshot (every rejoin after a failover asks for one).
        self._standings_version = 0
        self._order = _Memo()
        self._answered: dict[str, int] = {}  # question id -> seated players who answered it
        # The question being answered: who may answer, who is still awaited, the tally.
        self._eligible: set[str] = set()
        self._waiting: set[str] = set()
        self._counts: dict[str, int] = {}
        # The current question's window: (shown at, answering deadline), once it is shown.
        self.answering_window: tuple[int, int | None] | None = None

    @classmethod
    def create(
        cls,
        *,
        game_id: str,
        pin: str,
        quiz: Quiz,
        settings: GameSettings,
        host_id: str,
        host_device_id: str,
        now: int,
    ) -> Game:
        """A game in its lobby; refuses a quiz the engine could not run (VALIDATION_ERROR)."""
        _check_quiz(quiz)
        return cls(
            game_id=game_id,
            pin=pin,
            quiz=quiz,
            settings=settings,
            host_id=host_id,
            host_device_id=host_device_id,
            created_at=now,
        )

    # -- read-only views -------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.clock.phase

    @property
    def status(self) -> GameStatus:
        if self.clock.phase is Phase.WAITING:
            return GameStatus.WAITING
        if self.clock.phase in FINISHED_PHASES:
            return GameStatus.FINISHED
        return GameStatus.PAUSED if self.clock.paused else GameStatus.ACTIVE

    @property
    def question_index(self) -> int:
        """-1 in the lobby; at the podium, the last question played."""
        return self.clock.question_index

    @property
    def current_question(self) -> Question | None:
        if self.clock.phase in QUESTION_PHASES:
            return self.quiz.questions[self.clock.question_index]
        return None

    @property
    def phase_started_at(self) -> int:
        return self.clock.started_at

    @property
    def phase_ends_at(self) -> int | None:
        return self.clock.ends_at

    @property
    def paused(self) -> bool:
        return self.clock.paused

    @property
    def paused_at(self) -> int | None:
        return self.clock.paused_at

    @property
    def remaining_ms(self) -> int | None:
        """While paused: the time the current phase had left (None: it had no deadline)."""
        return self.clock.remaining_ms

    def next_deadline(self) -> int | None:
        """When the runtime should send `Tick` (None: nothing scheduled).

        For answering this is `phase_ends_at + 1`: the deadline ms itself still takes answers.
        """
        return self.clock.due_at()

    def time_left(self, now: int) -> int | None:
        """ms left in the current phase (kept as it was while paused); None: no deadline."""
        if self.clock.paused:
            return self.clock.remaining_ms
        if self.clock.ends_at is None:
            return None
        return max(0, self.clock.ends_at - now)

    def player_by_device(self, device_id: str) -> PlayerState | None:
        """The device's latest seat, which may be a kicked one (check `.kicked`)."""
        player_id = self._seat_by_device.get(device_id)
        return None if player_id is None else self.players[player_id]

    def retried_seat(self, device_id: str, key_hash: str | None) -> PlayerState | None:
        """The device's seat when `key_hash` is the one its join carried: the same join asked
        again after its reply was lost. Any other key, or none, finds nothing."""
        seat = self.player_by_device(device_id)
        if seat is None or seat.kicked or seat.key_hash is None or key_hash is None:
            return None
        return seat if hmac.compare_digest(seat.key_hash, key_hash) else None

    @property
    def seated_count(self) -> int:
        """Players in the game (not kicked), kept as seats change."""
        return self._seated_count

    def seated(self) -> Iterable[PlayerState]:
        """Players who are in the game (not kicked)."""
        return (p for p in self.players.values() if not p.kicked)

    def unrevealed(self, player: PlayerState) -> AnswerAccepted | None:
        """The player's answer to the question still open: its outcome is secret until the
        reveal, so nothing shown (score, rank, streak) may include it yet."""
        question = self.current_question
        if question is None or self.clock.phase not in (Phase.QUESTION, Phase.ANSWERING):
            return None
        return player.answers.get(question.id)

    def standing(self, player: PlayerState) -> Standing:
        """Score, correct count and streak as of the last reveal (what anyone may be shown)."""
        hidden = self.unrevealed(player)
        if hidden is None:
            return Standing(player.score, player.correct_count, player.streak)
        return Standing(
            player.score - hidden.points,
            player.correct_count - (1 if hidden.correct else 0),
            player.streak_before,
        )

    def _standings(self) -> tuple[list[tuple[PlayerState, Standing]], list[int]]:
        """Seated players with their shown standing in leaderboard order, and their negated
        scores ascending (for `rank_of`); sorted again only after the standings changed."""
        memo = self._order
        if memo.version != self._standings_version:
            shown = [(p, self.standing(p)) for p in self.seated()]
            shown.sort(key=lambda ps: (-ps[1].score, ps[0].name.casefold(), ps[0].id))
            memo.version, memo.shown = self._standings_version, shown
            memo.negated = [-s.score for _, s in shown]
        return memo.shown, memo.negated

    def leaderboard(self, top: int | None = None) -> list[dict[str, Any]]:
        """Competition ranking (1, 2, 2, 4) on revealed scores; equal scores share a rank,
        listed by name then id."""
        shown, _ = self._standings()
        rows: list[dict[str, Any]] = []
        rank = 0
        previous: int | None = None
        for position, (p, standing) in enumerate(shown, start=1):
            if standing.score != previous:
                rank, previous = position, standing.score
            if top is not None and position > top:
                break
            rows.append(
                {
                    "player_id": p.id,
                    "name": p.name,
                    "score": standing.score,
                    "rank": rank,
                    "correct_count": standing.correct_count,
                }
            )
        return rows

    def ranks(self) -> dict[str, int]:
        """Every seated player's rank in one O(n log n) pass (for per-player broadcasts)."""
        return {row["player_id"]: row["rank"] for row in self.leaderboard()}

    def rank_of(self, player_id: str) -> int | None:
        """One player's rank (1 + how many scored more); None for unknown or kicked players."""
        player = self.players.get(player_id)
        if player is None or player.kicked:
            return None
        if not self._scored:  # every score is 0
            return 1
        _, negated = self._standings()
        return 1 + bisect.bisect_left(negated, -self.standing(player).score)

    def answer_counts(self) -> dict[str, int]:
        """The current question's tally: choice id -> count (type_answer: normalised text)."""
        return dict(self._counts)

    def answered_count(self) -> int:
        question = self.current_question
        if question is None:
            return 0
        return self._answered.get(question.id, 0)

    def revealed(self) -> bool:
        """Whether the current question's answer may be shown (answering is over)."""
        return self.clock.phase in (Phase.ANSWER_REVEAL, Phase.EXPLANATION, Phase.LEADERBOARD)

    def public_question(self, reveal: bool) -> dict[str, Any] | None:
        """The current question as clients see it: correctness only when `reveal`."""
        question = self.current_question
        if question is None:
            return None
        choices = []
        for c in question.choices:
            choice: dict[str, Any] = {"id": c.id, "text": c.text, "image_url": c.image_url}
            if reveal:
                choice["is_correct"] = c.is_correct
            choices.append(choice)
        body: dict[str, Any] = {
            "id": question.id,
            "index": self.clock.question_index,
            "count": len(self.quiz.questions),
            "type": question.type.value,
            "text": question.text,
            "image_url": question.image_url,
            "points": question.points,
            "show_question_time": question.show_question_time,
            "answering_time": question.answering_time,
            "choices": choices,
        }
        if reveal:
            if question.type is QuestionType.TYPE_ANSWER:
                body["accepted_answers"] = list(question.accepted_answers) or [
                    c.text for c in question.choices if c.is_correct
                ]
            if question.explanation is not None:
                body["explanation"] = dataclasses.asdict(question.explanation)
        return body

    def snapshot(self, player_id: str | None, now: int | None = None) -> dict[str, Any]:
        """What a (re)connecting player, or the host (None), needs to draw the screen.

        `now` gives `time_left_ms` (without it, only while paused). A player's own answer
        shows its correctness and points only once the question is revealed.
        """
        question = self.current_question
        reveal = self.revealed()
        snap: dict[str, Any] = {
            "game_id": self.game_id,
            "pin": self.pin,
            "status": self.status.value,
            "phase": self.clock.phase.value,
            "question_index": self.clock.question_index,
            "question_count": len(self.quiz.questions),
            "question_id": question.id if question else None,
            "question": self.public_question(reveal),
            "phase_started_at": self.clock.started_at,
            "phase_ends_at": self.clock.ends_at,
            "time_left_ms": self.time_left(now) if now is not None else self.clock.remaining_ms,
            "paused": self.clock.paused,
            "locked": self.locked,
            "players_count": self.seated_count,
            "connected_count": self._connected_count,
            "answered_count": self.answered_count(),
            "top": None,
        }
        if self.clock.phase in (Phase.LEADERBOARD, *FINISHED_PHASES):
            snap["top"] = self.leaderboard(self.settings.leaderboard_size)
        if player_id is None:
            snap["answer_counts"] = self.answer_counts() if question else None
            return snap
        player = self.players.get(player_id)
        if player is None:
            snap["me"] = None
            return snap
        answer = player.answers.get(question.id) if question else None
        mine: dict[str, Any] | None = None
        if answer is not None:
            mine = {
                "answer_id": answer.answer_id,
                "choice_ids": list(answer.choice_ids),
                "text": answer.text,
                "elapsed_ms": answer.elapsed_ms,
                "at": answer.at,
            }
            if reveal:
                mine.update(correct=answer.correct, points=answer.points, streak=answer.streak)
        standing = self.standing(player)
        snap["me"] = {
            "player_id": player.id,
            "name": player.name,
            "kicked": player.kicked,
            "score": standing.score,
            "streak": standing.streak,
            "correct_count": standing.correct_count,
            "rank": self.rank_of(player.id),
            "answer": mine,
            "can_answer": (
                self.clock.phase is Phase.ANSWERING
                and not self.clock.paused
                and player.id in self._eligible
                and answer is None
                and not player.kicked
            ),
        }
        if reveal and question is not None:
            snap["answer_counts"] = self.answer_counts()
        return snap

    # -- commands --------------------------------------------------------------------------

    def handle(self, command: Command, now: int) -> list[Event]:
        """Decide, then apply; a refused command raises `GameError` and changes nothing."""
        events = self.decide(command, now)
        for event in events:
            self.apply(event)
        return events

    def decide(self, command: Command, now: int) -> list[Event]:
        """The events `command` at `now` leads to, without changing the game.

        Deadlines that passed before `now` are caught up with first (their events lead the
        list), so every command sees the game as it is at `now`.
        """
        events = self._catch_up(now)
        clock = self.clock
        for event in events:
            clock = clock.evolve(event)
        if isinstance(command, Tick):
            return events
        if isinstance(command, SubmitAnswer):
            return events + self._decide_answer(command, clock, now)
        if isinstance(command, Join):
            return events + self._decide_join(command, clock, now)
        if isinstance(command, SetConnected):
            return events + self._decide_connected(command, now)
        if command.actor != self.host_id:
            raise refuse(ErrorCode.FORBIDDEN, "only the host can do this")
        if isinstance(command, (Start, Next, Skip)) and _left(clock, command.from_step):
            return events  # the step it names was taken already: a repeat changes nothing
        if isinstance(command, Start):
            return events + self._decide_start(clock, now)
        if isinstance(command, Next):
            return events + self._decide_next(clock, now)
        if isinstance(command, Skip):
            return events + self._decide_skip(clock, now)
        if isinstance(command, Pause):
            return events + self._decide_pause(clock, now)
        if isinstance(command, Resume):
            return events + self._decide_resume(clock, now)
        if isinstance(command, Lock):
            return events + self._decide_lock(command, clock, now)
        if isinstance(command, Kick):
            return events + self._decide_kick(command, now)
        if isinstance(command, End):
            return events + self._decide_end(clock, now)
        if isinstance(command, HostStep):
            return events + self._decide_step(command, clock, now)
        raise refuse(ErrorCode.UNKNOWN_EVENT, f"unknown command {type(command).__name__}")

    def _catch_up(self, now: int) -> list[Event]:
        """Phase changes for every deadline up to `now`, each dated at its deadline."""
        events: list[Event] = []
        clock = self.clock
        while (due := clock.due_at()) is not None and due <= now:
            assert clock.ends_at is not None
            for event in self._leave(clock, clock.ends_at):
                clock = clock.evolve(event)
                events.append(event)
        return events

    def _leave(self, clock: Clock, at: int) -> list[Event]:
        """The events that end `clock`'s phase at `at` (a deadline, Next or Skip)."""
        index = clock.question_index
        question = self.quiz.questions[index]
        if clock.phase is Phase.QUESTION:
            return [self._phase(Phase.ANSWERING, index, at, question.answering_time)]
        if clock.phase is Phase.ANSWERING:
            return [
                self._phase(Phase.ANSWER_REVEAL, index, at, self._auto(self.settings.reveal_time))
            ]
        if clock.phase is Phase.ANSWER_REVEAL and self._has_explanation(question):
            wait = self._auto(question.show_explanation_time)
            return [self._phase(Phase.EXPLANATION, index, at, wait)]
        if clock.phase in (Phase.ANSWER_REVEAL, Phase.EXPLANATION):
            if index + 1 >= len(self.quiz.questions):
                return [
                    PhaseChanged(Phase.PODIUM, index, None, at, None),
                    GameEnded(at=at, completed=True),
                ]
            wait = self._auto(self.settings.leaderboard_time)
            return [self._phase(Phase.LEADERBOARD, index, at, wait)]
        if clock.phase is Phase.LEADERBOARD:
            return [self._enter_question(index + 1, at)]
        if clock.phase is Phase.COUNTDOWN:
            return [self._phase(Phase.ANSWERING, index, at, question.answering_time)]
        raise AssertionError(f"no phase follows {clock.phase}")  # pragma: no cover

    def _enter_question(self, index: int, at: int) -> PhaseChanged:
        question = self.quiz.questions[index]
        if question.show_question_time <= 0:
            return self._phase(Phase.ANSWERING, index, at, question.answering_time)
        return self._phase(Phase.QUESTION, index, at, self._auto(question.show_question_time))

    def _phase(self, phase: Phase, index: int, at: int, seconds: int | None) -> PhaseChanged:
        question_id = self.quiz.questions[index].id
        ends_at = None if seconds is None else at + max(seconds, 0) * 1000
        return PhaseChanged(phase, index, question_id, at, ends_at)

    def _auto(self, seconds: int) -> int | None:
        """A phase's length, or None (wait for the host) without auto-advance; the TUIZ
        client's host drives every step itself."""
        if self.settings.tuiz_client or not self.settings.auto_advance:
            return None
        return seconds

    def _has_explanation(self, question: Question) -> bool:
        return question.explanation is not None and self.settings.show_explanation

    # -- host ------------------------------------------------------------------------------

    def _decide_start(self, clock: Clock, now: int) -> list[Event]:
        if clock.phase is not Phase.WAITING:
            raise refuse(ErrorCode.WRONG_PHASE, "the game has already started")
        if not self.quiz.questions:
            raise refuse(ErrorCode.VALIDATION_ERROR, "the quiz has no questions")
        if self.settings.tuiz_client:  # the host opens question 1 after its countdown
            return [GameStarted(at=now), PhaseChanged(Phase.COUNTDOWN, 0, None, now, None)]
        return [GameStarted(at=now), self._enter_question(0, now)]

    def _decide_step(self, command: HostStep, clock: Clock, now: int) -> list[Event]:
        """A host-driven step; one the game is at or past already changes nothing."""
        if clock.phase is Phase.WAITING:
            raise refuse(ErrorCode.WRONG_PHASE, "the game has not started")
        if clock.phase in FINISHED_PHASES:
            return []
        if clock.paused:
            raise refuse(ErrorCode.WRONG_PHASE, "the game is paused; resume it")
        count = len(self.quiz.questions)
        opened = (
            clock.question_index - 1 if clock.phase is Phase.COUNTDOWN else clock.question_index
        )
        to, index = command.to, command.question_index
        if to is Phase.QUESTION:
            to = Phase.ANSWERING  # the client's "question" is our answering: answers are open
        if index is None:
            index = opened + 1 if to in (Phase.COUNTDOWN, Phase.PODIUM) else opened
        if to is Phase.COUNTDOWN and index >= count:
            to = Phase.PODIUM
        if to is Phase.PODIUM:
            if opened < count - 1 or clock.phase in (Phase.QUESTION, Phase.ANSWERING):
                raise refuse(ErrorCode.WRONG_PHASE, "the last question is not over yet")
            return [PhaseChanged(Phase.PODIUM, opened, None, now, None), GameEnded(now, True)]
        if to not in STEP_RANK or not 0 <= index < count:
            raise refuse(ErrorCode.VALIDATION_ERROR, f"no step {to.value} for question {index}")
        here = (clock.question_index, STEP_RANK[clock.phase])
        if (index, STEP_RANK[to]) <= here:
            return []  # already there or past it: a repeated or late call
        if to is Phase.COUNTDOWN:
            if index != opened + 1 or clock.phase not in AFTER_REVEAL:
                raise refuse(ErrorCode.WRONG_PHASE, "finish the current question first")
            return [PhaseChanged(Phase.COUNTDOWN, index, None, now, None)]
        if index != clock.question_index:
            raise refuse(ErrorCode.WRONG_PHASE, f"question {index} is not the current one")
        question = self.quiz.questions[index]
        if to is Phase.ANSWERING:
            if clock.phase is not Phase.COUNTDOWN:
                raise refuse(ErrorCode.WRONG_PHASE, "the question is already open")
            # The client shows the question for show_question_time, then takes answers for
            # answering_time; the server's timers keep both (answers close at the deadline).
            if question.show_question_time <= 0:
                return [self._phase(Phase.ANSWERING, index, now, question.answering_time)]
            return [self._phase(Phase.QUESTION, index, now, question.show_question_time)]
        if clock.phase in (Phase.COUNTDOWN, Phase.QUESTION) and to is not Phase.ANSWER_REVEAL:
            raise refuse(ErrorCode.WRONG_PHASE, "reveal the answer first")
        if clock.phase is Phase.COUNTDOWN:
            raise refuse(ErrorCode.WRONG_PHASE, "the question has not been opened")
        return [self._phase(to, index, now, None)]

    def _require_running(self, clock: Clock, action: str) -> None:
        if clock.phase is Phase.WAITING:
            raise refuse(ErrorCode.WRONG_PHASE, f"cannot {action}: the game has not started")
        if clock.phase in FINISHED_PHASES:
            raise refuse(ErrorCode.WRONG_PHASE, f"cannot {action}: the game is over")

    def _decide_next(self, clock: Clock, now: int) -> list[Event]:
        self._require_running(clock, "advance")
        if clock.paused:
            raise refuse(ErrorCode.WRONG_PHASE, "cannot advance: the game is paused; resume it")
        return self._leave(clock, now)

    def _decide_skip(self, clock: Clock, now: int) -> list[Event]:
        self._require_running(clock, "skip")
        if clock.paused:
            raise refuse(ErrorCode.WRONG_PHASE, "cannot skip: the game is paused; resume it")
        if clock.phase not in (Phase.QUESTION, Phase.ANSWERING):
            raise refuse(ErrorCode.WRONG_PHASE, f"nothing to skip in phase {clock.phase.value}")
        wait = self._auto(self.settings.reveal_time)
        return [self._phase(Phase.ANSWER_REVEAL, clock.question_index, now, wait)]

    def _decide_pause(self, clock: Clock, now: int) -> list[Event]:
        self._require_running(clock, "pause")
        if clock.paused:
            raise refuse(ErrorCode.WRONG_PHASE, "the game is already paused")
        remaining = None if clock.ends_at is None else max(0, clock.ends_at - now)
        return [GamePaused(at=now, remaining_ms=remaining)]

    def _decide_resume(self, clock: Clock, now: int) -> list[Event]:
        self._require_running(clock, "resume")
        if not clock.paused:
            raise refuse(ErrorCode.WRONG_PHASE, "the game is not paused")
        remaining = clock.remaining_ms
        return [GameResumed(at=now, ends_at=None if remaining is None else now + remaining)]

    def _decide_lock(self, command: Lock, clock: Clock, now: int) -> list[Event]:
        if clock.phase in FINISHED_PHASES:
            raise refuse(ErrorCode.WRONG_PHASE, "cannot lock: the game is over")
        if command.locked == self.locked:
            return []
        return [RoomLocked(locked=command.locked, at=now)]

    def _decide_kick(self, command: Kick, now: int) -> list[Event]:
        player = self.players.get(command.player_id)
        if player is None:
            raise refuse(ErrorCode.NOT_FOUND, "no such player in this game")
        if player.kicked:
            return []  # already out; to ban a device, kick its current seat with ban
        return [PlayerKicked(player.id, player.device_id, command.ban, now)]

    def _decide_end(self, clock: Clock, now: int) -> list[Event]:
        if clock.phase in FINISHED_PHASES:
            raise refuse(ErrorCode.WRONG_PHASE, "the game is already over")
        index = clock.question_index
        return [
            PhaseChanged(Phase.ENDED, index, None, now, None),
            GameEnded(at=now, completed=False),
        ]

    # -- players ---------------------------------------------------------------------------

    def _decide_join(self, command: Join, clock: Clock, now: int) -> list[Event]:
        seat = self.player_by_device(command.device_id)
        if seat is not None and not seat.kicked:
            # Same device: a reconnection to its seat, allowed even when locked or full.
            return [] if seat.connected else [PlayerConnection(seat.id, True, now)]
        if clock.phase in FINISHED_PHASES:
            raise refuse(ErrorCode.WRONG_PHASE, "the game is over")
        if command.device_id in self.banned_devices:
            raise refuse(ErrorCode.FORBIDDEN, "this device is banned from the game")
        if clock.phase is not Phase.WAITING and not self.settings.late_join:
            raise refuse(ErrorCode.WRONG_PHASE, "the game has started and late join is off")
        if self.locked:
            raise refuse(ErrorCode.GAME_LOCKED, "the game is locked")
        if len(self._names) >= self.settings.max_players:
            raise refuse(ErrorCode.GAME_FULL, f"the game is full ({self.settings.max_players})")
        name = clean_name(command.name)
        if not 1 <= len(name) <= self.settings.nickname_max:
            raise refuse(
                ErrorCode.VALIDATION_ERROR,
                f"nickname must be 1 to {self.settings.nickname_max} characters",
            )
        if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
            raise refuse(ErrorCode.VALIDATION_ERROR, "nickname has control characters")
        if name_key(name) in self._names:
            raise refuse(ErrorCode.CONFLICT, "nickname already taken in this game")
        if command.player_id in self.players or command.player_id == self.host_id:
            raise refuse(ErrorCode.CONFLICT, "player id already in use")
        return [PlayerJoined(command.player_id, command.device_id, name, now, command.key_hash)]

    def _decide_connected(self, command: SetConnected, now: int) -> list[Event]:
        if command.actor not in (None, command.player_id, self.host_id):
            raise refuse(ErrorCode.FORBIDDEN, "cannot change another player's connection")
        if command.player_id == self.host_id:
            current = self.host_connected
        elif (player := self.players.get(command.player_id)) is not None:
            current = player.connected
        else:
            raise refuse(ErrorCode.NOT_FOUND, "no such player in this game")
        if current == command.connected:
            return []
        return [PlayerConnection(command.player_id, command.connected, now)]

    def _decide_answer(self, command: SubmitAnswer, clock: Clock, now: int) -> list[Event]:
        player = self.players.get(command.actor or "")
        if player is None or player.kicked:
            raise refuse(ErrorCode.FORBIDDEN, "not a player in this game")
        previous = player.answers.get(command.question_id)
        if previous is not None:
            if previous.answer_id == command.answer_id:
                return []  # a retry: the runtime acknowledges from state
            raise refuse(ErrorCode.CONFLICT, "already answered this question")
        if clock.phase not in QUESTION_PHASES:
            raise refuse(ErrorCode.WRONG_PHASE, "no question is open")
        question = self.quiz.questions[clock.question_index]
        if command.question_id != question.id:
            raise refuse(ErrorCode.VALIDATION_ERROR, "not the current question")
        if clock.paused:
            raise refuse(ErrorCode.WRONG_PHASE, "the game is paused")
        if clock.phase is Phase.QUESTION:
            raise refuse(ErrorCode.WRONG_PHASE, "answers are not open yet")
        if clock.phase is not Phase.ANSWERING:
            raise refuse(ErrorCode.TOO_LATE, "answering is closed for this question")
        assert clock.ends_at is not None
        if now > clock.ends_at:  # pragma: no cover - the catch-up has closed answering by then
            raise refuse(ErrorCode.TOO_LATE, "answering is closed for this question")
        # Answering opened during this decision's catch-up: the sets are not applied yet.
        opened_now = (
            self.clock.phase is not Phase.ANSWERING
            or self.clock.question_index != clock.question_index
        )
        eligible = {p.id for p in self.seated()} if opened_now else self._eligible
        if player.id not in eligible:
            raise refuse(ErrorCode.WRONG_PHASE, "joined after this question opened; wait")
        choice_ids, text = _validated(question, command)
        # Elapsed from the deadline, so time spent paused is not counted against the player.
        answering_ms = question.answering_time * 1000
        elapsed = min(max(answering_ms - (clock.ends_at - now), 0), answering_ms)
        score = score_answer(
            question,
            choice_ids,
            text,
            elapsed_ms=elapsed,
            streak_before=player.streak,
            settings=self.settings,
        )
        accepted = AnswerAccepted(
            player_id=player.id,
            question_id=question.id,
            answer_id=command.answer_id,
            choice_ids=choice_ids,
            text=text,
            elapsed_ms=elapsed,
            correct=score.correct,
            points=score.points,
            streak=score.streak,
            at=now,
            bonus=score.bonus,
        )
        waiting = {p.id for p in self.seated() if p.connected} if opened_now else self._waiting
        if waiting <= {player.id}:
            # The last awaited answer: close now, in the same decision.
            wait = self._auto(self.settings.reveal_time)
            return [accepted, self._phase(Phase.ANSWER_REVEAL, clock.question_index, now, wait)]
        return [accepted]

    # -- evolve ----------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Evolve by one event; the only place state changes, and it never reads a clock."""
        self.clock = self.clock.evolve(event)
        if not isinstance(event, (AnswerAccepted, PlayerConnection)):
            self._standings_version += 1  # a reveal, a join, a kick... may reorder
        if isinstance(event, PhaseChanged):
            self._apply_phase(event)
        elif isinstance(event, AnswerAccepted):
            self._apply_answer(event)
        elif isinstance(event, PlayerJoined):
            seat = PlayerState(
                event.player_id, event.device_id, event.name, event.at, event.key_hash
            )
            self.players[seat.id] = seat
            self._seat_by_device[seat.device_id] = seat.id
            self._names[name_key(seat.name)] = seat.id
            self._seated_count += 1
            self._connected_count += seat.connected
        elif isinstance(event, PlayerConnection):
            self._apply_connection(event)
        elif isinstance(event, PlayerKicked):
            player = self.players[event.player_id]
            if not player.kicked:
                self._seated_count -= 1
                self._connected_count -= player.connected
                for question_id in player.answers:
                    self._answered[question_id] -= 1
            player.kicked = True
            player.connected = False
            if self._names.get(name_key(player.name)) == player.id:
                del self._names[name_key(player.name)]
            self._waiting.discard(player.id)
            if event.banned:
                self.banned_devices.add(event.device_id)
        elif isinstance(event, RoomLocked):
            self.locked = event.locked
        elif isinstance(event, GameStarted):
            self.started_at = event.at
        elif isinstance(event, GameEnded):
            self.ended_at = event.at
            self.completed = event.completed
        # GamePaused / GameResumed only move the clock.

    def _apply_phase(self, event: PhaseChanged) -> None:
        self._apply_window(event)
        if event.phase is Phase.ANSWERING:
            self._eligible = {p.id for p in self.seated()}
            self._waiting = {p.id for p in self.seated() if p.connected}
            self._counts = {}
            question = self.quiz.questions[event.question_index]
            if question.type is not QuestionType.TYPE_ANSWER:
                self._counts = {c.id: 0 for c in question.choices}
        elif event.phase is Phase.QUESTION:
            self._eligible, self._waiting = set(), set()
            question = self.quiz.questions[event.question_index]
            self._counts = (
                {}
                if question.type is QuestionType.TYPE_ANSWER
                else {c.id: 0 for c in question.choices}
            )
        elif event.phase is Phase.ANSWER_REVEAL:
            question = self.quiz.questions[event.question_index]
            if question.type is not QuestionType.POLL:
                for player_id in self._eligible:  # empty when skipped before answers opened
                    player = self.players[player_id]
                    if question.id not in player.answers:
                        player.streak = 0  # a missed question breaks the streak
            self._eligible, self._waiting = set(), set()
        elif event.phase in FINISHED_PHASES:
            self._eligible, self._waiting = set(), set()

    def _apply_window(self, event: PhaseChanged) -> None:
        if event.phase is Phase.COUNTDOWN:
            self.answering_window = None
        elif event.phase is Phase.QUESTION:
            q = self.quiz.questions[event.question_index]
            end = event.at + (q.show_question_time + q.answering_time) * 1000
            self.answering_window = (event.at, end)
        elif event.phase is Phase.ANSWERING:
            window = self.answering_window
            self.answering_window = (window[0] if window else event.at, event.ends_at)

    def _apply_answer(self, event: AnswerAccepted) -> None:
        player = self.players[event.player_id]
        if event.question_id not in player.answers and not player.kicked:
            self._answered[event.question_id] = self._answered.get(event.question_id, 0) + 1
        player.answers[event.question_id] = event
        if self.unrevealed(player) is not event:
            self._standings_version += 1  # points shown at once (never so today): reorder
        player.streak_before = player.streak
        player.score += event.points
        self._scored = self._scored or event.points > 0
        player.streak = event.streak
        if event.correct:
            player.correct_count += 1
        self._waiting.discard(player.id)
        if event.text is not None:
            key = normalise_text(event.text)
            self._counts[key] = self._counts.get(key, 0) + 1
        for choice_id in event.choice_ids:
            self._counts[choice_id] = self._counts.get(choice_id, 0) + 1

    def _apply_connection(self, event: PlayerConnection) -> None:
        if event.player_id == self.host_id:
            self.host_connected = event.connected
            return
        player = self.players[event.player_id]
        if not player.kicked:
            self._connected_count += event.connected - player.connected
        player.connected = event.connected
        question = self.current_question
        if not event.connected:
            self._waiting.discard(player.id)
        elif (
            self.clock.phase is Phase.ANSWERING
            and question is not None
            and player.id in self._eligible
            and question.id not in player.answers
            and not player.kicked
        ):
            self._waiting.add(player.id)


def _left(clock: Clock, step: StepRef | None) -> bool:
    """True when a host command names the step it advances from and the game has left that
    step (a repeat of a command already applied); refused when the game has not reached it."""
    if step is None or (clock.phase, clock.question_index) == (step.phase, step.question_index):
        return False
    here = (clock.question_index, PHASE_ORDER[clock.phase])
    if (step.question_index, PHASE_ORDER[step.phase]) > here:
        raise refuse(ErrorCode.WRONG_PHASE, "the game has not reached that step yet")
    return True


def _validated(question: Question, command: SubmitAnswer) -> tuple[tuple[str, ...], str | None]:
    """The answer's choice ids and text as stored, or VALIDATION_ERROR if it cannot fit."""
    if question.type is QuestionType.TYPE_ANSWER:
        text = (command.text or "").strip()
        if not 1 <= len(text) <= MAX_ANSWER_TEXT:
            raise refuse(
                ErrorCode.VALIDATION_ERROR, f"answer text must be 1 to {MAX_ANSWER_TEXT} characters"
            )
        return (), text
    known = {c.id for c in question.choices}
    chosen = tuple(command.choice_ids)
    if any(c not in known for c in chosen):
        raise refuse(ErrorCode.VALIDATION_ERROR, "unknown choice for this question")
    if question.type in SINGLE_CHOICE and len(chosen) != 1:
        raise refuse(ErrorCode.VALIDATION_ERROR, "choose exactly one answer")
    if not chosen:
        raise refuse(ErrorCode.VALIDATION_ERROR, "choose at least one answer")
    if len(set(chosen)) != len(chosen):
        raise refuse(ErrorCode.VALIDATION_ERROR, "the same choice twice")
    return chosen, None


def _check_quiz(quiz: Quiz) -> None:
    """Ids the engine keys on must be unique; timings and points must not be negative."""
    question_ids = [q.id for q in quiz.questions]
    if len(set(question_ids)) != len(question_ids):
        raise refuse(ErrorCode.VALIDATION_ERROR, "question ids must be unique in a quiz")
    for q in quiz.questions:
        choice_ids = [c.id for c in q.choices]
        if len(set(choice_ids)) != len(choice_ids):
            raise refuse(ErrorCode.VALIDATION_ERROR, f"question {q.id}: choice ids repeat")
        if q.type is not QuestionType.TYPE_ANSWER and not q.choices:
            raise refuse(ErrorCode.VALIDATION_ERROR, f"question {q.id}: no choices")
        if min(q.points, q.show_question_time, q.answering_time, q.show_explanation_time) < 0:
            raise refuse(ErrorCode.VALIDATION_ERROR, f"question {q.id}: negative points or time")


__all__ = ["Clock", "Game", "GameError", "clean_name", "name_key"]
