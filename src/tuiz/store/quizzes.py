"""Quiz content: quiz_sets -> questions -> answers, its JSON format, and loading it for games.

The JSON format (`QuizContent`, format version 1) is one document per quiz: the set's fields,
then `questions` in play order, each with its `answers` in display order. The same shape is
the body of `POST /quiz-sets` and `PUT /quiz-sets/{id}`, the file `tuiz quiz import` reads and
what `tuiz quiz export` / `GET /quiz-sets/{id}/export` write. Ids and order indexes are not
part of it: order is list order, ids are the database's.

    {"version": 1, "title": "...", "description": "", "thumbnail_url": null,
     "is_public": false, "difficulty_level": "easy", "category": "General",
     "status": "draft", "tags": [], "play_settings": {},
     "questions": [{"question_text": "...", "question_type": "multiple_choice",
                    "image_url": null, "show_question_time": 10, "answering_time": 30,
                    "show_explanation_time": 5, "points": 1000, "difficulty": "easy",
                    "explanation_title": null, "explanation_text": null,
                    "explanation_image_url": null, "accepted_answers": [],
                    "answers": [{"answer_text": "...", "is_correct": true,
                                 "image_url": null}]}]}

Rules per question type: multiple_choice 2-6 answers, exactly one correct; multi_select 2-6,
at least one correct; true_false exactly 2, exactly one correct; type_answer no answers and
1-20 accepted_answers (the engine matches them trimmed and case-insensitively); poll 2-6,
none correct and 0 points (a poll given no points gets 0). Only type_answer has accepted
answers.

Writes of a caller go through `create_quiz` / `replace_content` / `update_fields` /
`soft_delete`: the server's own checks run first with the server's privileges (row locked
FOR UPDATE, live games looked up), then the write runs as the caller (`become`, so RLS
applies) in the same transaction. `import_quiz` / `export_quiz` / `load_quiz` are the
server's own (service) paths.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from tuiz.auth import Caller
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import Choice, Explanation, Question, QuestionType, Quiz
from tuiz.logs import get_logger
from tuiz.store.db import Conn
from tuiz.store.scoped import become

log = get_logger(__name__)

FORMAT_VERSION = 1
MAX_QUESTIONS = 100
MAX_ANSWERS = 6
MAX_ACCEPTED = 20
MAX_PLAY_SETTINGS_BYTES = 4096

# The sample quiz's fixed id: how `ensure_sample_quiz` finds it again.
SAMPLE_QUIZ_ID = uuid.uuid5(uuid.NAMESPACE_URL, "https://tuiz.local/sample/quiz-sample/v1")
SAMPLE_OWNER_EMAIL = "demo@tuiz.local"

Difficulty = Literal["easy", "medium", "hard", "expert"]
Status = Literal["draft", "published", "archived"]


_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL


def _text(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(
        strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=_NO_NUL
    )


Title = Annotated[str, _text(1, 200)]
ShortText = Annotated[str, _text(1, 200)]
LongText = Annotated[str, _text(0, 2000)]
QuestionText = Annotated[str, _text(1, 500)]
# Images and links: absolute http(s) URLs or paths on this server (no javascript:, data:, ...).
Url = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=2048, pattern=r"^(https?://|/)[^\s\x00]*$"
    ),
]
Tag = Annotated[str, _text(1, 50)]
Category = Annotated[str, _text(1, 100)]


class PlaySettings(BaseModel):
    """The TUIZ client's play settings; unknown keys pass through (bounded in size)."""

    model_config = ConfigDict(extra="allow")

    code: int | None = Field(default=None, ge=100_000, le=999_999)
    show_question_only: bool | None = None
    show_explanation: bool | None = None
    time_bonus: bool | None = None
    streak_bonus: bool | None = None
    show_correct_answer: bool | None = None
    auto_advance: bool | None = None
    late_join: bool | None = None
    max_players: int | None = Field(default=None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _bounded(self) -> PlaySettings:
        text = json.dumps(self.as_json())
        if len(text) > MAX_PLAY_SETTINGS_BYTES:
            raise ValueError(f"play_settings is larger than {MAX_PLAY_SETTINGS_BYTES} bytes")
        if "\\u0000" in text:
            raise ValueError("play_settings may not contain NUL characters")
        return self

    def as_json(self) -> dict[str, Any]:
        """The keys given (not the unset ones), as stored in the jsonb column."""
        return self.model_dump(exclude_unset=True)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_text: ShortText
    is_correct: bool = False
    image_url: Url | None = None


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question_text: QuestionText
    question_type: QuestionType = QuestionType.MULTIPLE_CHOICE
    image_url: Url | None = None
    show_question_time: int = Field(default=10, ge=0, le=60)
    answering_time: int = Field(default=30, ge=5, le=240)
    show_explanation_time: int = Field(default=5, ge=0, le=120)
    points: int = Field(default=1000, ge=0, le=2000)
    difficulty: Difficulty = "easy"
    explanation_title: ShortText | None = None
    explanation_text: LongText | None = None
    explanation_image_url: Url | None = None
    accepted_answers: list[ShortText] = Field(default_factory=list, max_length=MAX_ACCEPTED)
    answers: list[AnswerIn] = Field(default_factory=list, max_length=MAX_ANSWERS)

    @model_validator(mode="before")
    @classmethod
    def _poll_scores_nothing_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("question_type") == "poll" and "points" not in data:
            return {**data, "points": 0}
        return data

    @model_validator(mode="after")
    def _fits_its_type(self) -> QuestionIn:
        kind = self.question_type
        n = len(self.answers)
        correct = sum(a.is_correct for a in self.answers)
        if kind is QuestionType.TYPE_ANSWER:
            if n:
                raise ValueError("a type_answer question has no answers; use accepted_answers")
            if not self.accepted_answers:
                raise ValueError("a type_answer question needs at least one accepted answer")
            spelled = [a.casefold() for a in self.accepted_answers]
            if len(set(spelled)) != len(spelled):
                raise ValueError("accepted_answers repeat the same answer")
            return self
        if self.accepted_answers:
            raise ValueError(f"only type_answer questions have accepted_answers, not {kind}")
        texts = [a.answer_text.casefold() for a in self.answers]
        if len(set(texts)) != len(texts):
            raise ValueError("two answers of the question have the same text")
        if kind is QuestionType.TRUE_FALSE:
            if n != 2 or correct != 1:
                raise ValueError("a true_false question has exactly 2 answers, one correct")
        elif n < 2:
            raise ValueError(f"a {kind} question needs 2 to {MAX_ANSWERS} answers, got {n}")
        elif kind is QuestionType.MULTIPLE_CHOICE and correct != 1:
            raise ValueError(
                f"a multiple_choice question has exactly one correct answer, got {correct}"
                " (use multi_select for several)"
            )
        elif kind is QuestionType.MULTI_SELECT and correct < 1:
            raise ValueError("a multi_select question needs at least one correct answer")
        elif kind is QuestionType.POLL:
            if correct:
                raise ValueError("a poll has no correct answer")
            if self.points:
                raise ValueError("a poll scores nothing: points must be 0")
        return self


class QuizFields(BaseModel):
    """The quiz set's own fields (everything but its questions)."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: LongText = ""
    thumbnail_url: Url | None = None
    is_public: bool = False
    difficulty_level: Difficulty = "easy"
    category: Category = "General"
    status: Status = "draft"
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    play_settings: PlaySettings = Field(default_factory=PlaySettings)


class QuizContent(QuizFields):
    """A whole quiz in one document: the POST/PUT body and the import/export file format."""

    version: Literal[1] = 1
    questions: list[QuestionIn] = Field(default_factory=list, max_length=MAX_QUESTIONS)

    @model_validator(mode="after")
    def _published_is_playable(self) -> QuizContent:
        if self.status == "published" and not self.questions:
            raise ValueError("a published quiz needs at least one question")
        return self

    def to_json(self) -> dict[str, Any]:
        """The export document (every field, play_settings as given)."""
        data = self.model_dump(mode="json", exclude={"play_settings"})
        out: dict[str, Any] = {"version": data.pop("version")}
        out.update(data)
        out["play_settings"] = self.play_settings.as_json()
        out["questions"] = out.pop("questions")
        return out


class QuizPatch(BaseModel):
    """Fields `PATCH /quiz-sets/{id}` may change; only the ones given change."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: LongText | None = None
    thumbnail_url: Url | None = None
    is_public: bool | None = None
    difficulty_level: Difficulty | None = None
    category: Category | None = None
    status: Status | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    play_settings: PlaySettings | None = None

    @field_validator("title", "is_public", "difficulty_level", "category", "status", "tags")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


def validation_error(exc: ValidationError, prefix: Sequence[str | int] = ()) -> TuizError:
    """A pydantic failure as the API's VALIDATION_ERROR, each error naming its field."""
    errors = [{"loc": [*prefix, *e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or "quiz"
    return TuizError(ErrorCode.VALIDATION_ERROR, f"{where}: {first['msg']}", errors=errors)


def parse_content(data: Any) -> QuizContent:
    """Validate a quiz document (a dict from JSON); VALIDATION_ERROR names the field."""
    if not isinstance(data, dict):
        raise TuizError(ErrorCode.VALIDATION_ERROR, "a quiz document is a JSON object")
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise TuizError(
            ErrorCode.VALIDATION_ERROR,
            f"version: unsupported quiz format version {version!r} (this tuiz reads 1)",
        )
    try:
        return QuizContent.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


# -- reading -------------------------------------------------------------------------------

SET_COLUMNS = """id, user_id, title, description, thumbnail_url, is_public,
    difficulty_level::text AS difficulty_level, category, total_questions, times_played,
    status::text AS status, tags, play_settings::text AS play_settings, cloned_from,
    last_played_at, created_at, updated_at"""

# Columns every client role may read. The answer key (questions.accepted_answers,
# answers.is_correct) is granted to no client role: owners read it through
# public.get_quiz_answer_key(), the server and service_role from the tables.
_QUESTION_COLUMNS = """id, question_set_id, question_text, question_type::text AS question_type,
    image_url, show_question_time, answering_time, show_explanation_time, points,
    difficulty::text AS difficulty, order_index, explanation_title, explanation_text,
    explanation_image_url, created_at, updated_at"""

_ANSWER_COLUMNS = """id, question_id, answer_text, image_url, order_index, created_at,
    updated_at"""

AnswerKey = Literal["columns", "owner", "none"]
"""How `fetch_questions` gets the answer key: from the tables (the server, service_role),
through `get_quiz_answer_key` (an owner under their own role), or not at all (anyone else)."""

Row = Mapping[str, Any] | asyncpg.Record
Content = list[tuple[Row, list[Row]]]


async def _retire_questions(conn: Conn, quiz_id: UUID) -> None:
    """Soft-delete every question of the quiz and their answers (before writing new ones)."""
    await conn.execute(
        """
        UPDATE public.answers SET deleted_at = now()
         WHERE deleted_at IS NULL AND question_id IN (
               SELECT id FROM public.questions WHERE question_set_id = $1)
        """,
        quiz_id,
    )
    await conn.execute(
        "UPDATE public.questions SET deleted_at = now()"
        " WHERE question_set_id = $1 AND deleted_at IS NULL",
        quiz_id,
    )


async def fetch_set(conn: Conn, quiz_id: UUID) -> asyncpg.Record | None:
    """The set's row if the connection may see it and it is not deleted."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {SET_COLUMNS} FROM public.quiz_sets WHERE id = $1 AND deleted_at IS NULL",
        quiz_id,
    )
    return row


async def fetch_questions(conn: Conn, quiz_id: UUID, *, answer_key: AnswerKey) -> Content:
    """Live questions in order, each with its live answers in order.

    The rows carry `accepted_answers` and `is_correct` unless `answer_key` is "none"; only
    client-readable columns are selected otherwise, so a caller's role never meets a column
    it may not read. With "owner" the key comes from `get_quiz_answer_key`, which returns
    nothing unless the connection's caller owns the quiz (then every answer reads as
    not correct and no spelling is accepted; callers check ownership first).
    """
    key_q = ", accepted_answers" if answer_key == "columns" else ""
    key_a = ", is_correct" if answer_key == "columns" else ""
    questions: list[Row] = [
        *await conn.fetch(
            f"SELECT {_QUESTION_COLUMNS}{key_q} FROM public.questions"
            " WHERE question_set_id = $1 AND deleted_at IS NULL ORDER BY order_index, id",
            quiz_id,
        )
    ]
    answers: list[Row] = [
        *await conn.fetch(
            f"SELECT {_ANSWER_COLUMNS}{key_a} FROM public.answers"
            " WHERE question_id = ANY($1::uuid[]) AND deleted_at IS NULL"
            " ORDER BY order_index, id",
            [q["id"] for q in questions],
        )
    ]
    if answer_key == "owner":
        accepted: dict[UUID, list[str]] = {}
        correct: dict[UUID, bool] = {}
        for k in await conn.fetch(
            "SELECT question_id, accepted_answers, answer_id, is_correct"
            " FROM public.get_quiz_answer_key(p_quiz_set_id => $1)",
            quiz_id,
        ):
            accepted[k["question_id"]] = list(k["accepted_answers"])
            if k["answer_id"] is not None:
                correct[k["answer_id"]] = bool(k["is_correct"])
        questions = [{**dict(q), "accepted_answers": accepted.get(q["id"], [])} for q in questions]
        answers = [{**dict(a), "is_correct": correct.get(a["id"], False)} for a in answers]
    by_question: dict[UUID, list[Row]] = {q["id"]: [] for q in questions}
    for a in answers:
        by_question[a["question_id"]].append(a)
    return [(q, by_question[q["id"]]) for q in questions]


async def load_quiz(
    conn: Conn | asyncpg.Pool, quiz_id: UUID, *, caller: Caller | None = None
) -> Quiz:
    """The engine's `Quiz` for a game: questions and choices by order_index, with answers.

    Reads with the connection's own (server) privileges. With `caller`, refuses (NOT_FOUND)
    a quiz that caller may not play: not theirs and not published+public (service: any).
    A deleted or unknown quiz is NOT_FOUND; one without questions is VALIDATION_ERROR.
    """
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await load_quiz(c, quiz_id, caller=caller)
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        row = await fetch_set(conn, quiz_id)
        visible = row is not None and (
            caller is None
            or caller.is_service
            or (caller.user_id is not None and row["user_id"] == caller.user_id)
            or (row["status"] == "published" and row["is_public"])
        )
        if row is None or not visible:
            raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id} you may play")
        content = await fetch_questions(conn, quiz_id, answer_key="columns")
    if not content:
        raise TuizError(
            ErrorCode.VALIDATION_ERROR, f"quiz {quiz_id} has no questions; add some to play it"
        )
    return Quiz(
        id=str(row["id"]),
        title=row["title"],
        questions=tuple(_engine_question(q, answers) for q, answers in content),
    )


def inline_quiz(content: QuizContent) -> Quiz:
    """An engine quiz straight from a document (a guest host's upload: nothing is stored but
    the game's own log, which keeps the quiz as played)."""
    if not content.questions:
        raise TuizError(ErrorCode.VALIDATION_ERROR, "the quiz has no questions")
    questions = []
    for q in content.questions:
        row = {**q.model_dump(), "id": uuid.uuid4()}
        answers = [{**a.model_dump(), "id": uuid.uuid4()} for a in q.answers]
        questions.append(_engine_question(row, answers))
    return Quiz(id=str(uuid.uuid4()), title=content.title, questions=tuple(questions))


def _engine_question(q: Row, answers: Sequence[Row]) -> Question:
    has_explanation = any(
        q[k] for k in ("explanation_title", "explanation_text", "explanation_image_url")
    )
    return Question(
        id=str(q["id"]),
        type=QuestionType(q["question_type"]),
        text=q["question_text"],
        points=q["points"],
        show_question_time=q["show_question_time"],
        answering_time=q["answering_time"],
        show_explanation_time=q["show_explanation_time"],
        choices=tuple(
            Choice(
                id=str(a["id"]),
                text=a["answer_text"],
                is_correct=a["is_correct"],
                image_url=a["image_url"],
            )
            for a in answers
        ),
        accepted_answers=tuple(q["accepted_answers"]),
        explanation=Explanation(
            title=q["explanation_title"],
            text=q["explanation_text"],
            image_url=q["explanation_image_url"],
        )
        if has_explanation
        else None,
        image_url=q["image_url"],
    )


async def export_quiz(conn: Conn, quiz_id: UUID) -> dict[str, Any]:
    """The quiz as a version-1 document (NOT_FOUND when unknown or deleted)."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        row = await fetch_set(conn, quiz_id)
        if row is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id}")
        content = await fetch_questions(conn, quiz_id, answer_key="columns")
    return content_document(row, content)


def content_document(row: Row, content: Content) -> dict[str, Any]:
    """Rows as the version-1 document (the inverse of `insert_content`)."""
    return {
        "version": FORMAT_VERSION,
        "title": row["title"],
        "description": row["description"],
        "thumbnail_url": row["thumbnail_url"],
        "is_public": row["is_public"],
        "difficulty_level": row["difficulty_level"],
        "category": row["category"],
        "status": row["status"],
        "tags": list(row["tags"]),
        "play_settings": json.loads(row["play_settings"]),
        "questions": [
            {
                "question_text": q["question_text"],
                "question_type": q["question_type"],
                "image_url": q["image_url"],
                "show_question_time": q["show_question_time"],
                "answering_time": q["answering_time"],
                "show_explanation_time": q["show_explanation_time"],
                "points": q["points"],
                "difficulty": q["difficulty"],
                "explanation_title": q["explanation_title"],
                "explanation_text": q["explanation_text"],
                "explanation_image_url": q["explanation_image_url"],
                "accepted_answers": list(q["accepted_answers"]),
                "answers": [
                    {
                        "answer_text": a["answer_text"],
                        "is_correct": a["is_correct"],
                        "image_url": a["image_url"],
                    }
                    for a in answers
                ],
            }
            for q, answers in content
        ],
    }


# -- writing -------------------------------------------------------------------------------


async def _insert_questions(
    conn: Conn, quiz_id: UUID, questions: list[QuestionIn], order: list[int] | None = None
) -> list[UUID]:
    """Insert questions and their answers (two statements in all); their new ids.

    `order` gives each question's order_index; by default list order from 0.
    """
    if not questions:
        return []
    ids: list[UUID] = [uuid.uuid4() for _ in questions]
    indexes = order if order is not None else list(range(len(questions)))
    await conn.execute(
        """
        INSERT INTO public.questions
            (id, question_set_id, question_text, question_type, image_url, show_question_time,
             answering_time, show_explanation_time, points, difficulty, order_index,
             explanation_title, explanation_text, explanation_image_url, accepted_answers)
        SELECT u.id, $1, u.question_text, u.question_type::public.question_type, u.image_url,
               u.show_question_time, u.answering_time, u.show_explanation_time, u.points,
               u.difficulty::public.difficulty_level, u.order_index, u.explanation_title,
               u.explanation_text, u.explanation_image_url,
               ARRAY(SELECT jsonb_array_elements_text(u.accepted::jsonb))
          FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[],
                      $8::int[], $9::int[], $10::text[], $11::text[], $12::text[], $13::text[],
                      $14::text[], $15::int[])
               AS u(id, question_text, question_type, image_url, show_question_time,
                    answering_time, show_explanation_time, points, difficulty,
                    explanation_title, explanation_text, explanation_image_url, accepted,
                    order_index)
        """,
        quiz_id,
        ids,
        [q.question_text for q in questions],
        [q.question_type.value for q in questions],
        [q.image_url for q in questions],
        [q.show_question_time for q in questions],
        [q.answering_time for q in questions],
        [q.show_explanation_time for q in questions],
        [q.points for q in questions],
        [q.difficulty for q in questions],
        [q.explanation_title for q in questions],
        [q.explanation_text for q in questions],
        [q.explanation_image_url for q in questions],
        [json.dumps(q.accepted_answers, ensure_ascii=False) for q in questions],
        indexes,
    )
    await _insert_answers(conn, list(zip(ids, questions, strict=True)))
    return ids


async def _insert_answers(conn: Conn, questions: list[tuple[UUID, QuestionIn]]) -> None:
    """Insert the answers of questions that already exist, in list order."""
    rows = [
        (qid, a.answer_text, a.image_url, a.is_correct, i)
        for qid, q in questions
        for i, a in enumerate(q.answers)
    ]
    if rows:
        await conn.execute(
            """
            INSERT INTO public.answers (question_id, answer_text, image_url, is_correct,
                                        order_index)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::int[])
            """,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
        )


async def insert_content(
    conn: Conn, owner: UUID, content: QuizContent, *, quiz_id: UUID | None = None
) -> UUID:
    """Insert a whole quiz on `conn` (inside the caller's transaction); returns its id."""
    new_id: UUID = await conn.fetchval(
        """
        INSERT INTO public.quiz_sets
            (id, user_id, title, description, thumbnail_url, is_public, difficulty_level,
             category, status, tags, play_settings, total_questions)
        VALUES ($1, $2, $3, $4, $5, $6, $7::public.difficulty_level, $8,
                $9::public.quiz_status, $10, $11::text::jsonb, $12)
        RETURNING id
        """,
        quiz_id or uuid.uuid4(),
        owner,
        content.title,
        content.description,
        content.thumbnail_url,
        content.is_public,
        content.difficulty_level,
        content.category,
        content.status,
        content.tags,
        json.dumps(content.play_settings.as_json(), ensure_ascii=False),
        len(content.questions),
    )
    await _insert_questions(conn, new_id, content.questions)
    return new_id


async def import_quiz(
    conn: Conn, owner_user_id: UUID, data: dict[str, Any], *, quiz_id: UUID | None = None
) -> UUID:
    """Validate a version-1 document and insert it for `owner_user_id` (one transaction)."""
    content = parse_content(data)
    async with conn.transaction():
        return await insert_content(conn, owner_user_id, content, quiz_id=quiz_id)


async def _check_write(conn: Conn, caller: Caller, quiz_id: UUID, *, content: bool) -> None:
    """The server's own checks before a caller changes a quiz, with the quiz row locked.

    401 anonymous, 404 unknown/deleted or invisible to the caller, 403 visible but not
    theirs, 409 (content changes and deletes only) while a game of the quiz is not finished.
    Runs with the server's privileges, inside the write's transaction.
    """
    require_user(caller)
    row = await conn.fetchrow(
        "SELECT user_id, status::text AS status, is_public FROM public.quiz_sets"
        " WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        quiz_id,
    )
    if row is None:
        raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id}")
    if not caller.is_service and row["user_id"] != caller.user_id:
        if row["status"] == "published" and row["is_public"]:
            raise TuizError(ErrorCode.FORBIDDEN, f"quiz {quiz_id} is not yours to change")
        raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id}")
    if content:
        live = await conn.fetchval(
            "SELECT count(*) FROM public.games WHERE quiz_set_id = $1 AND status <> 'finished'",
            quiz_id,
        )
        if live:
            raise TuizError(
                ErrorCode.CONFLICT,
                f"quiz {quiz_id} is being played ({live} game(s) not finished);"
                " change its content once they end",
                live_games=live,
            )


def require_user(caller: Caller) -> None:
    if caller.role == "anon":
        raise TuizError(ErrorCode.UNAUTHORIZED, "sign in (Authorization: Bearer <JWT>) first")


async def create_quiz(pool: asyncpg.Pool, caller: Caller, content: QuizContent) -> UUID:
    """A new quiz owned by the signed-in caller, written under their role (RLS)."""
    require_user(caller)
    if caller.user_id is None:
        raise TuizError(
            ErrorCode.FORBIDDEN,
            "a quiz belongs to a user: sign in with a user's JWT"
            " (the service key has no user; use `tuiz quiz import --owner-email`)",
        )
    try:
        async with pool.acquire() as conn, conn.transaction():
            await become(conn, caller)
            return await insert_content(conn, caller.user_id, content)
    except asyncpg.ForeignKeyViolationError:
        raise TuizError(
            ErrorCode.UNAUTHORIZED, f"the token's user {caller.user_id} does not exist"
        ) from None


async def replace_content(
    pool: asyncpg.Pool, caller: Caller, quiz_id: UUID, content: QuizContent
) -> None:
    """PUT: the set's fields and all its questions replaced, in one transaction.

    Replaced questions and answers are soft-deleted (deleted_at), not removed, so records of
    finished games that point at their ids still resolve.
    """
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=True)
        await become(conn, caller)
        await conn.execute(
            """
            UPDATE public.quiz_sets
               SET title = $2, description = $3, thumbnail_url = $4, is_public = $5,
                   difficulty_level = $6::public.difficulty_level, category = $7,
                   status = $8::public.quiz_status, tags = $9, play_settings = $10::text::jsonb,
                   total_questions = $11
             WHERE id = $1
            """,
            quiz_id,
            content.title,
            content.description,
            content.thumbnail_url,
            content.is_public,
            content.difficulty_level,
            content.category,
            content.status,
            content.tags,
            json.dumps(content.play_settings.as_json(), ensure_ascii=False),
            len(content.questions),
        )
        await _retire_questions(conn, quiz_id)
        await _insert_questions(conn, quiz_id, content.questions)


async def update_fields(
    pool: asyncpg.Pool,
    caller: Caller,
    quiz_id: UUID,
    changes: dict[str, Any],
    *,
    merge_play_settings: bool = False,
) -> None:
    """PATCH: only the given set fields change. Publishing needs at least one question.

    With `merge_play_settings`, the given play_settings keys are merged into the stored ones
    (the TUIZ editor sends one setting at a time) instead of replacing them.
    """
    columns = {
        "title": "",
        "description": "",
        "thumbnail_url": "",
        "is_public": "",
        "difficulty_level": "::public.difficulty_level",
        "category": "",
        "status": "::public.quiz_status",
        "tags": "",
        "play_settings": "::text::jsonb",
    }
    unknown = set(changes) - set(columns)
    if unknown:
        raise ValueError(f"not patchable: {sorted(unknown)}")
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=False)
        if changes.get("status") == "published":
            count = await conn.fetchval(
                "SELECT count(*) FROM public.questions"
                " WHERE question_set_id = $1 AND deleted_at IS NULL",
                quiz_id,
            )
            if not count:
                raise TuizError(
                    ErrorCode.VALIDATION_ERROR,
                    "status: a published quiz needs at least one question",
                    errors=[{"loc": ["body", "status"], "msg": "quiz has no questions"}],
                )
        if not changes:
            return
        await become(conn, caller)
        if "play_settings" in changes:
            changes = {**changes, "play_settings": json.dumps(changes["play_settings"])}
        names = list(changes)
        assignments = ", ".join(
            f"{name} = play_settings || ${i + 2}{columns[name]}"
            if name == "play_settings" and merge_play_settings
            else f"{name} = ${i + 2}{columns[name]}"
            for i, name in enumerate(names)
        )
        await conn.execute(
            f"UPDATE public.quiz_sets SET {assignments} WHERE id = $1",
            quiz_id,
            *(changes[n] for n in names),
        )


async def soft_delete(pool: asyncpg.Pool, caller: Caller, quiz_id: UUID) -> None:
    """DELETE: the set is marked deleted (invisible everywhere); games played keep their link."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=True)
        await become(conn, caller)
        await conn.execute("UPDATE public.quiz_sets SET deleted_at = now() WHERE id = $1", quiz_id)


async def list_visible(
    conn: Conn,
    *,
    owner: UUID | None,
    scope: Literal["all", "mine", "public"],
    status: Status | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    """Sets the connection's caller may see (RLS), newest change first; `limit + 1` rows."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {SET_COLUMNS} FROM public.quiz_sets
         WHERE deleted_at IS NULL
           AND ($1::text IS NULL OR status = $1::public.quiz_status)
           AND ($2::text <> 'mine' OR user_id = $3)
           AND ($2::text <> 'public' OR (status = 'published' AND is_public))
         ORDER BY updated_at DESC, id
         LIMIT $4 OFFSET $5
        """,
        status,
        scope,
        owner,
        limit + 1,
        offset,
    )
    return rows


# -- owners and the sample quiz ------------------------------------------------------------


async def _auth_is_shim(conn: Conn) -> bool:
    """True when auth.users is tuiz's stand-in (vanilla PostgreSQL), not Supabase's."""
    comment = await conn.fetchval("SELECT obj_description('auth.users'::regclass, 'pg_class')")
    return bool(comment and str(comment).startswith("tuiz-shim"))


async def ensure_owner(conn: Conn, email: str) -> UUID:
    """The auth.users id for `email`, created on vanilla PostgreSQL when missing.

    On Supabase users are made by sign-up (GoTrue), so a missing one is refused (NOT_FOUND).
    """
    email = email.strip()
    if not email or "@" not in email:
        raise TuizError(ErrorCode.VALIDATION_ERROR, f"owner email {email!r} is not an email")
    found: UUID | None = await conn.fetchval(
        "SELECT id FROM auth.users WHERE lower(email) = lower($1) ORDER BY created_at LIMIT 1",
        email,
    )
    if found is not None:
        return found
    if not await _auth_is_shim(conn):
        raise TuizError(
            ErrorCode.NOT_FOUND,
            f"no user {email} in auth.users; on Supabase create the user first"
            " (sign up, or the dashboard), then import again",
        )
    created: UUID = await conn.fetchval(
        "INSERT INTO auth.users (email) VALUES ($1)"
        " ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id",
        email,
    )
    return created


def sample_document() -> dict[str, Any]:
    """The sample quiz shipped in the package (`tuiz/sample/quiz-sample.json`)."""
    text = resources.files("tuiz.sample").joinpath("quiz-sample.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


async def ensure_sample_quiz(pool: asyncpg.Pool | Conn) -> UUID:
    """Import the sample quiz once (published, public, id SAMPLE_QUIZ_ID); its id either way.

    Idempotent and safe when several processes start at once (advisory lock). A sample the
    owner deleted (soft) stays deleted. Owner: demo@tuiz.local (created on vanilla
    PostgreSQL; on Supabase that user must exist, else NOT_FOUND).
    """
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as pooled:
            return await ensure_sample_quiz(pooled)
    conn: Conn = pool
    lock_key = int.from_bytes(hashlib.sha256(SAMPLE_QUIZ_ID.bytes).digest()[:8], "big", signed=True)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
        exists = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM public.quiz_sets WHERE id = $1)", SAMPLE_QUIZ_ID
        )
        if exists:
            return SAMPLE_QUIZ_ID
        owner = await ensure_owner(conn, SAMPLE_OWNER_EMAIL)
        data = {**sample_document(), "status": "published", "is_public": True}
        await import_quiz(conn, owner, data, quiz_id=SAMPLE_QUIZ_ID)
        log.info("sample_quiz_loaded", quiz_id=str(SAMPLE_QUIZ_ID), owner=SAMPLE_OWNER_EMAIL)
        return SAMPLE_QUIZ_ID


# -- the TUIZ editor: one question at a time, and the library ------------------------------


async def check_owner(pool: asyncpg.Pool, caller: Caller, quiz_id: UUID) -> None:
    """The write checks alone (401, 404, 403), for uploads into a quiz's folder."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=False)


async def _recount(conn: Conn, quiz_id: UUID) -> None:
    await conn.execute(
        """
        UPDATE public.quiz_sets SET total_questions = (
               SELECT count(*) FROM public.questions
                WHERE question_set_id = $1 AND deleted_at IS NULL)
         WHERE id = $1
        """,
        quiz_id,
    )


async def _next_index(conn: Conn, quiz_id: UUID) -> int:
    value: int = await conn.fetchval(
        "SELECT coalesce(max(order_index) + 1, 0) FROM public.questions"
        " WHERE question_set_id = $1 AND deleted_at IS NULL",
        quiz_id,
    )
    return value


async def add_question(
    pool: asyncpg.Pool, caller: Caller, quiz_id: UUID, question: QuestionIn, order: int | None
) -> UUID:
    """Append one question (at `order`, else after the last); its id."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=True)
        count = await conn.fetchval(
            "SELECT count(*) FROM public.questions"
            " WHERE question_set_id = $1 AND deleted_at IS NULL",
            quiz_id,
        )
        if count >= MAX_QUESTIONS:
            raise TuizError(
                ErrorCode.VALIDATION_ERROR, f"questions: a quiz has at most {MAX_QUESTIONS}"
            )
        index = order if order is not None else await _next_index(conn, quiz_id)
        await become(conn, caller)
        (new_id,) = await _insert_questions(conn, quiz_id, [question], [index])
        await _recount(conn, quiz_id)
        return new_id


async def update_question(
    pool: asyncpg.Pool,
    caller: Caller,
    quiz_id: UUID,
    question_id: UUID,
    question: QuestionIn,
    order: int | None,
) -> None:
    """Replace one question's fields and answers (the old answers are soft-deleted)."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=True)
        await become(conn, caller)
        found = await conn.fetchval(
            """
            UPDATE public.questions
               SET question_text = $3, question_type = $4::public.question_type,
                   image_url = $5, show_question_time = $6, answering_time = $7,
                   show_explanation_time = $8, points = $9,
                   difficulty = $10::public.difficulty_level,
                   order_index = coalesce($11, order_index), explanation_title = $12,
                   explanation_text = $13, explanation_image_url = $14, accepted_answers = $15
             WHERE id = $1 AND question_set_id = $2 AND deleted_at IS NULL
            RETURNING id
            """,
            question_id,
            quiz_id,
            question.question_text,
            question.question_type.value,
            question.image_url,
            question.show_question_time,
            question.answering_time,
            question.show_explanation_time,
            question.points,
            question.difficulty,
            order,
            question.explanation_title,
            question.explanation_text,
            question.explanation_image_url,
            question.accepted_answers,
        )
        if found is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no question {question_id} in quiz {quiz_id}")
        await conn.execute(
            "UPDATE public.answers SET deleted_at = now()"
            " WHERE question_id = $1 AND deleted_at IS NULL",
            question_id,
        )
        await _insert_answers(conn, [(question_id, question)])


async def delete_question(
    pool: asyncpg.Pool, caller: Caller, quiz_id: UUID, question_id: UUID
) -> None:
    """Soft-delete one question (records of finished games still resolve its id)."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=True)
        await become(conn, caller)
        found = await conn.fetchval(
            "UPDATE public.questions SET deleted_at = now()"
            " WHERE id = $1 AND question_set_id = $2 AND deleted_at IS NULL RETURNING id",
            question_id,
            quiz_id,
        )
        if found is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no question {question_id} in quiz {quiz_id}")
        await _recount(conn, quiz_id)


async def reorder_questions(
    pool: asyncpg.Pool, caller: Caller, quiz_id: UUID, order: list[tuple[UUID, int]]
) -> None:
    """Set order_index of the listed questions; every id must be a live question of the quiz."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=True)
        await become(conn, caller)
        updated = await conn.fetch(
            """
            UPDATE public.questions q SET order_index = u.order_index
              FROM unnest($2::uuid[], $3::int[]) AS u(id, order_index)
             WHERE q.id = u.id AND q.question_set_id = $1 AND q.deleted_at IS NULL
            RETURNING q.id
            """,
            quiz_id,
            [qid for qid, _ in order],
            [index for _, index in order],
        )
        missing = {qid for qid, _ in order} - {r["id"] for r in updated}
        if missing:
            raise TuizError(
                ErrorCode.NOT_FOUND,
                f"questions: not in quiz {quiz_id}: {', '.join(sorted(map(str, missing)))}",
            )


async def replace_questions(
    pool: asyncpg.Pool, caller: Caller, quiz_id: UUID, questions: list[QuestionIn]
) -> list[UUID]:
    """All the quiz's questions replaced by `questions` (list order); their new ids."""
    async with pool.acquire() as conn, conn.transaction():
        await _check_write(conn, caller, quiz_id, content=True)
        await become(conn, caller)
        await _retire_questions(conn, quiz_id)
        ids = await _insert_questions(conn, quiz_id, questions)
        await _recount(conn, quiz_id)
        return ids


SORTS = {
    "created": "created_at",
    "updated": "updated_at",
    "title": "title",
    "plays": "times_played",
    "questions": "total_questions",
}


async def search_sets(
    conn: Conn,
    *,
    owner: UUID | None,
    mine: bool,
    status: Status | None,
    search: str | None,
    category: str | None,
    difficulty: Difficulty | None,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """One page of sets the connection's caller may see (RLS) and the total that match.

    `mine` keeps the caller's own; otherwise published public sets only. `search` matches
    title and description (case-insensitive substring).
    """
    column = SORTS[sort]
    direction = "DESC" if descending else "ASC"
    where = """deleted_at IS NULL
           AND ($1::text IS NULL OR status = $1::public.quiz_status)
           AND (CASE WHEN $2 THEN user_id = $3 ELSE status = 'published' AND is_public END)
           AND ($4::text IS NULL OR strpos(lower(title || ' ' || description), lower($4)) > 0)
           AND ($5::text IS NULL OR category = $5)
           AND ($6::text IS NULL OR difficulty_level = $6::public.difficulty_level)"""
    args = (status, mine, owner, search or None, category or None, difficulty)
    total: int = await conn.fetchval(f"SELECT count(*) FROM public.quiz_sets WHERE {where}", *args)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {SET_COLUMNS} FROM public.quiz_sets WHERE {where}"
        f" ORDER BY {column} {direction}, id LIMIT $7 OFFSET $8",
        *args,
        limit,
        offset,
    )
    return rows, total


async def status_counts(conn: Conn, owner: UUID) -> dict[str, int]:
    row = await conn.fetchrow(
        """
        SELECT count(*) AS all_, count(*) FILTER (WHERE status = 'published') AS published,
               count(*) FILTER (WHERE status = 'draft') AS draft
          FROM public.quiz_sets WHERE user_id = $1 AND deleted_at IS NULL
        """,
        owner,
    )
    assert row is not None
    return {"all": row["all_"], "published": row["published"], "draft": row["draft"]}


async def public_categories(conn: Conn) -> list[tuple[str, int]]:
    rows = await conn.fetch(
        """
        SELECT category, count(*) AS n FROM public.quiz_sets
         WHERE status = 'published' AND is_public AND deleted_at IS NULL
         GROUP BY category ORDER BY n DESC, category LIMIT 200
        """
    )
    return [(r["category"], r["n"]) for r in rows]


async def code_taken(conn: Conn, code: int, *, other_than: UUID | None = None) -> bool:
    """True when a live quiz other than `other_than` uses `code` as its play_settings.code."""
    taken: bool = await conn.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM public.quiz_sets
                        WHERE play_settings ? 'code' AND deleted_at IS NULL
                          AND play_settings ->> 'code' = $1::text
                          AND id IS DISTINCT FROM $2)
        """,
        str(code),
        other_than,
    )
    return taken


async def clone_quiz(pool: asyncpg.Pool, caller: Caller, quiz_id: UUID, new_id: UUID) -> UUID:
    """A private draft copy of a quiz the caller may see, owned by the caller.

    Copies the answers' correctness too, so only the owner or a published public quiz can
    be cloned (NOT_FOUND otherwise). The copy has no play code; image URLs pointing into the
    source quiz's upload folder are rewritten to the copy's folder (the caller copies the
    files).
    """
    require_user(caller)
    if caller.user_id is None:
        raise TuizError(ErrorCode.FORBIDDEN, "a quiz belongs to a user: sign in as one")
    async with pool.acquire() as conn, conn.transaction():
        row = await fetch_set(conn, quiz_id)
        if row is None or not (
            row["user_id"] == caller.user_id or (row["status"] == "published" and row["is_public"])
        ):
            raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id} you may copy")
        content = await fetch_questions(conn, quiz_id, answer_key="columns")
        document = content_document(row, content)
        old, new = f"/uploads/quizzes/{quiz_id}/", f"/uploads/quizzes/{new_id}/"
        text = json.dumps(document, ensure_ascii=False).replace(old, new)
        document = json.loads(text)
        document["play_settings"] = {
            k: v for k, v in (document.get("play_settings") or {}).items() if k != "code"
        }
        document.update(status="draft", is_public=False)
        copy = parse_content(document)
        await become(conn, caller)
        created = await insert_content(conn, caller.user_id, copy, quiz_id=new_id)
        await conn.execute(
            "UPDATE public.quiz_sets SET cloned_from = $2 WHERE id = $1", created, quiz_id
        )
        return created
