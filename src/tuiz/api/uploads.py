"""REST for images: the TUIZ editor's uploads into a quiz, and serving every upload back.

`POST /upload/quiz-thumbnail/{quiz_id}` (multipart field `thumbnail`) and
`POST /upload/{question,answer}-image/{quiz_id}` (field `image`) take one image for a quiz
the caller owns and answer `{url, path}`; `url` is where `GET /uploads/...` serves it.
The caller and the size are checked before the body is read: Content-Length over
TUIZ_MAX_UPLOAD_BYTES is refused with 413 unread.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from tuiz import uploads
from tuiz.api.deps import CallerDep, ContextDep
from tuiz.context import AppContext
from tuiz.errors import ErrorCode, TuizError
from tuiz.store import quizzes as quiz_repo

router = APIRouter(tags=["uploads"])

MULTIPART_SLACK = 16_384  # boundaries and part headers around the file itself


class UploadResult(BaseModel):
    url: str
    path: str


def multipart_body(field: str) -> dict[str, Any]:
    """OpenAPI for a multipart body with one binary `field` (read by hand, see read_image)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [field],
                        "properties": {field: {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    }


def _too_large(limit: int, what: str = "images") -> TuizError:
    return TuizError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"file: {what} may be at most {limit // 1_048_576 or 1} MB ({limit} bytes)",
        limit_bytes=limit,
    )


async def read_image(ctx: AppContext, request: Request, field: str) -> bytes:
    """The bytes of multipart field `field`, bounded by TUIZ_MAX_UPLOAD_BYTES."""
    data, _ = await read_upload(request, field, ctx.settings.max_upload_bytes, "images")
    return data


async def read_upload(
    request: Request, field: str, limit: int, what: str
) -> tuple[bytes, str | None]:
    """The bytes and file name of multipart field `field`, at most `limit` bytes (checked
    on Content-Length before anything is read, and again on the file itself)."""
    raw_length = request.headers.get("content-length")
    if raw_length is None or not raw_length.isdigit():
        raise TuizError(ErrorCode.VALIDATION_ERROR, "Content-Length: required for uploads")
    if int(raw_length) > limit + MULTIPART_SLACK:
        raise _too_large(limit, what)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise TuizError(
            ErrorCode.VALIDATION_ERROR, f"send multipart/form-data with the file in `{field}`"
        )
    try:
        form = await request.form(max_files=1, max_fields=8)
    except MultiPartException as exc:
        raise TuizError(ErrorCode.VALIDATION_ERROR, f"multipart body: {exc.message}") from None
    try:
        item = form.get(field)
        if not isinstance(item, UploadFile):
            raise TuizError(
                ErrorCode.VALIDATION_ERROR,
                f"{field}: no file in this field",
                errors=[{"loc": ["body", field], "msg": "file missing"}],
            )
        data = await item.read(limit + 1)
        name = item.filename
    finally:
        await form.close()
    if len(data) > limit:
        raise _too_large(limit, what)
    if not data:
        raise TuizError(ErrorCode.VALIDATION_ERROR, f"{field}: the file is empty")
    return data, name


def public_url(ctx: AppContext, request: Request, path: str) -> str:
    """Where `GET /uploads/{path}` serves a file: TUIZ_PUBLIC_URL, else this request's base."""
    base = ctx.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/uploads/{path}"


async def _quiz_image(
    ctx: AppContext, who: Any, request: Request, quiz_id: UUID, field: str
) -> UploadResult:
    await quiz_repo.check_owner(ctx.require_pool(), who, quiz_id)
    data = await read_image(ctx, request, field)
    path = uploads.save_image(ctx.settings.data_dir, "quizzes", quiz_id, data)
    return UploadResult(url=public_url(ctx, request, path), path=path)


@router.post(
    "/upload/quiz-thumbnail/{quiz_id}",
    status_code=201,
    response_model=UploadResult,
    openapi_extra=multipart_body("thumbnail"),
)
async def upload_thumbnail(
    ctx: ContextDep, who: CallerDep, request: Request, quiz_id: UUID
) -> UploadResult:
    """A quiz's thumbnail (owner only). The quiz's thumbnail_url is set by the client."""
    return await _quiz_image(ctx, who, request, quiz_id, "thumbnail")


@router.post(
    "/upload/question-image/{quiz_id}",
    status_code=201,
    response_model=UploadResult,
    openapi_extra=multipart_body("image"),
)
async def upload_question_image(
    ctx: ContextDep, who: CallerDep, request: Request, quiz_id: UUID
) -> UploadResult:
    """An image for a question or its explanation (owner only)."""
    return await _quiz_image(ctx, who, request, quiz_id, "image")


@router.post(
    "/upload/answer-image/{quiz_id}",
    status_code=201,
    response_model=UploadResult,
    openapi_extra=multipart_body("image"),
)
async def upload_answer_image(
    ctx: ContextDep, who: CallerDep, request: Request, quiz_id: UUID
) -> UploadResult:
    """An image for an answer choice (owner only)."""
    return await _quiz_image(ctx, who, request, quiz_id, "image")


@router.get(
    "/uploads/{scope}/{owner}/{name}",
    response_class=FileResponse,
    responses={200: {"content": {f: {} for f in uploads.MEDIA_TYPES.values()}}},
)
async def get_upload(ctx: ContextDep, scope: str, owner: str, name: str) -> FileResponse:
    """An uploaded image, with the type found in its bytes; never rendered as anything else."""
    path = uploads.locate(ctx.settings.data_dir, scope, owner, name)
    if path is None:
        raise TuizError(ErrorCode.NOT_FOUND, "no such upload")
    return FileResponse(
        path,
        media_type=uploads.MEDIA_TYPES[path.suffix.lstrip(".")],
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "public, max-age=86400",
        },
    )
