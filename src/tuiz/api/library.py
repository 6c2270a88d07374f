"""REST for the TUIZ web client's quiz library: `/quiz-library/*` and `/api/quizzes/*`.

My library (the caller's own quizzes, any status), public browsing (published public quizzes
of everyone), categories, counts, a preview (answer keys for the owner only) and cloning a
quiz into a private draft of one's own. Same tables and rules as `tuiz.api.quizzes`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tuiz import uploads
from tuiz.api.deps import CallerDep, ContextDep
from tuiz.api.editor import Pagination, pagination
from tuiz.api.quizzes import Question, QuizSet, quiz_set_view, quiz_view, summary_view
from tuiz.context import AppContext
from tuiz.errors import ErrorCode, TuizError
from tuiz.store import accounts as accounts_repo
from tuiz.store import quizzes as repo
from tuiz.store.quizzes import Difficulty
from tuiz.store.scoped import as_caller

router = APIRouter(tags=["quiz library (TUIZ client)"])

Page = Annotated[int, Query(ge=1, le=10_000)]
Limit = Annotated[int, Query(ge=1, le=100)]
Search = Annotated[str | None, Query(max_length=200)]
CategoryQ = Annotated[str | None, Query(max_length=100)]
Sort = Annotated[
    str, Query(max_length=40, description="`<field>_<asc|desc>`: " + ", ".join(repo.SORTS))
]


class LibraryPage(BaseModel):
    data: list[QuizSet]
    pagination: Pagination


class CategoryCount(BaseModel):
    category: str
    count: int


class CategoriesOut(BaseModel):
    categories: list[CategoryCount]


class StatusCounts(BaseModel):
    all: int
    published: int
    draft: int


class PreviewOut(BaseModel):
    quiz: QuizSet
    questions: list[Question]


class OriginalQuiz(BaseModel):
    id: UUID
    title: str
    author: str


class CloneOut(BaseModel):
    clonedQuiz: QuizSet
    message: str
    originalQuiz: OriginalQuiz


class StatusBody(BaseModel):
    status: Literal["draft", "published", "archived"]


def parse_sort(sort: str) -> tuple[str, bool]:
    """`updated_desc` -> ("updated", True); VALIDATION_ERROR naming `sort` otherwise."""
    field, _, direction = sort.rpartition("_")
    if field.endswith("_at"):
        field = field[:-3]
    if field not in repo.SORTS or direction not in ("asc", "desc"):
        raise TuizError(
            ErrorCode.VALIDATION_ERROR,
            f"sort: expected <field>_<asc|desc> with field one of {', '.join(repo.SORTS)}",
        )
    return field, direction == "desc"


async def _page(
    ctx: AppContext,
    who: CallerDep,
    *,
    mine: bool,
    status: Literal["published", "draft"] | None,
    page: int,
    limit: int,
    search: str | None,
    category: str | None,
    difficulty: Difficulty | None,
    sort: str,
) -> LibraryPage:
    field, descending = parse_sort(sort)
    async with as_caller(ctx.require_pool(), who) as conn:
        rows, total = await repo.search_sets(
            conn,
            owner=who.user_id,
            mine=mine,
            status=status,
            search=search,
            category=category,
            difficulty=difficulty,
            sort=field,
            descending=descending,
            limit=limit,
            offset=(page - 1) * limit,
        )
    return LibraryPage(
        data=[quiz_set_view(r) for r in rows], pagination=pagination(page, limit, total)
    )


@router.get("/quiz-library/my-library", response_model=LibraryPage)
async def my_library(
    ctx: ContextDep,
    who: CallerDep,
    page: Page = 1,
    limit: Limit = 12,
    category: CategoryQ = None,
    status: Literal["all", "published", "draft"] = "all",
    sort: Sort = "updated_desc",
    search: Search = None,
) -> LibraryPage:
    """The caller's own quizzes."""
    repo.require_user(who)
    return await _page(
        ctx,
        who,
        mine=True,
        status=None if status == "all" else status,
        page=page,
        limit=limit,
        search=search,
        category=category,
        difficulty=None,
        sort=sort,
    )


@router.get("/quiz-library/public/browse", response_model=LibraryPage)
async def browse_public(
    ctx: ContextDep,
    who: CallerDep,
    page: Page = 1,
    limit: Limit = 12,
    category: CategoryQ = None,
    difficulty: Difficulty | None = None,
    sort: Sort = "plays_desc",
    search: Search = None,
) -> LibraryPage:
    """Published public quizzes of everyone."""
    return await _page(
        ctx,
        who,
        mine=False,
        status="published",
        page=page,
        limit=limit,
        search=search,
        category=category,
        difficulty=difficulty,
        sort=sort,
    )


@router.get("/quiz-library/categories", response_model=CategoriesOut)
async def categories(ctx: ContextDep, who: CallerDep) -> CategoriesOut:
    """Categories of published public quizzes, most used first."""
    async with as_caller(ctx.require_pool(), who) as conn:
        found = await repo.public_categories(conn)
    return CategoriesOut(categories=[CategoryCount(category=c, count=n) for c, n in found])


@router.get("/quiz-library/status-counts", response_model=StatusCounts)
async def status_counts(ctx: ContextDep, who: CallerDep) -> StatusCounts:
    """How many of the caller's quizzes are published and drafts."""
    repo.require_user(who)
    if who.user_id is None:
        return StatusCounts(all=0, published=0, draft=0)
    async with as_caller(ctx.require_pool(), who) as conn:
        counts = await repo.status_counts(conn, who.user_id)
    return StatusCounts(**counts)


@router.get(
    "/quiz-library/preview/{quiz_id}", response_model=PreviewOut, response_model_exclude_unset=True
)
async def preview(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> PreviewOut:
    """A quiz and its questions (answer keys for the owner only)."""
    quiz = await quiz_view(ctx, who, quiz_id)
    return PreviewOut(
        quiz=QuizSet(**quiz.model_dump(exclude={"questions"})), questions=quiz.questions
    )


@router.post("/quiz-library/clone/{quiz_id}", status_code=201, response_model=CloneOut)
async def clone(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> CloneOut:
    """A private draft copy (with copies of its images) of a quiz you own or that is public."""
    original = await summary_view(ctx, who, quiz_id)
    new_id = uuid.uuid4()
    copied = uploads.copy_all(ctx.settings.data_dir, quiz_id, new_id)
    try:
        await repo.clone_quiz(ctx.require_pool(), who, quiz_id, new_id)
    except BaseException:
        if copied:
            uploads.remove_all(ctx.settings.data_dir, "quizzes", new_id)
        raise
    async with ctx.require_pool().acquire() as conn:
        author = await accounts_repo.fetch_profile(conn, original.user_id)
    return CloneOut(
        clonedQuiz=await summary_view(ctx, who, new_id),
        message="quiz cloned",
        originalQuiz=OriginalQuiz(
            id=original.id,
            title=original.title,
            author=author["display_name"] if author is not None else "",
        ),
    )


@router.get("/api/quizzes/{quiz_id}", response_model=QuizSet)
async def quiz_details(ctx: ContextDep, who: CallerDep, quiz_id: UUID) -> QuizSet:
    """A quiz set without its questions, as the caller may see it."""
    return await summary_view(ctx, who, quiz_id)


@router.patch("/api/quizzes/{quiz_id}/status", response_model=QuizSet)
async def quiz_status(ctx: ContextDep, who: CallerDep, quiz_id: UUID, body: StatusBody) -> QuizSet:
    """Set draft / published (needs a question) / archived; owner only."""
    await repo.update_fields(ctx.require_pool(), who, quiz_id, {"status": body.status})
    return await summary_view(ctx, who, quiz_id)
