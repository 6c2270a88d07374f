"""REST for spreadsheets in the Kahoot template layout: read one into a quiz document, write
a quiz document as one. Nothing is stored either way, so guests may use both: the editor
loads the imported document, and the user saves it (signed in) or plays it (guest).

`POST /quiz-sheets/import` (multipart field `file`, xlsx or CSV, at most
`tuiz.sheets.MAX_SHEET_BYTES`) answers the version-1 document; a bad file is a 422 whose
message and `details.errors[].loc` name the row and column. `POST /quiz-sheets/export?format=`
takes a version-1 document and answers the xlsx or CSV file. Both count against a per-address
rate (TUIZ_CREATE_LIMIT_PER_MIN / _BURST, like new games; 429 RATE_LIMITED beyond it).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from tuiz import sheets
from tuiz.api.deps import limit_conversions
from tuiz.api.uploads import multipart_body, read_upload
from tuiz.store.quizzes import QuizContent

router = APIRouter(tags=["quiz sheets"], dependencies=[Depends(limit_conversions)])

MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


@router.post("/quiz-sheets/import", openapi_extra=multipart_body("file"))
async def import_sheet(request: Request) -> dict[str, Any]:
    """The quiz in an xlsx or CSV file (Kahoot template layout), not saved; its title is the
    file's name."""
    data, name = await read_upload(request, "file", sheets.MAX_SHEET_BYTES, "spreadsheets")
    title = PurePath(name).stem if name else None
    return await run_in_threadpool(sheets.read_quiz, data, name, title)


@router.post("/quiz-sheets/export")
async def export_sheet(body: QuizContent, format: Literal["xlsx", "csv"] = "xlsx") -> Response:
    """The quiz in the template layout (multiple choice, multi-select and true/false only)."""
    data = await run_in_threadpool(sheets.write_quiz, body.to_json(), format)
    safe = "".join(c for c in body.title if c.isascii() and (c.isalnum() or c in " -_")).strip()
    return Response(
        data,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{safe or "quiz"}.{format}"'},
    )
