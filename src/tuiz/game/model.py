"""The engine's vocabulary: quiz content, settings, commands, events and errors.

Everything here is plain data (frozen dataclasses) and serialises to JSON objects with
`to_dict` / `event_from_dict`, because events are what the event log stores and replays.
Times are integer milliseconds since the Unix epoch, as the server clock gives them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

from tuiz.errors import ErrorCode, TuizError


class QuestionType(StrEnum):
    MULTIPLE_CHOICE = "multiple_choice"
    TRUE_FALSE = "true_false"
    MULTI_SELECT = "multi_select"
    TYPE_ANSWER = "type_answer"
    POLL = "poll"


class Phase(StrEnum):
    """TUIZ client phase names, in the order a question goes through them."""

    WAITING = "waiting"  # lobby
    COUNTDOWN = "countdown"  # host-driven games: the next question is chosen, not yet shown
    QUESTION = "question"  # question shown, answers not yet open
    ANSWERING = "answering"
    ANSWER_REVEAL = "answer_reveal"
    EXPLANATION = "explanation"
    LEADERBOARD = "leaderboard"
    PODIUM = "podium"  # after the last question: the game is finished
    ENDED = "ended"  # ended by the host before the last question


class GameStatus(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    PAUSED = "paused"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    text: str
    is_correct: bool = False
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    title: str | None = None
    text: str | None = None
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: QuestionType
    text: str
    points: int = 1000
    show_question_time: int = 10  # seconds
    answering_time: int = 30  # seconds
    show_explanation_time: int = 5  # seconds
    choices: tuple[Choice, ...] = ()
    accepted_answers: tuple[str, ...] = ()  # type_answer
    explanation: Explanation | None = None
    image_url: str | None = None


@dataclass(frozen=True, slots=True)
class Quiz:
    id: str
    title: str
    questions: tuple[Question, ...]


@dataclass(frozen=True, slots=True)
class GameSettings:
    max_players: int = 400
    auto_advance: bool = True
    late_join: bool = True  # join between questions once the game started
    streak_bonus: bool = False
    show_explanation: bool = True
    time_bonus: bool = True  # False: a correct answer earns full points whatever its time
    reveal_time: int = 5  # seconds the answer reveal stays up when auto-advancing
    leaderboard_time: int = 5  # seconds
    leaderboard_size: int = 10  # top N sent to everyone
    nickname_max: int = 20
    # The TUIZ web client runs this game: its host drives every step (`HostStep`), seats
    # are bound to sockets by device, and `GET /players` lists device ids (see
    # docs/tuiz-client-protocol.md for what that exposes). Off for tuiz's own pages.
    tuiz_client: bool = False


# -- commands ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """Something a host, player or timer asks of the game. `actor` is a player id or None
    for the system (timers); host commands check the actor is the host."""

    actor: str | None


@dataclass(frozen=True, slots=True)
class Join(Command):
    player_id: str
    device_id: str
    name: str
    key_hash: str | None = None  # SHA-256 hex of the client's join key: a lost reply's retry


@dataclass(frozen=True, slots=True)
class SetConnected(Command):
    player_id: str
    connected: bool


@dataclass(frozen=True, slots=True)
class StepRef:
    """A step of the game as the host saw it: a phase of one question (-1 in the lobby)."""

    phase: Phase
    question_index: int


@dataclass(frozen=True, slots=True)
class Start(Command):
    """Leave the lobby. With `from_step` (the lobby), a start the game has already taken
    changes nothing instead of being refused: safe to send again."""

    from_step: StepRef | None = None


@dataclass(frozen=True, slots=True)
class Next(Command):
    """Advance to the next phase now (host), e.g. from the leaderboard to the next question.

    With `from_step`, only from that step: when the game is no longer there (this very
    command was applied already, or a timer moved on), it changes nothing. Such a step can be
    sent again after its reply was lost (an owner's death) without advancing twice."""

    from_step: StepRef | None = None


@dataclass(frozen=True, slots=True)
class Skip(Command):
    """End the current question's answering now and reveal (`from_step`: as for `Next`)."""

    from_step: StepRef | None = None


@dataclass(frozen=True, slots=True)
class Pause(Command):
    pass


@dataclass(frozen=True, slots=True)
class Resume(Command):
    pass


@dataclass(frozen=True, slots=True)
class Lock(Command):
    locked: bool


@dataclass(frozen=True, slots=True)
class Kick(Command):
    player_id: str
    ban: bool = False  # also refuse the device from joining again


@dataclass(frozen=True, slots=True)
class End(Command):
    pass


@dataclass(frozen=True, slots=True)
class SubmitAnswer(Command):
    question_id: str
    answer_id: str  # client-generated; the same id again is an idempotent retry
    choice_ids: tuple[str, ...] = ()  # multiple_choice / true_false / poll: one; multi_select
    text: str | None = None  # type_answer


@dataclass(frozen=True, slots=True)
class HostStep(Command):
    """Host-driven games: go to `to` for question `question_index` (None: the question
    opened last, or the one after it for COUNTDOWN/PODIUM). Idempotent: a step the game
    is already at or past changes nothing, so a repeated or late call is harmless."""

    to: Phase
    question_index: int | None = None


@dataclass(frozen=True, slots=True)
class Tick(Command):
    """The runtime's timer fired: advance any phase whose deadline has passed."""


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """A fact the game decided. `type` is the wire/event-log name."""

    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        # Every event's fields are flat (str, int, bool, enum, tuple of str): a shallow copy is
        # what `dataclasses.asdict` gives, without its recursive deep copy (once per answer).
        out: dict[str, Any] = {"type": self.type}
        for name in _field_names(type(self)):
            out[name] = getattr(self, name)
        return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type[Event]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class PlayerJoined(Event):
    type: ClassVar[str] = "game:player-joined"
    player_id: str
    device_id: str
    name: str
    at: int
    key_hash: str | None = None  # in the log so a rebuilt game still knows the retry


@dataclass(frozen=True, slots=True)
class PlayerConnection(Event):
    type: ClassVar[str] = "game:player-connection"
    player_id: str
    connected: bool
    at: int


@dataclass(frozen=True, slots=True)
class PlayerKicked(Event):
    type: ClassVar[str] = "game:player-kicked"
    player_id: str
    device_id: str
    banned: bool
    at: int


@dataclass(frozen=True, slots=True)
class RoomLocked(Event):
    type: ClassVar[str] = "game:room-locked"
    locked: bool
    at: int


@dataclass(frozen=True, slots=True)
class GameStarted(Event):
    type: ClassVar[str] = "game:started"
    at: int


@dataclass(frozen=True, slots=True)
class PhaseChanged(Event):
    """Every phase change; `ends_at` is the deadline (None: waits for the host)."""

    type: ClassVar[str] = "game:phase:change"
    phase: Phase
    question_index: int
    question_id: str | None
    at: int
    ends_at: int | None


@dataclass(frozen=True, slots=True)
class AnswerAccepted(Event):
    type: ClassVar[str] = "game:answer:accepted"
    player_id: str
    question_id: str
    answer_id: str
    choice_ids: tuple[str, ...]
    text: str | None
    elapsed_ms: int
    correct: bool | None  # None for a poll
    points: int  # including `bonus`
    streak: int
    at: int
    bonus: int = 0  # streak bonus part of `points`


@dataclass(frozen=True, slots=True)
class GamePaused(Event):
    type: ClassVar[str] = "game:pause"
    at: int
    remaining_ms: int | None  # what was left of the current phase


@dataclass(frozen=True, slots=True)
class GameResumed(Event):
    type: ClassVar[str] = "game:resume"
    at: int
    ends_at: int | None  # the current phase's new deadline


@dataclass(frozen=True, slots=True)
class GameEnded(Event):
    type: ClassVar[str] = "game:end"
    at: int
    completed: bool  # True after the last question, False when the host ended early


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        PlayerJoined,
        PlayerConnection,
        PlayerKicked,
        RoomLocked,
        GameStarted,
        PhaseChanged,
        AnswerAccepted,
        GamePaused,
        GameResumed,
        GameEnded,
    )
}


_EVENT_FIELDS = {
    name: tuple(f.name for f in dataclasses.fields(cls)) for name, cls in EVENT_TYPES.items()
}
"""Each event type's field names, looked up once: a rebuild after a failover reads tens of
thousands of events, and `dataclasses.fields` per event was a tenth of it."""


def event_from_dict(data: dict[str, Any]) -> Event:
    """The inverse of `Event.to_dict` (tuples come back from JSON lists)."""
    kind = data["type"]
    cls = EVENT_TYPES[kind]
    kwargs = {name: data[name] for name in _EVENT_FIELDS[kind] if name in data}
    if "choice_ids" in kwargs:
        kwargs["choice_ids"] = tuple(kwargs["choice_ids"])
    if "phase" in kwargs:
        kwargs["phase"] = Phase(kwargs["phase"])
    return cls(**kwargs)


class GameError(TuizError):
    """A command the rules refuse; the game's state is unchanged."""


def refuse(code: ErrorCode, message: str, **details: Any) -> GameError:
    return GameError(code, message, **details)


@dataclass(slots=True)
class PlayerState:
    """A seat. Mutable: owned by the engine's `Game`."""

    id: str
    device_id: str
    name: str
    joined_at: int
    key_hash: str | None = None  # the join key's hash: never in a view
    connected: bool = True
    kicked: bool = False
    score: int = 0
    streak: int = 0
    correct_count: int = 0
    streak_before: int = 0  # before the latest answer: shown while that answer is secret
    answers: dict[str, AnswerAccepted] = field(default_factory=dict)  # by question id


class Standing(NamedTuple):
    """A player's standing as others may see it."""

    score: int
    correct_count: int
    streak: int


def quiz_to_dict(quiz: Quiz) -> dict[str, Any]:
    """The quiz as a game was created with it (stored in the game's first log event)."""
    return dataclasses.asdict(quiz)


def quiz_from_dict(data: dict[str, Any]) -> Quiz:
    questions = []
    for q in data["questions"]:
        explanation = q.get("explanation")
        questions.append(
            Question(
                **{
                    **q,
                    "type": QuestionType(q["type"]),
                    "choices": tuple(Choice(**c) for c in q.get("choices", ())),
                    "accepted_answers": tuple(q.get("accepted_answers", ())),
                    "explanation": Explanation(**explanation) if explanation else None,
                }
            )
        )
    return Quiz(id=data["id"], title=data["title"], questions=tuple(questions))


def settings_to_dict(settings: GameSettings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def settings_from_dict(raw: dict[str, Any]) -> GameSettings:
    """Settings from JSON; unknown keys (e.g. TUIZ play_settings extras) are ignored."""
    from pydantic import TypeAdapter, ValidationError

    names = {f.name for f in dataclasses.fields(GameSettings)}
    try:
        settings = TypeAdapter(GameSettings).validate_python(
            {k: v for k, v in raw.items() if k in names}, strict=False
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise refuse(
            ErrorCode.VALIDATION_ERROR, f"game_settings.{where}: {first.get('msg')}"
        ) from None
    limits = {
        "max_players": (1, 10_000),  # as a quiz's play_settings allow
        "reveal_time": (0, 120),
        "leaderboard_time": (0, 120),
        "leaderboard_size": (1, 100),
        "nickname_max": (1, 50),
    }
    for name, (low, high) in limits.items():
        value = getattr(settings, name)
        if not low <= value <= high:
            raise refuse(
                ErrorCode.VALIDATION_ERROR,
                f"game_settings.{name}: must be between {low} and {high}, got {value}",
            )
    return settings
