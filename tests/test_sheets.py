"""Quiz spreadsheets (Kahoot template layout): the sample fixtures, round trips, bad files."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest

from tuiz import sheets
from tuiz.errors import ErrorCode, TuizError
from tuiz.store.quizzes import parse_content

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HEADER = ["Question", "Answer 1", "Answer 2", "Answer 3", "Answer 4", "Time limit", "Correct"]


def as_csv(*rows: list[object]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def refused(data: bytes, name: str = "q.csv") -> TuizError:
    with pytest.raises(TuizError) as caught:
        sheets.read_quiz(data, name)
    return caught.value


@pytest.mark.parametrize("ext", ["xlsx", "csv"])
def test_sample_fixture_reads_as_a_valid_quiz(ext: str) -> None:
    data = (FIXTURES / f"kahoot-template-sample.{ext}").read_bytes()
    doc = sheets.read_quiz(data, f"kahoot-template-sample.{ext}", "Sample")
    content = parse_content(doc)  # what POST /quiz-sets accepts
    assert content.title == "Sample"
    kinds = [q.question_type.value for q in content.questions]
    assert kinds == ["multiple_choice", "multi_select", "true_false"]
    first, second, third = content.questions
    assert [a.answer_text for a in first.answers if a.is_correct] == ["Mars"]
    assert first.answering_time == 20
    assert [a.answer_text for a in second.answers if a.is_correct] == ["Whale", "Bat"]
    assert [a.answer_text for a in third.answers] == ["True", "False"]  # empty 3/4 dropped


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_export_then_import_gives_the_same_quiz(kind: sheets.Format) -> None:
    doc = sheets.read_quiz((FIXTURES / "kahoot-template-sample.csv").read_bytes(), "s.csv", "T")
    doc["questions"][0]["answers"][0]["answer_text"] = "=HYPERLINK(1)"  # stays text
    doc["questions"][0]["answers"][2]["answer_text"] = "-5"
    written = sheets.write_quiz(parse_content(doc).to_json(), kind)
    again = sheets.read_quiz(written, f"quiz.{kind}", "T")
    assert again == doc
    if kind == "csv":
        assert b"'=HYPERLINK(1)" in written  # a spreadsheet shows it as text, never runs it
    else:
        cell = openpyxl.load_workbook(io.BytesIO(written)).active["C2"]  # type: ignore[index]
        assert cell.data_type == "s"


def test_japanese_header_and_full_width_numbers() -> None:
    header = [
        "",
        "問題（最大120文字）",
        "回答１",
        "回答２",
        "回答３",
        "回答４",
        "制限時間（秒）",
        "正解",
    ]
    data = as_csv(["クイズ"], header, [1, "日本の首都は？", "大阪", "東京", "", "", 20, "２"])
    doc = sheets.read_quiz(data, "q.csv", "日本")
    (question,) = doc["questions"]
    assert question["question_text"] == "日本の首都は？"
    assert [a["answer_text"] for a in question["answers"] if a["is_correct"]] == ["東京"]


def test_too_big_is_refused_unread() -> None:
    err = refused(b"x" * (sheets.MAX_SHEET_BYTES + 1))
    assert err.code is ErrorCode.PAYLOAD_TOO_LARGE


def test_wrong_layout_names_the_header() -> None:
    err = refused(as_csv(["Frage", "Antwort"], ["a", "b"]))
    assert err.code is ErrorCode.VALIDATION_ERROR
    assert "no header row" in err.message
    assert err.details["errors"][0]["loc"] == ["file", "header"]


@pytest.mark.parametrize(
    ("correct", "needle"),
    [
        ("5", "5 is not the number of an answer with text"),
        ("3", "3 is not the number of an answer with text"),  # answer 3 is empty
        ("two", "'two' is not an answer number"),
        ("", "give the number of at least one answer"),
    ],
)
def test_bad_correct_answer_names_row_and_column(correct: str, needle: str) -> None:
    ok = ["Ok?", "a", "b", "c", "", 20, 1]
    data = as_csv(HEADER, ok, ["Bad?", "a", "b", "", "", 20, correct])
    err = refused(data)
    assert err.message == f"row 3, Correct answer(s): {needle}"
    assert err.details["errors"][0]["loc"] == ["file", 3, "correct"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["", "a", "b", "", "", 20, 1], "row 2, Question: the question has no text"),
        (["Q", "a", "", "", "", 20, 1], "row 2, Answer 1-4: a question needs at least 2 answers"),
        (["Q", "a", "A", "", "", 20, 1], "row 2, Answer 1-4: two answers have the same text"),
        (["Q", "a", "b", "", "", 3, 1], "row 2, Time limit (sec): 3 is outside 5-240 seconds"),
        (["Q", "a", "b", "", "", "soon", 1], "row 2, Time limit (sec): 'soon' is not a number"),
    ],
)
def test_bad_rows(row: list[object], message: str) -> None:
    assert refused(as_csv(HEADER, row)).message == message


def test_row_count_is_bounded() -> None:
    rows = [[f"Q{i}", "a", "b", "", "", 20, 1] for i in range(sheets.MAX_QUESTIONS + 1)]
    err = refused(as_csv(HEADER, *rows))
    assert f"at most {sheets.MAX_QUESTIONS} questions" in err.message


def test_header_only_has_no_questions() -> None:
    assert refused(as_csv(HEADER)).message == "file: no question rows below the header"


def test_openpyxl_parses_through_defusedxml() -> None:
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML  # entity expansion and external entities refused


def test_zip_bomb_and_damaged_workbooks_are_refused() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/big.xml", b"0" * (sheets.MAX_UNPACKED_BYTES + 1))
    assert "unpacks to more than" in refused(bomb.getvalue(), "q.xlsx").message
    damaged = io.BytesIO()
    with zipfile.ZipFile(damaged, "w") as z:
        z.writestr("hello.txt", b"not a workbook")
    assert "cannot be read" in refused(damaged.getvalue(), "q.xlsx").message
    assert "not a valid Excel workbook" in refused(b"a,b\n", "q.xlsx").message


def test_type_answer_and_poll_do_not_export() -> None:
    doc = {
        "version": 1,
        "title": "T",
        "questions": [
            {"question_text": "Q", "question_type": "type_answer", "accepted_answers": ["x"]}
        ],
    }
    with pytest.raises(TuizError) as caught:
        sheets.write_quiz(parse_content(doc).to_json(), "csv")
    assert caught.value.message.startswith("questions.0: a type_answer question does not fit")
