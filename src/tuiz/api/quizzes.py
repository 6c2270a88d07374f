"""REST for quiz content: quiz sets with their questions and answers, owned by a user.

Bodies of POST and PUT are the whole quiz in the version-1 document (`QuizContent`, the same
shape `tuiz quiz import` reads; see `tuiz.store.quizzes`). Responses use the TUIZ client's
`QuizSetComplete` field names. Reads run under the caller's role and claims (RLS): everyone
sees published public sets, owners see their own. Writes first pass the server's checks
(401 without a token, 404 unknown or invisible, 403 visible but not yours, 409 while a game
of the quiz is not finished for content changes and deletes), then run as the caller in one
transaction. Correct answers (`is_correct`, `accepted_answers`) are shown only to the owner
and the service role.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from tuiz import uploads
from tuiz.api.deps import CallerDep, ContextDep
from tuiz.auth import Caller
from tuiz.context import AppContext
from tuiz.errors import ErrorCode, TuizError
from tuiz.store import quizzes as repo
from tuiz.store.quizzes import QuizContent, QuizPatch
from tuiz.store.scoped import as_caller

router = APIRouter(tags=["quizzes"])

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


class QuizSet(BaseModel):
    id: UUID
    user_id: UUID
    title: str
    description: str
    thumbnail_url: str | None
    is_public: bool
    difficulty_level: str
    category: str
    total_questions: int
    times_played: int
    status: str
    tags: list[str]
    play_settings: dict[str, Any]
    cloned_from: UUID | None
    last_played_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Answer(BaseModel):
    id: UUID
    question_id: UUID
    answer_text: str
    image_url: str | None
    is_correct: bool | None = None  # owner and service only
    order_index: int
    created_at: datetime
    updated_at: datetime


class Question(BaseModel):
    id: UUID
    question_set_id: UUID
    question_text: str
    question_type: str
    image_url: str | None
    show_question_time: int
    answering_time: int
    show_explanation_time: int
    points: int
    difficulty: str
    order_index: int
    explanation_title: str | None
    explanation_text: str | None
    explanation_image_url: str | None
    accepted_answers: list[str] | None = None  # type_answer; owner and service only
    created_at: datetime
    updated_at: datetime
    answers: list[Answer]


class QuizSetComplete(QuizSet):
    questions: list[Question]


class QuizSetPage(BaseModel):
    items: list[QuizSet]
    limit: int
    offset: int
    next_offset: int | None


def _quiz_set(row: Any) -> QuizSet:
    data = dict(row)
    data["play_settings"] = json.loads(data["play_settings"])
    return QuizSet(**data)


def _is_owner(caller: Caller, row: Any) -> bool:
    return caller.is_service or (caller.user_id is not None and row["user_id"] == caller.user_id)


def _answer_key(caller: Caller, row: Any) -> repo.AnswerKey:
    """The service role reads the key from the tables, the owner through the database's
    owner-checked function (both under their own role); nobody else reads it at all."""
    if caller.is_service:
        return "columns"
    return "owner" if _is_owner(caller, row) else "none"


async def _complete(ctx: AppContext, caller: Caller, quiz_id: UUID) -> QuizSetComplete:
    """The set with its questions and answers as `caller` sees them (RLS), or 404.

    `is_correct` and `accepted_answers` are absent (not null) for anyone but the owner and
    the service role: the routes exclude unset fields.
    """
    async with as_caller(ctx.require_pool(), caller) as conn:
        row = await repo.fetch_set(conn, quiz_id)
        if row is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id} visible to you")
        content = await repo.fetch_questions(conn, quiz_id, answer_key=_answer_key(caller, row))
    questions = [
        Question(**dict(q), answers=[Answer(**dict(a)) for a in answers]) for q, answers in content
    ]
    return QuizSetComplete(**_quiz_set(row).model_dump(), questions=questions)


@router.post(
    "/quiz-sets",
    status_code=201,
    response_model=QuizSetComplete,
    response_model_exclude_unset=True,
)
async def create_quiz_set(ctx: ContextDep, who: CallerDep, body: QuizContent) -> QuizSetComplete:
    """Create a whole quiz (set, questions, answers) owned by the signed-in caller."""
    quiz_id = await repo.create_quiz(ctx.require_pool(), who, body)
    return await _complete(ctx, who, quiz_id)


@router.get("/quiz-sets", response_model=QuizSetPage)
async def list_quiz_sets(
    ctx: ContextDep,
    who: CallerDep,
    scope: Literal["all", "mine", "public"] = "all",
    status: Literal["draft", "published", "archived"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> QuizSetPage:
    """The caller's own sets and published public ones (`scope` narrows), newest change first."""
    if scope == "mine" and who.user_id is None:
        raise TuizError(ErrorCode.UNAUTHORIZED, "scope=mine needs a signed-in user")
    async with as_caller(ctx.require_pool(), who) as conn:
        rows = await repo.list_visible(
            conn, owner=who.user_id, scope=scope, status=status, limit=limit, offset=offset
        )
    more = len(rows) > limit
    return QuizSetPage(
        items=[_quiz_set(r) for r in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/quiz-sets/{quiz_id}", response_model=QuizSetComplete, response_model_exclude_unset=True
)
async def get_quiz_set(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> QuizSetComplete:
    """A set with its questions and answers in order; correct answers for the owner only."""
    return await _complete(ctx, who, quiz_id)


@router.get("/quiz-sets/{quiz_id}/export")
async def export_quiz_set(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> dict[str, Any]:
    """The version-1 document (what PUT and `tuiz quiz import` take); owner and service only."""
    async with as_caller(ctx.require_pool(), who) as conn:
        row = await repo.fetch_set(conn, quiz_id)
        if row is None:
            raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id} visible to you")
        if not _is_owner(who, row):
            raise TuizError(ErrorCode.FORBIDDEN, "only the owner may export a quiz's answers")
        content = await repo.fetch_questions(conn, quiz_id, answer_key=_answer_key(who, row))
    return repo.content_document(row, content)


@router.put(
    "/quiz-sets/{quiz_id}", response_model=QuizSetComplete, response_model_exclude_unset=True
)
async def replace_quiz_set(
    ctx: ContextDep, who: CallerDep, quiz_id: UUID, body: QuizContent
) -> QuizSetComplete:
    """Replace the set's fields and all its questions (refused while a game of it is live)."""
    await repo.replace_content(ctx.require_pool(), who, quiz_id, body)
    return await _complete(ctx, who, quiz_id)


@router.patch("/quiz-sets/{quiz_id}", response_model=QuizSet)
async def update_quiz_set(
    ctx: ContextDep, who: CallerDep, quiz_id: UUID, body: QuizPatch
) -> QuizSet:
    """Change some of: title, description, thumbnail_url, is_public, difficulty_level,
    category, status (draft/published/archived), tags, play_settings."""
    changes = body.model_dump(exclude_unset=True, exclude={"play_settings"})
    if body.play_settings is not None:
        changes["play_settings"] = body.play_settings.as_json()
    if not changes:
        raise TuizError(ErrorCode.VALIDATION_ERROR, "nothing to change: the body has no field")
    await repo.update_fields(ctx.require_pool(), who, quiz_id, changes)
    return await _summary(ctx, who, quiz_id)


@router.post("/quiz-sets/{quiz_id}/publish", response_model=QuizSet)
async def publish_quiz_set(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> QuizSet:
    """Set status to published (needs at least one question); is_public is left as it is."""
    await repo.update_fields(ctx.require_pool(), who, quiz_id, {"status": "published"})
    return await _summary(ctx, who, quiz_id)


@router.delete("/quiz-sets/{quiz_id}", status_code=204)
async def delete_quiz_set(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> Response:
    """Soft delete: the set disappears everywhere; games played with it keep their link.
    Its uploaded images are removed."""
    await repo.soft_delete(ctx.require_pool(), who, quiz_id)
    uploads.remove_all(ctx.settings.data_dir, "quizzes", quiz_id)
    return Response(status_code=204)


async def _summary(ctx: AppContext, who: Caller, quiz_id: UUID) -> QuizSet:
    async with as_caller(ctx.require_pool(), who) as conn:
        row = await repo.fetch_set(conn, quiz_id)
    if row is None:  # deleted meanwhile
        raise TuizError(ErrorCode.NOT_FOUND, f"no quiz {quiz_id} visible to you")
    return _quiz_set(row)


# The TUIZ client's routes (`tuiz.api.editor`, `tuiz.api.library`) show quizzes the same way.
quiz_view = _complete
summary_view = _summary
quiz_set_view = _quiz_set
