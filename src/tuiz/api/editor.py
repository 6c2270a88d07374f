"""REST for the TUIZ web client's quiz editor and dashboard: `/quiz/*`, in the client's shapes.

The same tables, store functions and rules as our own `/quiz-sets` (`tuiz.api.quizzes`):
reads run as the caller (RLS), writes pass the server's checks first (401 anonymous, 404
unknown or invisible, 403 visible but not yours, 409 while a game of the quiz is live for
question changes), and every question is validated as in the quiz document, with the field
named. Unlike `/quiz-sets`, the editor builds a quiz piece by piece: the set first (a draft
without questions), then questions one at a time or as a batch, then publish.
Answer keys (`is_correct`) are shown to the owner only.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuiz import uploads
from tuiz.api.deps import CallerDep, ContextDep
from tuiz.api.quizzes import (
    Question,
    QuizSet,
    QuizSetComplete,
    quiz_set_view,
    quiz_view,
    summary_view,
)
from tuiz.auth import Caller
from tuiz.context import AppContext
from tuiz.errors import ErrorCode, TuizError
from tuiz.store import quizzes as repo
from tuiz.store.quizzes import (
    MAX_ANSWERS,
    MAX_QUESTIONS,
    Category,
    Difficulty,
    LongText,
    PlaySettings,
    QuestionIn,
    QuizContent,
    Status,
    Tag,
    Title,
    Url,
    validation_error,
)
from tuiz.store.scoped import as_caller

router = APIRouter(tags=["quiz editor (TUIZ client)"])


def _blank_is_none(value: Any) -> Any:
    """Empty strings and browser-local object URLs (`blob:`, which the editor sends as a
    preview before the upload finishes) mean "no value"."""
    if isinstance(value, str) and (not value.strip() or value.startswith("blob:")):
        return None
    return value


class QuizBody(BaseModel):
    """The editor's quiz form (POST /quiz: title needed; PUT: only the fields sent change)."""

    model_config = ConfigDict(extra="ignore")  # the client sends whole QuizSet objects back

    title: Title | None = None
    description: LongText | None = None
    thumbnail_url: Url | None = None
    is_public: bool | None = None
    difficulty_level: Difficulty | None = None
    category: Category | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    play_settings: PlaySettings | None = None
    status: Status | None = None

    @field_validator("thumbnail_url", "category", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_is_none(value)


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    answer_text: str | None = None
    image_url: str | None = None
    is_correct: bool = False
    order_index: int = Field(default=0, ge=0, le=1000)


class QuestionBody(BaseModel):
    """One question as the editor sends it; checked as a `QuestionIn` of the quiz document."""

    model_config = ConfigDict(extra="ignore")

    question_text: str | None = None
    question_type: str | None = None
    image_url: str | None = None
    show_question_time: int | None = None
    answering_time: int | None = None
    show_explanation_time: int | None = None
    points: int | None = None
    difficulty: str | None = None
    order_index: int | None = Field(default=None, ge=0, le=10_000)
    explanation_title: str | None = None
    explanation_text: str | None = None
    explanation_image_url: str | None = None
    accepted_answers: list[str] | None = Field(default=None, max_length=20)
    answers: list[AnswerBody] | None = Field(default=None, max_length=MAX_ANSWERS)


class BatchBody(BaseModel):
    questions: list[QuestionBody] = Field(max_length=MAX_QUESTIONS)


class ReorderItem(BaseModel):
    id: UUID
    order_index: int = Field(ge=0, le=10_000)


class ReorderBody(BaseModel):
    questions: list[ReorderItem] = Field(max_length=MAX_QUESTIONS)


class Pagination(BaseModel):
    """Both spellings the client reads (dashboard camelCase, library snake_case)."""

    page: int
    limit: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool
    totalItems: int
    totalPages: int
    hasNextPage: bool
    hasPreviousPage: bool


class QuizPage(BaseModel):
    data: list[QuizSet]
    pagination: Pagination
    totalCount: int


class QuestionOut(BaseModel):
    question: Question


class QuestionsOut(BaseModel):
    questions: list[Question]


class MessageOut(BaseModel):
    message: str


class StatusOut(BaseModel):
    id: UUID
    status: str
    updated_at: Any


class Problem(BaseModel):
    field: str
    message: str
    code: str


class Validation(BaseModel):
    isValid: bool
    errors: list[Problem]
    warnings: list[Problem]


class QuizBrief(BaseModel):
    id: UUID
    title: str
    status: str
    total_questions: int


class ValidateOut(BaseModel):
    quiz: QuizBrief
    validation: Validation


class PublishOut(BaseModel):
    message: str
    quiz: QuizSet
    validation: Validation


class UnpublishOut(BaseModel):
    message: str
    quiz: QuizSet


class CodeOut(BaseModel):
    code: int | None


class GeneratedCodeOut(BaseModel):
    code: int
    message: str


class CodeCheckOut(BaseModel):
    isAvailable: bool
    message: str


def pagination(page: int, limit: int, total: int) -> Pagination:
    pages = max(1, -(-total // limit))
    return Pagination(
        page=page,
        limit=limit,
        total=total,
        total_pages=pages,
        has_next=page < pages,
        has_prev=page > 1,
        totalItems=total,
        totalPages=pages,
        hasNextPage=page < pages,
        hasPreviousPage=page > 1,
    )


def to_question(body: QuestionBody, loc: tuple[str | int, ...], base: dict[str, Any]) -> QuestionIn:
    """The editor's question (over `base`, the stored one for a partial PUT) as a QuestionIn."""
    data = {**base, **body.model_dump(exclude_unset=True, exclude={"order_index", "answers"})}
    for key in ("image_url", "explanation_title", "explanation_text", "explanation_image_url"):
        data[key] = _blank_is_none(data.get(key))
    data = {k: v for k, v in data.items() if v is not None}
    if body.answers is not None:
        ordered = sorted(enumerate(body.answers), key=lambda pair: (pair[1].order_index, pair[0]))
        data["answers"] = [
            {
                "answer_text": a.answer_text if a.answer_text is not None else "",
                "image_url": _blank_is_none(a.image_url),
                "is_correct": a.is_correct,
            }
            for _, a in ordered
        ]
    for a in data.get("answers", []):
        if a.get("image_url") is None:
            a.pop("image_url", None)
    try:
        return QuestionIn.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, ("body", *loc)) from None


def _stored_question(q: Question) -> dict[str, Any]:
    data = q.model_dump(
        include={
            "question_text",
            "question_type",
            "image_url",
            "show_question_time",
            "answering_time",
            "show_explanation_time",
            "points",
            "difficulty",
            "explanation_title",
            "explanation_text",
            "explanation_image_url",
            "accepted_answers",
        }
    )
    data["answers"] = [
        {"answer_text": a.answer_text, "image_url": a.image_url, "is_correct": bool(a.is_correct)}
        for a in q.answers
    ]
    return data


async def _owned(ctx: AppContext, who: Caller, quiz_id: UUID) -> QuizSetComplete:
    """The whole quiz for its owner (answer keys included); 401 / 404 / 403 otherwise."""
    repo.require_user(who)
    quiz = await quiz_view(ctx, who, quiz_id)
    if not who.is_service and quiz.user_id != who.user_id:
        raise TuizError(ErrorCode.FORBIDDEN, f"quiz {quiz_id} is not yours to edit")
    return quiz


def _find(quiz: QuizSetComplete, question_id: UUID) -> Question:
    for q in quiz.questions:
        if q.id == question_id:
            return q
    raise TuizError(ErrorCode.NOT_FOUND, f"no question {question_id} in quiz {quiz.id}")


def validate_quiz(quiz: QuizSetComplete) -> Validation:
    """What publishing needs (errors) and what a host would want to know (warnings)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if not quiz.questions:
        errors.append(
            Problem(field="questions", message="add at least one question", code="NO_QUESTIONS")
        )
    for i, q in enumerate(quiz.questions):
        try:
            QuestionIn.model_validate(_stored_question(q))
        except ValidationError as exc:
            errors.append(
                Problem(
                    field=f"questions.{i}",
                    message=validation_error(exc).message,
                    code="INVALID_QUESTION",
                )
            )
    if not quiz.description.strip():
        warnings.append(
            Problem(field="description", message="no description", code="NO_DESCRIPTION")
        )
    return Validation(isValid=not errors, errors=errors, warnings=warnings)


# -- the quiz set ---------------------------------------------------------------------------


@router.post("/quiz", status_code=201, response_model=QuizSet)
async def create_quiz(ctx: ContextDep, who: CallerDep, body: QuizBody) -> QuizSet:
    """A new draft quiz without questions, owned by the caller."""
    if body.title is None:
        raise TuizError(
            ErrorCode.VALIDATION_ERROR,
            "title: required",
            errors=[{"loc": ["body", "title"], "msg": "Field required"}],
        )
    fields = body.model_dump(exclude_none=True, exclude={"play_settings", "status"})
    if body.status == "published":
        raise TuizError(ErrorCode.VALIDATION_ERROR, "status: publish once it has questions")
    content = QuizContent(
        **fields, play_settings=body.play_settings or PlaySettings(), questions=[]
    )
    quiz_id = await repo.create_quiz(ctx.require_pool(), who, content)
    return await summary_view(ctx, who, quiz_id)


SortField = Literal["created_at", "updated_at", "title", "times_played"]


@router.get("/quiz", response_model=QuizPage)
async def list_my_quizzes(
    ctx: ContextDep,
    who: CallerDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    search: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    difficulty: Difficulty | None = None,
    status: Status | None = None,
    sort: SortField = "updated_at",
    order: Literal["asc", "desc"] = "desc",
) -> QuizPage:
    """The caller's own quizzes (the dashboard's draft and published lists)."""
    repo.require_user(who)
    key = {"created_at": "created", "updated_at": "updated", "times_played": "plays"}.get(
        sort, sort
    )
    async with as_caller(ctx.require_pool(), who) as conn:
        rows, total = await repo.search_sets(
            conn,
            owner=who.user_id,
            mine=True,
            status=status,
            search=search,
            category=category,
            difficulty=difficulty,
            sort=key,
            descending=order == "desc",
            limit=limit,
            offset=(page - 1) * limit,
        )
    return QuizPage(
        data=[quiz_set_view(r) for r in rows],
        pagination=pagination(page, limit, total),
        totalCount=total,
    )


@router.get("/quiz/code/check/{code}", response_model=CodeCheckOut)
async def check_code(
    ctx: ContextDep, who: CallerDep, code: Annotated[int, Path(ge=100_000, le=999_999)]
) -> CodeCheckOut:
    """Whether a 6-digit play code is free (signed-in users)."""
    repo.require_user(who)
    async with ctx.require_pool().acquire() as conn:
        taken = await repo.code_taken(conn, code)
    return CodeCheckOut(
        isAvailable=not taken,
        message="this code is already used by another quiz" if taken else "code is available",
    )


@router.get(
    "/quiz/{quiz_id}",
    response_model=QuizSetComplete | QuizSet,
    response_model_exclude_unset=True,
)
async def get_quiz(
    ctx: ContextDep,
    who: CallerDep,
    quiz_id: UUID,
    include: Annotated[str | None, Query(max_length=100)] = None,
) -> QuizSetComplete | QuizSet:
    """A quiz the caller may see; `include=questions,answers` adds its questions and answers
    (correct answers for the owner only)."""
    wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
    if "questions" in wanted or "answers" in wanted:
        return await quiz_view(ctx, who, quiz_id)
    return await summary_view(ctx, who, quiz_id)


@router.get("/quiz/{quiz_id}/edit", response_model=QuizSetComplete)
async def get_quiz_for_edit(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> QuizSetComplete:
    """The whole quiz with its answer keys, for its owner's editor."""
    return await _owned(ctx, who, quiz_id)


@router.put("/quiz/{quiz_id}", response_model=QuizSet)
async def update_quiz(ctx: ContextDep, who: CallerDep, quiz_id: UUID, body: QuizBody) -> QuizSet:
    """Change the fields sent; play_settings keys are merged into the stored ones."""
    changes = body.model_dump(exclude_unset=True, exclude={"play_settings"})
    changes = {k: v for k, v in changes.items() if v is not None or k == "thumbnail_url"}
    if body.play_settings is not None:
        changes["play_settings"] = body.play_settings.as_json()
        code = changes["play_settings"].get("code")
        if code is not None:
            async with ctx.require_pool().acquire() as conn:
                if await repo.code_taken(conn, code, other_than=quiz_id):
                    raise TuizError(ErrorCode.CONFLICT, "play_settings.code: used by another quiz")
    if changes:
        await repo.update_fields(
            ctx.require_pool(), who, quiz_id, changes, merge_play_settings=True
        )
    else:
        await repo.check_owner(ctx.require_pool(), who, quiz_id)
    return await summary_view(ctx, who, quiz_id)


@router.delete("/quiz/{quiz_id}", response_model=MessageOut)
async def delete_quiz(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> MessageOut:
    """Delete a quiz (soft) and its uploaded images; refused while a game of it is live."""
    await repo.soft_delete(ctx.require_pool(), who, quiz_id)
    uploads.remove_all(ctx.settings.data_dir, "quizzes", quiz_id)
    return MessageOut(message="quiz deleted")


async def _set_status(ctx: AppContext, who: Caller, quiz_id: UUID, status: str) -> QuizSet:
    await repo.update_fields(ctx.require_pool(), who, quiz_id, {"status": status})
    return await summary_view(ctx, who, quiz_id)


def _status(quiz: QuizSet) -> StatusOut:
    return StatusOut(id=quiz.id, status=quiz.status, updated_at=quiz.updated_at)


@router.patch("/quiz/{quiz_id}/draft", response_model=StatusOut)
async def set_draft(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> StatusOut:
    """Back to draft while editing (the editor's edit page calls it on open)."""
    return _status(await _set_status(ctx, who, quiz_id, "draft"))


@router.put("/quiz/{quiz_id}/start-edit", response_model=StatusOut)
async def start_edit(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> StatusOut:
    """Same as PATCH /quiz/{id}/draft (the creation wizard's name for it)."""
    return _status(await _set_status(ctx, who, quiz_id, "draft"))


async def _publish(ctx: AppContext, who: Caller, quiz_id: UUID) -> tuple[QuizSet, Validation]:
    validation = validate_quiz(await _owned(ctx, who, quiz_id))
    if not validation.isValid:
        first = validation.errors[0]
        raise TuizError(
            ErrorCode.VALIDATION_ERROR,
            f"{first.field}: {first.message}",
            errors=[e.model_dump() for e in validation.errors],
        )
    return await _set_status(ctx, who, quiz_id, "published"), validation


@router.patch("/quiz/{quiz_id}/publish", response_model=StatusOut)
async def publish_edited(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> StatusOut:
    """Publish after editing (422 naming what is missing)."""
    quiz, _ = await _publish(ctx, who, quiz_id)
    return _status(quiz)


@router.post("/quiz/{quiz_id}/publish", response_model=PublishOut)
async def publish(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> PublishOut:
    """Publish a new quiz (422 naming what is missing); is_public stays as set."""
    quiz, validation = await _publish(ctx, who, quiz_id)
    return PublishOut(message="quiz published", quiz=quiz, validation=validation)


@router.post("/quiz/{quiz_id}/unpublish", response_model=UnpublishOut)
async def unpublish(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> UnpublishOut:
    quiz = await _set_status(ctx, who, quiz_id, "draft")
    return UnpublishOut(message="quiz unpublished", quiz=quiz)


@router.get("/quiz/{quiz_id}/validate", response_model=ValidateOut)
async def validate(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> ValidateOut:
    """What publishing would refuse (errors) and what is worth a look (warnings)."""
    quiz = await _owned(ctx, who, quiz_id)
    return ValidateOut(
        quiz=QuizBrief(
            id=quiz.id, title=quiz.title, status=quiz.status, total_questions=len(quiz.questions)
        ),
        validation=validate_quiz(quiz),
    )


# -- play code ------------------------------------------------------------------------------


@router.post("/quiz/{quiz_id}/generate-code", response_model=GeneratedCodeOut)
async def generate_code(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> GeneratedCodeOut:
    """A new free 6-digit code, stored as play_settings.code."""
    await repo.check_owner(ctx.require_pool(), who, quiz_id)
    async with ctx.require_pool().acquire() as conn:
        for _ in range(50):
            code = 100_000 + secrets.randbelow(900_000)
            if not await repo.code_taken(conn, code, other_than=quiz_id):
                break
        else:
            raise TuizError(ErrorCode.UNAVAILABLE, "no free code found; try again")
    await repo.update_fields(
        ctx.require_pool(),
        who,
        quiz_id,
        {"play_settings": {"code": code}},
        merge_play_settings=True,
    )
    return GeneratedCodeOut(code=code, message="code generated")


@router.get("/quiz/{quiz_id}/code", response_model=CodeOut)
async def get_code(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> CodeOut:
    quiz = await summary_view(ctx, who, quiz_id)
    code = quiz.play_settings.get("code")
    return CodeOut(code=code if isinstance(code, int) else None)


@router.delete("/quiz/{quiz_id}/code", response_model=MessageOut)
async def remove_code(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> MessageOut:
    quiz = await _owned(ctx, who, quiz_id)
    settings = {k: v for k, v in quiz.play_settings.items() if k != "code"}
    await repo.update_fields(ctx.require_pool(), who, quiz_id, {"play_settings": settings})
    return MessageOut(message="code removed")


# -- questions ------------------------------------------------------------------------------


@router.get(
    "/quiz/{quiz_id}/questions", response_model=QuestionsOut, response_model_exclude_unset=True
)
async def list_questions(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> QuestionsOut:
    """The questions in order (answer keys for the owner only)."""
    return QuestionsOut(questions=(await quiz_view(ctx, who, quiz_id)).questions)


@router.post("/quiz/{quiz_id}/questions", status_code=201, response_model=QuestionOut)
async def add_question(
    ctx: ContextDep, who: CallerDep, quiz_id: UUID, body: QuestionBody
) -> QuestionOut:
    """Add one question with its answers."""
    question = to_question(body, (), {})
    new_id = await repo.add_question(ctx.require_pool(), who, quiz_id, question, body.order_index)
    return QuestionOut(question=_find(await _owned(ctx, who, quiz_id), new_id))


@router.post("/quiz/{quiz_id}/questions/batch", response_model=list[Question])
async def save_questions(
    ctx: ContextDep, who: CallerDep, quiz_id: UUID, body: BatchBody
) -> list[Question]:
    """Replace all the quiz's questions with these (in order_index order), in one transaction."""
    ordered = sorted(enumerate(body.questions), key=lambda p: (p[1].order_index or 0, p[0]))
    questions = [to_question(q, ("questions", i), {}) for i, q in ordered]
    await repo.replace_questions(ctx.require_pool(), who, quiz_id, questions)
    return (await _owned(ctx, who, quiz_id)).questions


@router.put("/quiz/{quiz_id}/questions/reorder", response_model=MessageOut)
async def reorder_questions(
    ctx: ContextDep, who: CallerDep, quiz_id: UUID, body: ReorderBody
) -> MessageOut:
    await repo.reorder_questions(
        ctx.require_pool(), who, quiz_id, [(q.id, q.order_index) for q in body.questions]
    )
    return MessageOut(message="questions reordered")


@router.put("/quiz/{quiz_id}/questions/{question_id}", response_model=QuestionOut)
async def update_question(
    ctx: ContextDep, who: CallerDep, quiz_id: UUID, question_id: UUID, body: QuestionBody
) -> QuestionOut:
    """Change a question; fields not sent keep their value, `answers` (when sent) replace
    all of its answers."""
    stored = _find(await _owned(ctx, who, quiz_id), question_id)
    question = to_question(body, (), _stored_question(stored))
    await repo.update_question(
        ctx.require_pool(), who, quiz_id, question_id, question, body.order_index
    )
    return QuestionOut(question=_find(await _owned(ctx, who, quiz_id), question_id))


@router.delete("/quiz/{quiz_id}/questions/{question_id}", response_model=MessageOut)
async def delete_question(
    ctx: ContextDep, who: CallerDep, quiz_id: UUID, question_id: UUID
) -> MessageOut:
    await repo.delete_question(ctx.require_pool(), who, quiz_id, question_id)
    return MessageOut(message="question deleted")
