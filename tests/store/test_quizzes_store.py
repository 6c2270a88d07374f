"""Quiz repository: the JSON format, import/export, load_quiz for the engine, the sample quiz."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from tests.factories import make_game, make_user
from tuiz.auth import Caller
from tuiz.errors import ErrorCode, TuizError
from tuiz.game.model import Choice, Explanation, QuestionType, Quiz
from tuiz.store import quizzes
from tuiz.store.db import create_pool


def sample() -> dict[str, Any]:
    return quizzes.sample_document()


def user(user_id: UUID) -> Caller:
    return Caller(role="authenticated", user_id=user_id, claims={"sub": str(user_id)})


async def test_sample_document_is_valid_and_covers_every_type() -> None:
    content = quizzes.parse_content(sample())
    assert content.to_json() == sample()  # the shipped file is in normal form
    assert {q.question_type for q in content.questions} == set(QuestionType)
    assert any(q.explanation_text for q in content.questions)
    assert len(content.questions) == 5


async def test_import_export_round_trip(conn: asyncpg.Connection) -> None:
    owner = await make_user(conn)
    data = sample()
    quiz_id = await quizzes.import_quiz(conn, owner, data)
    exported = await quizzes.export_quiz(conn, quiz_id)
    assert exported == data
    again = await quizzes.import_quiz(conn, owner, exported)
    assert await quizzes.export_quiz(conn, again) == data
    assert await conn.fetchval("SELECT total_questions FROM quiz_sets WHERE id = $1", quiz_id) == 5


async def test_minimal_document_gets_defaults(conn: asyncpg.Connection) -> None:
    owner = await make_user(conn)
    minimal = {
        "title": "  Tiny  ",
        "questions": [
            {
                "question_text": "Q?",
                "answers": [{"answer_text": "a", "is_correct": True}, {"answer_text": "b"}],
            },
            {
                "question_text": "Vote",
                "question_type": "poll",
                "answers": [{"answer_text": "x"}, {"answer_text": "y"}],
            },
        ],
    }
    out = await quizzes.export_quiz(conn, await quizzes.import_quiz(conn, owner, minimal))
    assert out["title"] == "Tiny" and out["status"] == "draft" and out["is_public"] is False
    assert out["version"] == 1 and out["play_settings"] == {}
    q0, q1 = out["questions"]
    assert (q0["points"], q0["answering_time"], q0["show_question_time"]) == (1000, 30, 10)
    assert q1["points"] == 0  # a poll scores nothing by default


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(title=""), "title"),
        (lambda d: d.update(title="x" * 201), "title"),
        (lambda d: d.update(unknown=1), "unknown"),
        (lambda d: d["questions"][0].update(question_type="essay"), "questions.0.question_type"),
        (lambda d: d["questions"][0]["answers"][2].update(is_correct=True), "questions.0"),
        (lambda d: d["questions"][1]["answers"].pop(), "questions.1"),
        (lambda d: d["questions"][3].update(accepted_answers=[]), "questions.3"),
        (lambda d: d["questions"][4].update(points=100), "questions.4"),
        (lambda d: d["questions"][0].update(answering_time=2), "questions.0.answering_time"),
    ],
)
async def test_import_refuses_bad_documents_and_writes_nothing(
    conn: asyncpg.Connection, mutate: Any, where: str
) -> None:
    owner = await make_user(conn)
    data = copy.deepcopy(sample())
    mutate(data)
    with pytest.raises(TuizError) as err:
        await quizzes.import_quiz(conn, owner, data)
    assert err.value.code is ErrorCode.VALIDATION_ERROR
    assert err.value.message.startswith(where), err.value.message
    assert await conn.fetchval("SELECT count(*) FROM quiz_sets") == 0


async def test_load_quiz_builds_the_engine_model(conn: asyncpg.Connection) -> None:
    owner = await make_user(conn)
    quiz_id = await quizzes.import_quiz(conn, owner, sample())
    quiz = await quizzes.load_quiz(conn, quiz_id)
    assert isinstance(quiz, Quiz)
    assert quiz.id == str(quiz_id) and quiz.title == sample()["title"]
    types = [q.type for q in quiz.questions]
    assert types == [
        QuestionType.MULTIPLE_CHOICE,
        QuestionType.TRUE_FALSE,
        QuestionType.MULTI_SELECT,
        QuestionType.TYPE_ANSWER,
        QuestionType.POLL,
    ]
    first = quiz.questions[0]
    assert [c.text for c in first.choices] == [
        a["answer_text"] for a in sample()["questions"][0]["answers"]
    ]
    assert [c.is_correct for c in first.choices] == [False, True, False, False]
    assert all(isinstance(c, Choice) and UUID(c.id) for c in first.choices)
    assert isinstance(first.explanation, Explanation)
    assert first.explanation.title == "東京 / Tokyo"
    assert (first.show_question_time, first.answering_time, first.show_explanation_time) == (
        5,
        20,
        8,
    )
    assert quiz.questions[1].explanation is None
    assert quiz.questions[3].accepted_answers == ("thank you", "thanks", "thankyou")
    assert quiz.questions[3].choices == ()
    assert quiz.questions[4].points == 0
    assert quiz.questions[2].points == 1500
    ids = {q.id for q in quiz.questions}
    rows = await conn.fetch(
        "SELECT id::text, order_index FROM questions WHERE question_set_id = $1", quiz_id
    )
    assert ids == {r["id"] for r in rows}
    assert [q.id for q in quiz.questions] == [
        r["id"] for r in sorted(rows, key=lambda r: r["order_index"])
    ]


async def test_load_quiz_through_a_pool_and_visibility(db_url: str) -> None:
    pool = await create_pool(db_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            owner, other = await make_user(conn), await make_user(conn)
            draft = await quizzes.import_quiz(conn, owner, {**sample(), "status": "draft"})
            public = await quizzes.import_quiz(conn, owner, sample())
            empty = await quizzes.import_quiz(conn, owner, {"title": "empty"})
        assert (await quizzes.load_quiz(pool, draft)).id == str(draft)
        assert (await quizzes.load_quiz(pool, draft, caller=user(owner))).id == str(draft)
        assert (await quizzes.load_quiz(pool, public, caller=user(other))).id == str(public)
        with pytest.raises(TuizError) as err:
            await quizzes.load_quiz(pool, draft, caller=user(other))
        assert err.value.code is ErrorCode.NOT_FOUND
        with pytest.raises(TuizError) as err:
            await quizzes.load_quiz(pool, uuid4())
        assert err.value.code is ErrorCode.NOT_FOUND
        with pytest.raises(TuizError) as err:
            await quizzes.load_quiz(pool, empty)
        assert err.value.code is ErrorCode.VALIDATION_ERROR
        await quizzes.soft_delete(pool, user(owner), public)
        with pytest.raises(TuizError) as err:
            await quizzes.load_quiz(pool, public)
        assert err.value.code is ErrorCode.NOT_FOUND
    finally:
        await pool.close()


async def test_replace_soft_deletes_old_questions_and_refuses_live_games(db_url: str) -> None:
    pool = await create_pool(db_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            owner = await make_user(conn)
            quiz_id = await quizzes.import_quiz(conn, owner, sample())
            before = await quizzes.load_quiz(conn, quiz_id)
        smaller = {**sample(), "questions": sample()["questions"][:2]}
        await quizzes.replace_content(pool, user(owner), quiz_id, quizzes.parse_content(smaller))
        after = await quizzes.load_quiz(pool, quiz_id)
        assert len(after.questions) == 2
        assert not {q.id for q in after.questions} & {q.id for q in before.questions}
        async with pool.acquire() as conn:
            kept = await conn.fetchval(
                "SELECT count(*) FROM questions WHERE question_set_id = $1"
                " AND deleted_at IS NOT NULL",
                quiz_id,
            )
            assert kept == 5  # replaced questions stay for records of past games
            assert await quizzes.export_quiz(conn, quiz_id) == smaller
            game = await make_game(conn, owner, quiz_id, status="active")
        with pytest.raises(TuizError) as err:
            await quizzes.replace_content(
                pool, user(owner), quiz_id, quizzes.parse_content(sample())
            )
        assert err.value.code is ErrorCode.CONFLICT
        with pytest.raises(TuizError) as err:
            await quizzes.soft_delete(pool, user(owner), quiz_id)
        assert err.value.code is ErrorCode.CONFLICT
        await quizzes.update_fields(pool, user(owner), quiz_id, {"title": "Renamed"})
        async with pool.acquire() as conn:
            await conn.execute("UPDATE games SET status = 'finished' WHERE id = $1", game)
        await quizzes.replace_content(pool, user(owner), quiz_id, quizzes.parse_content(sample()))
        assert len((await quizzes.load_quiz(pool, quiz_id)).questions) == 5
    finally:
        await pool.close()


async def test_writes_run_under_the_callers_rls(db_url: str) -> None:
    """Even past the server's checks, RLS refuses a write on someone else's rows."""
    pool = await create_pool(db_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            owner, other = await make_user(conn), await make_user(conn)
            quiz_id = await quizzes.import_quiz(conn, owner, sample())
        from tuiz.store.scoped import as_caller

        async with as_caller(pool, user(other), write=True) as c:
            status = await c.execute("UPDATE quiz_sets SET title = 'hijack' WHERE id = $1", quiz_id)
            assert status == "UPDATE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with as_caller(pool, user(other), write=True) as c:
                await c.execute(
                    "INSERT INTO quiz_sets (user_id, title) VALUES ($1, 'forged')", owner
                )
        async with as_caller(pool, user(owner), write=True) as c:
            await c.execute("UPDATE quiz_sets SET title = 'mine' WHERE id = $1", quiz_id)
        async with as_caller(pool, user(owner)) as c:  # read-only stays read-only
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await c.execute("UPDATE quiz_sets SET title = 'x' WHERE id = $1", quiz_id)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT title FROM quiz_sets WHERE id = $1", quiz_id) == (
                "mine"
            )
    finally:
        await pool.close()


async def test_sample_quiz_loaded_once(db_url: str) -> None:
    pool = await create_pool(db_url, max_size=4)
    try:
        ids = await asyncio.gather(*(quizzes.ensure_sample_quiz(pool) for _ in range(3)))
        assert set(ids) == {quizzes.SAMPLE_QUIZ_ID}
        assert await quizzes.ensure_sample_quiz(pool) == quizzes.SAMPLE_QUIZ_ID
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM quiz_sets") == 1
            row = await conn.fetchrow(
                "SELECT q.status::text, q.is_public, u.email FROM quiz_sets q"
                " JOIN auth.users u ON u.id = q.user_id WHERE q.id = $1",
                quizzes.SAMPLE_QUIZ_ID,
            )
            assert tuple(row) == ("published", True, quizzes.SAMPLE_OWNER_EMAIL)
            assert await quizzes.export_quiz(conn, quizzes.SAMPLE_QUIZ_ID) == sample()
            assert await conn.fetchval("SELECT count(*) FROM auth.users") == 1
    finally:
        await pool.close()


async def test_owner_on_supabase_must_exist(conn: asyncpg.Connection) -> None:
    await conn.execute("COMMENT ON TABLE auth.users IS 'Auth: Stores user login data'")
    with pytest.raises(TuizError) as err:
        await quizzes.ensure_owner(conn, "nobody@example.test")
    assert err.value.code is ErrorCode.NOT_FOUND and "Supabase" in err.value.message
    existing = await make_user(conn, "someone@example.test")
    assert await quizzes.ensure_owner(conn, "Someone@example.test") == existing


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuiz.cli", "quiz", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_import_export_list(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url}
    source = tmp_path / "quiz.json"
    source.write_text(json.dumps(sample(), ensure_ascii=False), encoding="utf-8")
    done = _cli("import", str(source), env=env)
    assert done.returncode == 0, done.stderr
    quiz_id = UUID(done.stdout.strip().split()[-1])
    target = tmp_path / "out.json"
    done = _cli("export", str(quiz_id), "-o", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_text(encoding="utf-8")) == sample()
    done = _cli("export", str(quiz_id), env=env)
    assert done.returncode == 0 and json.loads(done.stdout) == sample()
    done = _cli("list", env=env)
    assert done.returncode == 0 and str(quiz_id) in done.stdout
    assert "demo@tuiz.local" in done.stdout
    # another owner, created on vanilla PostgreSQL
    done = _cli("import", str(source), "--owner-email", "alice@example.test", env=env)
    assert done.returncode == 0, done.stderr
    # invalid file: clear error naming the field, nothing written
    bad = copy.deepcopy(sample())
    bad["questions"][1]["answers"][1]["is_correct"] = True
    source.write_text(json.dumps(bad), encoding="utf-8")
    done = _cli("import", str(source), env=env)
    assert done.returncode == 1
    assert "questions.1" in done.stderr and "true_false" in done.stderr
    source.write_text("{not json", encoding="utf-8")
    done = _cli("import", str(source), env=env)
    assert done.returncode == 1 and "JSON" in done.stderr
    done = _cli("export", str(uuid4()), env=env)
    assert done.returncode == 1 and "no quiz" in done.stderr
    done = _cli("list", env=env)
    assert done.stdout.count("\n") == 3  # header + two quizzes
