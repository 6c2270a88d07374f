"""Quizzes as spreadsheets in the common Kahoot template layout (xlsx and CSV), both ways.

The layout: a header row with "Question", "Answer 1" .. "Answer 4", "Time limit (sec)" and
"Correct answer(s)" (numbers such as `2` or `1,3`), one question per row below it. Rows
above the header (the template's instructions) and a leading number column are ignored; the
header is found by its words (English or Japanese), so columns may be anywhere. Optional
"Answer 5"/"Answer 6" columns are read too (tuiz allows six choices). One correct number
makes a multiple_choice question, several a multi_select; answers exactly True/False make a
true_false question.

Every input is bounded before any parsing: the file's size (`MAX_SHEET_BYTES`), the xlsx
archive's unpacked size and member count (a zip bomb is refused unread), the rows scanned and
the questions kept. openpyxl reads the XML through defusedxml (installed beside it), so
entity tricks are refused. Errors are VALIDATION_ERROR naming the row and column, e.g.
`row 9, Correct answer(s): 5 is not the number of an answer with text`.

Export writes the same layout; questions the layout cannot hold (type_answer, poll, more than
six answers) are refused by name: export those quizzes as JSON.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from tuiz.errors import ErrorCode, TuizError

MAX_SHEET_BYTES = 1_048_576  # the file as uploaded
MAX_UNPACKED_BYTES = 16_777_216  # an xlsx archive's members, uncompressed, added up
MAX_ZIP_MEMBERS = 200
MAX_SCAN_ROWS = 400  # header search plus question rows, blank ones included
MAX_HEADER_ROW = 30  # the header must be within the first rows
MAX_COLUMNS = 30
MAX_QUESTIONS = 100  # = tuiz.store.quizzes.MAX_QUESTIONS
MAX_CHOICES = 6
TIME_LIMITS = (5, 240)  # answering_time bounds of the quiz format
FORMULA_STARTS = ("=", "+", "-", "@")

Format = Literal["xlsx", "csv"]

# The template's own header texts, written on export.
QUESTION_HEADER = "Question - max 120 characters"
TIME_HEADER = "Time limit (sec) – 5, 10, 20, 30, 60, 90, 120, or 240 secs"
CORRECT_HEADER = "Correct answer(s) - choose at least one"


def _refuse(message: str, *loc: str | int) -> TuizError:
    return TuizError(
        ErrorCode.VALIDATION_ERROR,
        message,
        errors=[{"loc": ["file", *loc], "msg": message}],
    )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if text[:1] == "'" and text[1:2] in FORMULA_STARTS:  # as `_safe_cell` wrote it
        return text[1:]
    return text


# -- reading ------------------------------------------------------------------------------


def sheet_format(filename: str | None, data: bytes) -> Format:
    """xlsx when the bytes are a zip archive, else CSV (the name only breaks no tie)."""
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if filename and filename.lower().endswith((".xlsx", ".xlsm")):
        raise _refuse("file: this .xlsx file is not a valid Excel workbook")
    return "csv"


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise _refuse("file: not a valid Excel workbook") from None
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise _refuse(f"file: the workbook has more than {MAX_ZIP_MEMBERS} parts")
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise _refuse(f"file: the workbook unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    import openpyxl  # imported here: only imports pay for it

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise _refuse(f"file: the workbook cannot be read ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise _refuse("file: the workbook has no sheet")
        for row in sheet.iter_rows(max_row=MAX_SCAN_ROWS, max_col=MAX_COLUMNS, values_only=True):
            yield [_cell_text(v) for v in row]
    finally:
        book.close()


def _csv_rows(data: bytes) -> Iterator[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp932")  # Excel's CSV on a Japanese Windows
        except UnicodeDecodeError:
            raise _refuse("file: the CSV is neither UTF-8 nor Shift_JIS text") from None
    if "\x00" in text:
        raise _refuse("file: the CSV contains NUL characters")
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for count, row in enumerate(reader):
            if count >= MAX_SCAN_ROWS:
                return
            yield [_cell_text(c) for c in row[:MAX_COLUMNS]]
    except csv.Error as exc:
        raise _refuse(f"file: the CSV cannot be read ({exc})") from None


def _columns(header: Sequence[str]) -> dict[str, int] | None:
    """Column index per role when `header` is the template's header row, else None.
    English header words, or the Japanese ones (問題, 回答1/選択肢1, 制限時間, 正解)."""
    found: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = unicodedata.normalize("NFKC", raw).casefold()
        answer = re.match(r"^(?:answer|回答|選択肢|答え)\s*(\d)(?!\d)", name)
        if answer and 1 <= int(answer.group(1)) <= MAX_CHOICES:
            found.setdefault(f"answer{answer.group(1)}", index)
        elif name.startswith(("question", "問題", "質問")):
            found.setdefault("question", index)
        elif name.startswith(("time limit", "制限時間")):
            found.setdefault("time", index)
        elif name.startswith(("correct", "正解")):
            found.setdefault("correct", index)
    needed = {"question", "answer1", "answer2", "time", "correct"}
    return found if needed <= found.keys() else None


def _correct_numbers(raw: str, row: int, filled: Sequence[int]) -> list[int]:
    label = "Correct answer(s)"
    if not raw:
        raise _refuse(f"row {row}, {label}: give the number of at least one answer", row, "correct")
    numbers = []
    for part in re.split(r"[,;、\s]+", raw):
        if not part:
            continue
        try:
            number = int(float(part))
        except ValueError:
            raise _refuse(
                f"row {row}, {label}: {part!r} is not an answer number", row, "correct"
            ) from None
        if number not in filled:
            raise _refuse(
                f"row {row}, {label}: {number} is not the number of an answer with text",
                row,
                "correct",
            )
        if number not in numbers:
            numbers.append(number)
    return numbers


def _time_limit(raw: str, row: int) -> int:
    label = "Time limit (sec)"
    if not raw:
        return 20
    try:
        seconds = int(float(raw))
    except ValueError:
        raise _refuse(f"row {row}, {label}: {raw!r} is not a number", row, "time") from None
    low, high = TIME_LIMITS
    if not low <= seconds <= high:
        raise _refuse(f"row {row}, {label}: {seconds} is outside {low}-{high} seconds", row, "time")
    return seconds


def _question(cells: Sequence[str], cols: dict[str, int], row: int) -> dict[str, Any]:
    def at(key: str) -> str:
        index = cols.get(key)
        return cells[index] if index is not None and index < len(cells) else ""

    text = at("question")
    if not text:
        raise _refuse(f"row {row}, Question: the question has no text", row, "question")
    if len(text) > 500:
        raise _refuse(f"row {row}, Question: longer than 500 characters", row, "question")
    answers = [(n, at(f"answer{n}")) for n in range(1, MAX_CHOICES + 1)]
    filled = [n for n, value in answers if value]
    if len(filled) < 2:
        raise _refuse(f"row {row}, Answer 1-4: a question needs at least 2 answers", row, "answers")
    for n, value in answers:
        if len(value) > 200:
            raise _refuse(f"row {row}, Answer {n}: longer than 200 characters", row, f"answer{n}")
    correct = _correct_numbers(at("correct"), row, filled)
    texts = [value for _, value in answers if value]
    if len({t.casefold() for t in texts}) != len(texts):
        raise _refuse(f"row {row}, Answer 1-4: two answers have the same text", row, "answers")
    kind = "multi_select" if len(correct) > 1 else "multiple_choice"
    if len(correct) == 1 and sorted(t.casefold() for t in texts) == ["false", "true"]:
        kind = "true_false"
    return {
        "question_text": text,
        "question_type": kind,
        "answering_time": _time_limit(at("time"), row),
        "points": 1000,
        "answers": [
            {"answer_text": value, "is_correct": n in correct} for n, value in answers if value
        ],
    }


def read_quiz(data: bytes, filename: str | None, title: str | None = None) -> dict[str, Any]:
    """A version-1 quiz document (unsaved) from a spreadsheet's bytes; VALIDATION_ERROR
    names the row and column of the first problem, PAYLOAD_TOO_LARGE an oversized file."""
    if len(data) > MAX_SHEET_BYTES:
        raise TuizError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"file: a spreadsheet may be at most {MAX_SHEET_BYTES} bytes",
            limit_bytes=MAX_SHEET_BYTES,
        )
    if not data:
        raise _refuse("file: the file is empty")
    rows = _xlsx_rows(data) if sheet_format(filename, data) == "xlsx" else _csv_rows(data)
    cols: dict[str, int] | None = None
    questions: list[dict[str, Any]] = []
    for number, cells in enumerate(rows, start=1):
        if cols is None:
            cols = _columns(cells)
            if cols is None and number >= MAX_HEADER_ROW:
                break
            continue
        if not any(cells[i] for i in cols.values() if i < len(cells)):
            continue  # blank, or only the template's row number
        if len(questions) >= MAX_QUESTIONS:
            raise _refuse(f"row {number}: a quiz has at most {MAX_QUESTIONS} questions", number)
        questions.append(_question(cells, cols, number))
    if cols is None:
        raise _refuse(
            "file: no header row with Question, Answer 1, Answer 2, Time limit and"
            f" Correct answer(s) in the first {MAX_HEADER_ROW} rows (Kahoot template layout)",
            "header",
        )
    if not questions:
        raise _refuse("file: no question rows below the header", "rows")
    name = (title or "").strip()[:200] or "Imported quiz"
    return {"version": 1, "title": name, "questions": questions}


# -- writing ------------------------------------------------------------------------------


def _rows_for(document: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    questions = document.get("questions") or []
    width = max([4, *(len(q.get("answers") or []) for q in questions)])
    if width > MAX_CHOICES:
        width = MAX_CHOICES
    header = [
        "",
        QUESTION_HEADER,
        *[f"Answer {n} - max 75 characters" for n in range(1, width + 1)],
        TIME_HEADER,
        CORRECT_HEADER,
    ]
    rows: list[list[Any]] = []
    for index, q in enumerate(questions):
        kind = q.get("question_type", "multiple_choice")
        if kind in ("type_answer", "poll"):
            raise TuizError(
                ErrorCode.VALIDATION_ERROR,
                f"questions.{index}: a {kind} question does not fit the spreadsheet layout;"
                " export the quiz as JSON",
                errors=[{"loc": ["questions", index, "question_type"], "msg": "not exportable"}],
            )
        answers = q.get("answers") or []
        texts = [a.get("answer_text", "") for a in answers]
        correct = ",".join(str(i + 1) for i, a in enumerate(answers) if a.get("is_correct"))
        rows.append(
            [
                index + 1,
                q.get("question_text", ""),
                *(texts + [""] * (width - len(texts))),
                q.get("answering_time", 30),
                correct,
            ]
        )
    return header, rows


def _safe_cell(value: Any) -> Any:
    """CSV text a spreadsheet would run as a formula (=, +, -, @) gets a leading apostrophe
    (which `_cell_text` takes off again on import)."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def write_quiz(document: dict[str, Any], kind: Format) -> bytes:
    """The quiz (a validated version-1 document) in the template layout."""
    header, rows = _rows_for(document)
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([[_safe_cell(c) for c in row] for row in rows])
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Quiz"
    for r, values in enumerate([header, *rows], start=1):
        for c, value in enumerate(values, start=1):
            cell = sheet.cell(row=r, column=c, value=value)
            if cell.data_type == "f":  # openpyxl takes "=..." text for a formula
                cell.data_type = "s"
    out_bytes = io.BytesIO()
    book.save(out_bytes)
    return out_bytes.getvalue()
