"""REST for quiz sets against a real server: ownership, visibility, validation, one transaction."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import jwt
import pytest

from tests.factories import make_game, make_user
from tests.servers import ServerProcess, run_server
from tuiz.store.quizzes import SAMPLE_QUIZ_ID, sample_document

SECRET = "test-jwt-secret-with-enough-length-0123456789"
SERVICE_KEY = "test-service-key"


def token(user: UUID, *, ttl: int = 600) -> str:
    claims = {"sub": str(user), "role": "authenticated", "exp": int(time.time()) + ttl}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def auth(user: UUID | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token(user)}"} if user else {}


SERVICE = {"authorization": f"Bearer {SERVICE_KEY}"}


def doc(**changes: Any) -> dict[str, Any]:
    """The sample quiz as a draft, private body (changes applied on top)."""
    data = copy.deepcopy(sample_document())
    data.update(status="draft", is_public=False)
    data.update(changes)
    return data


def run(db_url: str, coro: Callable[[asyncpg.Connection], Any]) -> Any:
    async def main() -> Any:
        conn = await asyncpg.connect(db_url)
        try:
            return await coro(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def users(module_db_url: str) -> dict[str, UUID]:
    async def build(conn: asyncpg.Connection) -> dict[str, UUID]:
        return {"a": await make_user(conn), "b": await make_user(conn)}

    result: dict[str, UUID] = run(module_db_url, build)
    return result


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("quiz-api")
    with run_server(module_db_url, tmp, TUIZ_JWT_SECRET=SECRET, TUIZ_SERVICE_KEY=SERVICE_KEY) as s:
        yield s


class Api:
    def __init__(self, server: ServerProcess) -> None:
        self.client = httpx.Client(base_url=server.url, timeout=10)

    def __call__(
        self, method: str, path: str, user: UUID | None = None, **kw: Any
    ) -> httpx.Response:
        headers = kw.pop("headers", None) or auth(user)
        return self.client.request(method, path, headers=headers, **kw)


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.client.close()


def create(api: Api, user: UUID, **changes: Any) -> dict[str, Any]:
    response = api("POST", "/quiz-sets", user, json=doc(**changes))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def count_sets(db_url: str) -> int:
    async def q(conn: asyncpg.Connection) -> int:
        n: int = await conn.fetchval("SELECT count(*) FROM quiz_sets")
        return n

    result: int = run(db_url, q)
    return result


def test_sample_quiz_loaded_at_start(api: Api, module_db_url: str) -> None:
    response = api("GET", f"/quiz-sets/{SAMPLE_QUIZ_ID}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == sample_document()["title"]
    assert body["status"] == "published" and body["is_public"] is True
    assert len(body["questions"]) == 5

    async def sample_rows(conn: asyncpg.Connection) -> int:
        n: int = await conn.fetchval("SELECT count(*) FROM quiz_sets WHERE id = $1", SAMPLE_QUIZ_ID)
        return n

    assert run(module_db_url, sample_rows) == 1


def test_create_and_read_back_in_order(api: Api, users: dict[str, UUID]) -> None:
    body = create(api, users["a"])
    assert body["user_id"] == str(users["a"])
    assert body["status"] == "draft" and body["total_questions"] == 5
    sent = doc()["questions"]
    assert [q["question_text"] for q in body["questions"]] == [q["question_text"] for q in sent]
    assert [q["order_index"] for q in body["questions"]] == [0, 1, 2, 3, 4]
    first = body["questions"][0]
    assert [a["answer_text"] for a in first["answers"]] == [
        a["answer_text"] for a in sent[0]["answers"]
    ]
    assert [a["is_correct"] for a in first["answers"]] == [False, True, False, False]
    assert first["explanation_title"] == "東京 / Tokyo"
    assert body["questions"][3]["accepted_answers"] == ["thank you", "thanks", "thankyou"]
    again = api("GET", f"/quiz-sets/{body['id']}", users["a"]).json()
    assert again == body
    exported = api("GET", f"/quiz-sets/{body['id']}/export", users["a"])
    assert exported.status_code == 200 and exported.json() == doc()


def test_anonymous_may_not_write(api: Api, users: dict[str, UUID], module_db_url: str) -> None:
    before = count_sets(module_db_url)
    quiz = create(api, users["a"], status="published", is_public=True)
    for method, path, body in [
        ("POST", "/quiz-sets", doc()),
        ("PUT", f"/quiz-sets/{quiz['id']}", doc()),
        ("PATCH", f"/quiz-sets/{quiz['id']}", {"title": "x"}),
        ("DELETE", f"/quiz-sets/{quiz['id']}", None),
        ("POST", f"/quiz-sets/{quiz['id']}/publish", None),
    ]:
        response = api(method, path, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "UNAUTHORIZED"
    bad_token = {"authorization": "Bearer not-a-jwt"}
    assert api("POST", "/quiz-sets", headers=bad_token, json=doc()).status_code == 401
    assert count_sets(module_db_url) == before + 1
    assert api("GET", f"/quiz-sets/{quiz['id']}").json()["title"] == quiz["title"]


def test_other_users_drafts_are_invisible(api: Api, users: dict[str, UUID]) -> None:
    draft = create(api, users["a"])
    path = f"/quiz-sets/{draft['id']}"
    for user in (users["b"], None):
        assert api("GET", path, user).status_code == 404
        assert api("GET", f"{path}/export", user).status_code == 404
    for method, body in [("PUT", doc()), ("PATCH", {"title": "mine now"}), ("DELETE", None)]:
        response = api(method, path, users["b"], json=body)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["error"] == "NOT_FOUND"
    assert api("POST", f"{path}/publish", users["b"]).status_code == 404
    assert api("GET", path, users["a"]).json()["title"] == draft["title"]
    assert api("GET", f"/quiz-sets/{uuid4()}", users["a"]).status_code == 404


def test_published_public_is_readable_without_answers(api: Api, users: dict[str, UUID]) -> None:
    quiz = create(api, users["a"], status="published", is_public=True)
    path = f"/quiz-sets/{quiz['id']}"
    for user in (users["b"], None):
        seen = api("GET", path, user)
        assert seen.status_code == 200
        body = seen.json()
        assert len(body["questions"]) == 5
        for q in body["questions"]:
            assert "accepted_answers" not in q
            assert all("is_correct" not in a for a in q["answers"])
            assert all(a["answer_text"] for a in q["answers"])
    service = api("GET", path, headers=SERVICE).json()
    assert service["questions"][0]["answers"][1]["is_correct"] is True
    assert api("GET", f"{path}/export", users["b"]).status_code == 403
    assert api("GET", f"{path}/export", headers=SERVICE).json() == doc(
        status="published", is_public=True
    )
    for method, body in [("PUT", doc()), ("PATCH", {"title": "mine now"}), ("DELETE", None)]:
        response = api(method, path, users["b"], json=body)
        assert response.status_code == 403, (method, response.text)
        assert response.json()["error"] == "FORBIDDEN"
    assert api("GET", path, users["a"]).json()["title"] == quiz["title"]


def test_listing_mine_and_public(api: Api, users: dict[str, UUID], module_db_url: str) -> None:
    owner = asyncio.run(_new_user(module_db_url))
    draft = create(api, owner, title="L draft")
    public = create(api, owner, title="L public", status="published", is_public=True)
    private_pub = create(api, owner, title="L private published", status="published")

    def ids(user: UUID | None, query: str = "", headers: dict[str, str] | None = None) -> set[str]:
        response = api("GET", f"/quiz-sets{query}", user, headers=headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    mine = {draft["id"], public["id"], private_pub["id"]}
    assert mine <= ids(owner)
    assert ids(owner, "?scope=mine") == mine
    assert ids(owner, "?scope=mine&status=draft") == {draft["id"]}
    assert ids(owner, "?scope=mine&status=published") == {public["id"], private_pub["id"]}
    for user in (users["b"], None):
        visible = ids(user)
        assert public["id"] in visible and str(SAMPLE_QUIZ_ID) in visible
        assert not visible & {draft["id"], private_pub["id"]}
        assert ids(user, "?scope=public") == visible
    assert mine <= ids(None, headers=SERVICE)
    assert api("GET", "/quiz-sets?scope=mine").status_code == 401
    assert api("GET", "/quiz-sets?status=bogus", owner).status_code == 422
    first = api("GET", "/quiz-sets?scope=mine&limit=2", owner).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    rest = api("GET", "/quiz-sets?scope=mine&limit=2&offset=2", owner).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    assert {i["id"] for i in first["items"] + rest["items"]} == mine
    assert "questions" not in first["items"][0]


async def _new_user(db_url: str) -> UUID:
    conn = await asyncpg.connect(db_url)
    try:
        return await make_user(conn)
    finally:
        await conn.close()


def _q(index: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def get(d: dict[str, Any]) -> dict[str, Any]:
        question: dict[str, Any] = d["questions"][index]
        return question

    return get


# (description, mutation of the body, expected start of the error's loc)
INVALID: list[tuple[str, Callable[[dict[str, Any]], Any], list[Any]]] = [
    ("empty title", lambda d: d.update(title="   "), ["body", "title"]),
    ("long title", lambda d: d.update(title="t" * 201), ["body", "title"]),
    ("NUL in title", lambda d: d.update(title="a\x00b"), ["body", "title"]),
    (
        "NUL in play_settings",
        lambda d: d["play_settings"].update(x="\x00"),
        ["body", "play_settings"],
    ),
    (
        "javascript thumbnail",
        lambda d: d.update(thumbnail_url="javascript:alert(1)"),
        ["body", "thumbnail_url"],
    ),
    (
        "data image",
        lambda d: _q(0)(d).update(image_url="data:image/png;base64,AA"),
        ["body", "questions", 0, "image_url"],
    ),
    ("no title", lambda d: d.pop("title"), ["body", "title"]),
    ("unknown field", lambda d: d.update(colour="red"), ["body", "colour"]),
    ("bad version", lambda d: d.update(version=2), ["body", "version"]),
    ("bad status", lambda d: d.update(status="live"), ["body", "status"]),
    (
        "bad difficulty",
        lambda d: d.update(difficulty_level="trivial"),
        ["body", "difficulty_level"],
    ),
    ("long description", lambda d: d.update(description="d" * 2001), ["body", "description"]),
    ("too many tags", lambda d: d.update(tags=[f"t{i}" for i in range(21)]), ["body", "tags"]),
    (
        "bad max_players",
        lambda d: d["play_settings"].update(max_players=0),
        ["body", "play_settings"],
    ),
    ("bad play code", lambda d: d["play_settings"].update(code=12), ["body", "play_settings"]),
    (
        "bad time_bonus",
        lambda d: d["play_settings"].update(time_bonus="maybe"),
        ["body", "play_settings"],
    ),
    (
        "huge play_settings",
        lambda d: d["play_settings"].update(junk="x" * 5000),
        ["body", "play_settings"],
    ),
    (
        "too many questions",
        lambda d: d.update(questions=d["questions"] * 21),
        ["body", "questions"],
    ),
    ("published without questions", lambda d: d.update(status="published", questions=[]), ["body"]),
    (
        "unknown type",
        lambda d: _q(0)(d).update(question_type="essay"),
        ["body", "questions", 0, "question_type"],
    ),
    (
        "empty question",
        lambda d: _q(0)(d).update(question_text=""),
        ["body", "questions", 0, "question_text"],
    ),
    (
        "long question",
        lambda d: _q(0)(d).update(question_text="q" * 501),
        ["body", "questions", 0, "question_text"],
    ),
    (
        "show time > 60",
        lambda d: _q(0)(d).update(show_question_time=61),
        ["body", "questions", 0, "show_question_time"],
    ),
    (
        "show time < 0",
        lambda d: _q(0)(d).update(show_question_time=-1),
        ["body", "questions", 0, "show_question_time"],
    ),
    (
        "answering < 5",
        lambda d: _q(0)(d).update(answering_time=4),
        ["body", "questions", 0, "answering_time"],
    ),
    (
        "answering > 240",
        lambda d: _q(0)(d).update(answering_time=241),
        ["body", "questions", 0, "answering_time"],
    ),
    (
        "explanation > 120",
        lambda d: _q(0)(d).update(show_explanation_time=121),
        ["body", "questions", 0, "show_explanation_time"],
    ),
    ("points > 2000", lambda d: _q(0)(d).update(points=2001), ["body", "questions", 0, "points"]),
    ("points < 0", lambda d: _q(0)(d).update(points=-1), ["body", "questions", 0, "points"]),
    (
        "mc two correct",
        lambda d: _q(0)(d)["answers"][0].update(is_correct=True),
        ["body", "questions", 0],
    ),
    (
        "mc none correct",
        lambda d: _q(0)(d)["answers"][1].update(is_correct=False),
        ["body", "questions", 0],
    ),
    (
        "mc one answer",
        lambda d: _q(0)(d).update(answers=_q(0)(d)["answers"][1:2]),
        ["body", "questions", 0],
    ),
    (
        "mc seven answers",
        lambda d: _q(0)(d)["answers"].extend({"answer_text": f"x{i}"} for i in range(3)),
        ["body", "questions", 0, "answers"],
    ),
    (
        "duplicate answers",
        lambda d: _q(0)(d)["answers"][0].update(answer_text="東京 / TOKYO"),
        ["body", "questions", 0],
    ),
    (
        "empty answer",
        lambda d: _q(0)(d)["answers"][0].update(answer_text=" "),
        ["body", "questions", 0, "answers", 0, "answer_text"],
    ),
    (
        "mc accepted answers",
        lambda d: _q(0)(d).update(accepted_answers=["tokyo"]),
        ["body", "questions", 0],
    ),
    (
        "tf three answers",
        lambda d: _q(1)(d)["answers"].append({"answer_text": "Maybe"}),
        ["body", "questions", 1],
    ),
    (
        "tf both correct",
        lambda d: _q(1)(d)["answers"][1].update(is_correct=True),
        ["body", "questions", 1],
    ),
    (
        "ms none correct",
        lambda d: [a.update(is_correct=False) for a in _q(2)(d)["answers"]],
        ["body", "questions", 2],
    ),
    (
        "type_answer without accepted",
        lambda d: _q(3)(d).update(accepted_answers=[]),
        ["body", "questions", 3],
    ),
    (
        "type_answer with choices",
        lambda d: _q(3)(d).update(answers=[{"answer_text": "a"}, {"answer_text": "b"}]),
        ["body", "questions", 3],
    ),
    (
        "type_answer repeated",
        lambda d: _q(3)(d).update(accepted_answers=["Thanks", "thanks"]),
        ["body", "questions", 3],
    ),
    ("poll with points", lambda d: _q(4)(d).update(points=500), ["body", "questions", 4]),
    (
        "poll with correct",
        lambda d: _q(4)(d)["answers"][0].update(is_correct=True),
        ["body", "questions", 4],
    ),
    (
        "poll one choice",
        lambda d: _q(4)(d).update(answers=_q(4)(d)["answers"][:1]),
        ["body", "questions", 4],
    ),
]


@pytest.mark.parametrize(("what", "mutate", "loc"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_bodies_are_refused_and_change_nothing(
    api: Api,
    users: dict[str, UUID],
    module_db_url: str,
    what: str,
    mutate: Callable[[dict[str, Any]], Any],
    loc: list[Any],
) -> None:
    before = count_sets(module_db_url)
    body = doc()
    mutate(body)
    response = api("POST", "/quiz-sets", users["a"], json=body)
    assert response.status_code == 422, (what, response.text)
    error = response.json()
    assert error["error"] == "VALIDATION_ERROR"
    assert any(e["loc"][: len(loc)] == loc for e in error["details"]["errors"]), error
    assert count_sets(module_db_url) == before
    # PUT of the same body leaves an existing quiz as it was
    quiz = create(api, users["a"])
    response = api("PUT", f"/quiz-sets/{quiz['id']}", users["a"], json=body)
    assert response.status_code == 422, (what, response.text)
    assert api("GET", f"/quiz-sets/{quiz['id']}", users["a"]).json() == quiz


def test_minimal_body_and_poll_default_points(api: Api, users: dict[str, UUID]) -> None:
    body = {
        "title": "Minimal",
        "questions": [
            {
                "question_text": "Vote!",
                "question_type": "poll",
                "answers": [{"answer_text": "A"}, {"answer_text": "B"}],
            },
        ],
    }
    response = api("POST", "/quiz-sets", users["a"], json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["questions"][0]["points"] == 0
    assert created["questions"][0]["answering_time"] == 30
    assert created["play_settings"] == {} and created["status"] == "draft"


def test_token_of_an_unknown_user_is_refused(api: Api, module_db_url: str) -> None:
    before = count_sets(module_db_url)
    response = api("POST", "/quiz-sets", uuid4(), json=doc())
    assert response.status_code == 401 and "does not exist" in response.json()["message"]
    assert count_sets(module_db_url) == before


def test_urls_may_be_http_or_local_paths(api: Api, users: dict[str, UUID]) -> None:
    quiz = create(api, users["a"], thumbnail_url="https://example.test/t.png")
    assert quiz["thumbnail_url"] == "https://example.test/t.png"
    quiz = create(api, users["a"], thumbnail_url="/assets/t.png")
    assert quiz["thumbnail_url"] == "/assets/t.png"


def test_service_key_cannot_create_without_a_user(api: Api) -> None:
    response = api("POST", "/quiz-sets", headers=SERVICE, json=doc())
    assert response.status_code == 403 and "user" in response.json()["message"]


def test_replace_patch_publish_delete(api: Api, users: dict[str, UUID], module_db_url: str) -> None:
    a = users["a"]
    quiz = create(api, a, questions=[])
    path = f"/quiz-sets/{quiz['id']}"
    assert quiz["total_questions"] == 0
    refused = api("POST", f"{path}/publish", a)
    assert refused.status_code == 422 and "question" in refused.json()["message"]
    refused = api("PATCH", path, a, json={"status": "published"})
    assert refused.status_code == 422

    replaced = api("PUT", path, a, json=doc(title="Replaced", questions=doc()["questions"][:3]))
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["title"] == "Replaced" and body["total_questions"] == 3
    assert [q["order_index"] for q in body["questions"]] == [0, 1, 2]

    published = api("POST", f"{path}/publish", a)
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert published.json()["is_public"] is False
    assert api("GET", path, users["b"]).status_code == 404  # published but private

    patched = api(
        "PATCH",
        path,
        a,
        json={"is_public": True, "description": "new", "play_settings": {"time_bonus": False}},
    )
    assert patched.status_code == 200, patched.text
    p = patched.json()
    assert (p["is_public"], p["description"], p["play_settings"]) == (
        True,
        "new",
        {"time_bonus": False},
    )
    assert p["title"] == "Replaced"
    assert api("GET", path, users["b"]).status_code == 200
    for bad, field in [
        ({}, None),
        ({"title": None}, "title"),
        ({"status": "gone"}, "status"),
        ({"user_id": str(users["b"])}, "user_id"),
        ({"is_public": None}, "is_public"),
    ]:
        response = api("PATCH", path, a, json=bad)
        assert response.status_code == 422, (bad, response.text)
        if field:
            assert any(e["loc"][-1] == field for e in response.json()["details"]["errors"])
    archived = api("PATCH", path, a, json={"status": "archived"})
    assert archived.json()["status"] == "archived"
    assert api("GET", path, users["b"]).status_code == 404
    assert api("GET", path, a).status_code == 200

    # a game not yet finished blocks content changes and deletes, not field edits
    async def live_game(conn: asyncpg.Connection) -> UUID:
        return await make_game(conn, a, UUID(quiz["id"]), status="active")

    game = run(module_db_url, live_game)
    busy = api("PUT", path, a, json=doc())
    assert busy.status_code == 409 and busy.json()["error"] == "CONFLICT"
    assert api("DELETE", path, a).status_code == 409
    assert api("PATCH", path, a, json={"title": "Still editable"}).status_code == 200
    assert api("GET", path, a).json()["total_questions"] == 3

    async def finish(conn: asyncpg.Connection) -> None:
        await conn.execute("UPDATE games SET status = 'finished' WHERE id = $1", game)

    run(module_db_url, finish)
    deleted = api("DELETE", path, a)
    assert deleted.status_code == 204
    for user in (a, users["b"], None):
        assert api("GET", path, user).status_code == 404
    assert api("GET", path, headers=SERVICE).status_code == 404
    assert api("DELETE", path, a).status_code == 404
    assert quiz["id"] not in {
        i["id"] for i in api("GET", "/quiz-sets?scope=mine", a).json()["items"]
    }

    async def still_there(conn: asyncpg.Connection) -> tuple[Any, Any]:
        row = await conn.fetchrow(
            "SELECT q.deleted_at, g.quiz_set_id FROM quiz_sets q JOIN games g"
            " ON g.quiz_set_id = q.id WHERE q.id = $1",
            UUID(quiz["id"]),
        )
        return row["deleted_at"], row["quiz_set_id"]

    deleted_at, link = run(module_db_url, still_there)
    assert deleted_at is not None and link == UUID(quiz["id"])  # the game keeps its quiz link


def test_service_may_change_any_quiz(api: Api, users: dict[str, UUID]) -> None:
    quiz = create(api, users["a"])
    path = f"/quiz-sets/{quiz['id']}"
    response = api("PATCH", path, headers=SERVICE, json={"title": "By service"})
    assert response.status_code == 200 and response.json()["title"] == "By service"
    assert response.json()["user_id"] == str(users["a"])


def test_export_then_put_round_trip(api: Api, users: dict[str, UUID]) -> None:
    quiz = create(api, users["a"], title="Round trip")
    path = f"/quiz-sets/{quiz['id']}"
    exported = api("GET", f"{path}/export", users["a"]).json()
    exported["questions"].reverse()
    assert api("PUT", path, users["a"], json=exported).status_code == 200
    assert api("GET", f"{path}/export", users["a"]).json() == exported
