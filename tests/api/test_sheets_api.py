"""POST /quiz-sheets/import and /export against a real server: the sample spreadsheet, the
bounds, field-named 422s, and nothing stored either way."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import openpyxl
import pytest

from tests.servers import ServerProcess, run_server
from tuiz import sheets

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(module_db_url, tmp_path_factory.mktemp("sheets-api")) as s:
        yield s


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def stored_quizzes(db_url: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(db_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM public.quiz_sets"))
        finally:
            await conn.close()

    return asyncio.run(count())


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/quiz-sheets/import", files={"file": (name, data)})


def test_sample_xlsx_imports_as_a_document_and_stores_nothing(
    client: httpx.Client, module_db_url: str
) -> None:
    before = stored_quizzes(module_db_url)
    data = (FIXTURES / "kahoot-template-sample.xlsx").read_bytes()
    res = upload(client, "kahoot-template-sample.xlsx", data)
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["title"] == "kahoot-template-sample"
    assert [q["question_type"] for q in doc["questions"]] == [
        "multiple_choice",
        "multi_select",
        "true_false",
    ]
    assert stored_quizzes(module_db_url) == before


@pytest.mark.parametrize(
    ("data", "status", "message", "loc"),
    [
        (b"a" * (sheets.MAX_SHEET_BYTES + 1), 413, "file: spreadsheets may be at most", None),
        (b"Frage,Antwort\nx,y\n", 422, "file: no header row", ["file", "header"]),
        (
            b"Question,Answer 1,Answer 2,Time limit,Correct answer(s)\nQ,a,b,20,4\n",
            422,
            "row 2, Correct answer(s): 4 is not the number of an answer with text",
            ["file", 2, "correct"],
        ),
    ],
    ids=["too-big", "wrong-layout", "bad-correct-index"],
)
def test_bad_spreadsheets_are_refused_by_field(
    client: httpx.Client,
    module_db_url: str,
    data: bytes,
    status: int,
    message: str,
    loc: list[object] | None,
) -> None:
    before = stored_quizzes(module_db_url)
    res = upload(client, "quiz.csv", data)
    assert res.status_code == status, res.text
    body = res.json()
    assert body["message"].startswith(message)
    if loc is not None:
        assert body["error"] == "VALIDATION_ERROR"
        assert body["details"]["errors"][0]["loc"] == loc
    assert stored_quizzes(module_db_url) == before


def test_no_file_field(client: httpx.Client) -> None:
    res = client.post("/quiz-sheets/import", files={"other": ("q.csv", b"x")})
    assert res.status_code == 422
    assert res.json()["message"] == "file: no file in this field"


def test_export_xlsx_and_csv_round_trip(client: httpx.Client) -> None:
    doc = upload(client, "s.csv", (FIXTURES / "kahoot-template-sample.csv").read_bytes()).json()
    res = client.post("/quiz-sheets/export?format=xlsx", json=doc)
    assert res.status_code == 200, res.text
    assert res.headers["content-disposition"] == 'attachment; filename="s.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(res.content)).active
    assert sheet is not None
    assert sheet["B2"].value == "Which planet is known as the red planet?"
    assert sheet["H3"].value == "1,3"  # Whale and Bat
    again = upload(client, "s.xlsx", res.content).json()
    assert again["questions"] == doc["questions"]
    csv_res = client.post("/quiz-sheets/export?format=csv", json=doc)
    assert csv_res.headers["content-type"].startswith("text/csv")
    assert upload(client, "s.csv", csv_res.content).json()["questions"] == doc["questions"]


def test_export_refuses_an_invalid_document_by_field(client: httpx.Client) -> None:
    res = client.post("/quiz-sheets/export", json={"title": "", "questions": []})
    assert res.status_code == 422
    assert res.json()["details"]["errors"][0]["loc"][-1] == "title"


def test_conversions_are_rate_limited_per_address(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    limits = {"TUIZ_CREATE_LIMIT_PER_MIN": "1", "TUIZ_CREATE_LIMIT_BURST": "2"}
    with (
        run_server(module_db_url, tmp_path_factory.mktemp("sheets-limit"), **limits) as s,
        httpx.Client(base_url=s.url, timeout=10) as c,
    ):
        data = (FIXTURES / "kahoot-template-sample.csv").read_bytes()
        assert upload(c, "a.csv", data).status_code == 200
        assert (
            c.post("/quiz-sheets/export", json=upload(c, "a.csv", data).json()).status_code == 429
        )
        refused = upload(c, "a.csv", data)
        assert refused.status_code == 429
        assert refused.json()["error"] == "RATE_LIMITED"
        assert c.post("/games", json={}).status_code != 429  # new games are counted apart
