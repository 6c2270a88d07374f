"""The TUIZ web client's host side, call by call, against a real `tuiz serve` and PostgreSQL.

Every request is sent the way the client sends it (../shared/tuiz-client-contract.md and the
client's lib/*.ts): cross-origin from the page's origin, `Authorization: Bearer` as the only
credential, JSON bodies with `Content-Type: application/json`, multipart uploads with the
client's field names (`thumbnail`, `image`, `avatar`). Each test asserts the fields the
client reads, then the bad-input and permission cases a host can run into.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.servers import ServerProcess, run_server
from tuiz.store.quizzes import SAMPLE_QUIZ_ID

SECRET = "contract-host-jwt-secret-0123456789abcdef"
ORIGIN = "http://127.0.0.1:3100"
OTHER_ORIGIN = "http://evil.example"
MAX_UPLOAD = 64 * 1024
MAX_BODY = 32 * 1024  # JSON bodies; uploads have their own, larger limit
MAX_FAILURES = 3


def png(width: int = 4, height: int = 3) -> bytes:
    raw = b"".join(b"\x00" + b"\xc8\x50\x28" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
WEBP = (
    b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00"
    b"\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
)


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("client-host")
    with run_server(
        module_db_url,
        tmp,
        TUIZ_JWT_SECRET=SECRET,
        TUIZ_CORS_ORIGINS=f"{ORIGIN},http://localhost:3100",
        TUIZ_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        TUIZ_MAX_BODY_BYTES=str(MAX_BODY),
        TUIZ_LOGIN_MAX_FAILURES=str(MAX_FAILURES),
        TUIZ_LOGIN_MAX_PER_IP="1000",
    ) as s:
        yield s


class Client:
    """What the browser does for the client: Origin on every call, JSON, Bearer only."""

    def __init__(self, server: ServerProcess) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.token: str | None = None

    def headers(self, token: str | None) -> dict[str, str]:
        headers = {"Origin": ORIGIN}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def json(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> httpx.Response:
        headers = {**self.headers(token or self.token), "Content-Type": "application/json"}
        return self.http.request(method, path, json=body, headers=headers)

    def upload(
        self, path: str, field: str, data: bytes, *, name: str = "a.png", token: str | None = None
    ) -> httpx.Response:
        return self.http.post(
            path,
            files={field: (name, data, "image/png")},
            headers=self.headers(token or self.token),
        )


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[Client]:
    c = Client(server)
    yield c
    c.http.close()


_seq = iter(range(1_000_000))


def register(client: Client, **changes: Any) -> dict[str, Any]:
    n = f"{int(time.time() * 1000) % 10_000_000}{next(_seq)}"
    body = {
        "email": f"Host{n}@Example.com",
        "password": "Quiz-host-2026",
        "username": f"host_{n}",
        "displayName": f"Host {n}",
        **changes,
    }
    response = client.json("POST", "/auth/register", body, token="")
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    data["password"] = body["password"]
    return data


def token_of(account: dict[str, Any]) -> str:
    token: str = account["session"]["access_token"]
    return token


QUIZ_FORM = {
    "title": "首都クイズ",
    "description": "都道府県と国の首都",
    "is_public": True,
    "difficulty_level": "easy",
    "category": "地理",
    "tags": ["geo"],
    "play_settings": {
        "show_question_only": True,
        "show_explanation": True,
        "time_bonus": True,
        "streak_bonus": True,
        "show_correct_answer": False,
        "max_players": 200,
    },
    "thumbnail_url": "blob:http://127.0.0.1:3100/5c1b6f7e-0000-4000-8000-000000000000",
}


def question(text: str = "日本の首都は？", order: int = 1, **changes: Any) -> dict[str, Any]:
    """A question exactly as QuestionCreationStep's batch save sends it."""
    return {
        "question_text": text,
        "question_type": "multiple_choice",
        "image_url": None,
        "show_question_time": 10,
        "answering_time": 10,
        "points": 100,
        "difficulty": "easy",
        "order_index": order,
        "explanation_title": None,
        "explanation_text": None,
        "explanation_image_url": None,
        "show_explanation_time": 30,
        "answers": [
            {"answer_text": "東京", "image_url": None, "is_correct": True, "order_index": 1},
            {"answer_text": "大阪", "image_url": None, "is_correct": False, "order_index": 2},
        ],
        **changes,
    }


def new_quiz(client: Client, token: str, **changes: Any) -> dict[str, Any]:
    response = client.json("POST", "/quiz", {**QUIZ_FORM, **changes}, token=token)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def published_quiz(client: Client, token: str, **changes: Any) -> dict[str, Any]:
    quiz = new_quiz(client, token, **changes)
    added = client.json("POST", f"/quiz/{quiz['id']}/questions", question(), token=token)
    assert added.status_code == 201, added.text
    published = client.json("POST", f"/quiz/{quiz['id']}/publish", {}, token=token)
    assert published.status_code == 200, published.text
    return quiz


# -- transport ------------------------------------------------------------------------------


def test_cors_preflight_allowed_and_refused(client: Client) -> None:
    for path, method in (("/auth/login", "POST"), ("/quiz", "GET"), ("/quiz/x/publish", "PATCH")):
        ok = client.http.options(
            path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "content-type,authorization",
            },
        )
        assert ok.status_code == 200, ok.text
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        assert method in ok.headers["access-control-allow-methods"]
        allowed = ok.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
    refused = client.http.options(
        "/auth/login",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_cors_headers_on_answers_and_errors(client: Client) -> None:
    health = client.http.get("/health", headers={"Origin": ORIGIN})
    assert health.headers["access-control-allow-origin"] == ORIGIN
    for response in (
        client.json("GET", "/profile", token=""),  # 401
        client.json("GET", "/quiz/00000000-0000-4000-8000-000000000000", token=""),  # 404
        client.json("POST", "/auth/login", {"email": "x"}, token=""),  # 422
    ):
        assert response.status_code in (401, 404, 422), response.text
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert set(response.json()) >= {"error", "message"}
    other = client.http.get("/health", headers={"Origin": OTHER_ORIGIN})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


# -- accounts -------------------------------------------------------------------------------


def test_register_answers_user_and_supabase_session(client: Client) -> None:
    account = register(client, email="  Mixed.Case@Example.COM ", username="mixed_case")
    user, session = account["user"], account["session"]
    assert user["email"] == "mixed.case@example.com"
    assert user["username"] == "mixed_case" and user["displayName"].startswith("Host")
    assert set(session) >= {"access_token", "refresh_token", "expires_in", "expires_at"}
    claims = jwt.decode(
        session["access_token"], SECRET, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["sub"] == user["id"] and claims["role"] == "authenticated"
    assert claims["email"] == user["email"] and claims["aud"] == "authenticated"
    assert claims["exp"] == session["expires_at"]
    assert abs(session["expires_at"] - time.time() - session["expires_in"]) < 30
    # an existing route that checks a Supabase JWT takes it: our own /quiz-sets
    mine = client.json("GET", "/quiz-sets?scope=mine", token=session["access_token"])
    assert mine.status_code == 200, mine.text


def test_register_refuses_duplicate_email_and_username_and_weak_password(client: Client) -> None:
    first = register(client)
    email = first["user"]["email"]
    again = client.json(
        "POST",
        "/auth/register",
        {"email": email.upper(), "password": "Another-pass-9", "username": "someone_else"},
        token="",
    )
    assert again.status_code == 409
    assert again.json()["message"] == "email: this e-mail is already registered"
    taken = client.json(
        "POST",
        "/auth/register",
        {
            "email": f"other-{email}",
            "password": "Another-pass-9",
            "username": first["user"]["username"].upper(),
        },
        token="",
    )
    assert taken.status_code == 409 and taken.json()["message"].startswith("username:")
    for weak in ("short1", "aaaaaaaaaaaa", "password123"):
        response = client.json(
            "POST", "/auth/register", {"email": f"w-{weak}@example.com", "password": weak}, token=""
        )
        assert response.status_code == 422, weak
        assert response.json()["message"].startswith("password:")
    bad_email = client.json(
        "POST", "/auth/register", {"email": "not-an-email", "password": "Quiz-host-2026"}, token=""
    )
    assert bad_email.status_code == 422 and bad_email.json()["message"].startswith("email")


def test_login_logout_and_refresh(client: Client) -> None:
    account = register(client)
    email = account["user"]["email"]
    login = client.json(
        "POST",
        "/auth/login",
        {"email": email.upper(), "password": account["password"], "rememberMe": True},
        token="",
    )
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["user"] == account["user"]
    assert set(body["session"]) >= {"access_token", "refresh_token", "expires_in", "expires_at"}
    access, refresh = body["session"]["access_token"], body["session"]["refresh_token"]
    assert client.json("GET", "/profile", token=access).status_code == 200

    renewed = client.json("POST", "/auth/refresh", {"refresh_token": refresh}, token="")
    assert renewed.status_code == 200 and renewed.json()["user"]["id"] == account["user"]["id"]
    reused = client.json("POST", "/auth/refresh", {"refresh_token": refresh}, token="")
    assert reused.status_code == 401  # each refresh token works once

    second = renewed.json()["session"]
    out = client.json("POST", "/auth/logout", token=second["access_token"])
    assert out.status_code == 200
    after = client.json("POST", "/auth/refresh", {"refresh_token": second["refresh_token"]})
    assert after.status_code == 401
    assert client.json("POST", "/auth/logout", token="").status_code == 401


def test_a_session_lasts_the_access_tokens_lifetime(client: Client) -> None:
    # The client never calls /auth/refresh: it drops the session once `expires_at` is past, and
    # a call with an expired token is an error it shows. So the token's own lifetime is the
    # session's, TUIZ_ACCESS_TOKEN_TTL_S (default 3600 s).
    account = register(client)
    session = account["session"]
    assert session["expires_in"] == 3600
    claims = jwt.decode(
        session["access_token"], SECRET, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["exp"] == session["expires_at"]
    expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    for method, path in (("GET", "/profile"), ("GET", "/quiz?status=published&limit=5")):
        refused = client.json(method, path, token=expired)
        assert refused.status_code == 401, (path, refused.text)
        assert refused.json()["error"] == "UNAUTHORIZED" and refused.json()["message"]
    # A client that does refresh gets a new, working token from the session's refresh token.
    renewed = client.json(
        "POST", "/auth/refresh", {"refresh_token": session["refresh_token"]}, token=""
    )
    assert renewed.status_code == 200
    fresh = renewed.json()["session"]["access_token"]
    assert client.json("GET", "/profile", token=fresh).status_code == 200


def test_wrong_password_and_unknown_email_answer_alike(client: Client) -> None:
    account = register(client)
    wrong = client.json(
        "POST",
        "/auth/login",
        {"email": account["user"]["email"], "password": "Not-the-password-1", "rememberMe": False},
        token="",
    )
    unknown = client.json(
        "POST",
        "/auth/login",
        {"email": "nobody-here@example.com", "password": "Not-the-password-1"},
        token="",
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "error": "UNAUTHORIZED",
            "message": "invalid email or password",
        }
    )


def test_login_attempts_limited_per_account(client: Client) -> None:
    victim, bystander = register(client), register(client)
    email = victim["user"]["email"]
    for _ in range(MAX_FAILURES):
        bad = client.json("POST", "/auth/login", {"email": email, "password": "Guess-1234"})
        assert bad.status_code == 401
    locked = client.json("POST", "/auth/login", {"email": email, "password": victim["password"]})
    assert locked.status_code == 429, locked.text
    assert locked.json()["details"]["retry_after_s"] > 0
    other = client.json(
        "POST",
        "/auth/login",
        {"email": bystander["user"]["email"], "password": bystander["password"]},
    )
    assert other.status_code == 200


# -- profile --------------------------------------------------------------------------------


def test_profile_username_display_name_and_avatar(client: Client) -> None:
    account, other = register(client), register(client)
    token = token_of(account)
    profile = client.json("GET", "/profile", token=token)
    assert profile.status_code == 200
    data = profile.json()
    assert data["id"] == account["user"]["id"]
    assert data["username"] == account["user"]["username"]
    assert data["displayName"] == account["user"]["displayName"]
    assert data["avatarUrl"] is None and data["role"] == "user"
    assert data["createdAt"] and data["updatedAt"] and data["lastActive"] is None

    renamed = client.json("PUT", "/profile/username", {"username": "new_name_1"}, token=token)
    assert renamed.status_code == 200 and renamed.json()["username"] == "new_name_1"
    assert renamed.json()["updatedAt"]
    taken = client.json(
        "PUT", "/profile/username", {"username": other["user"]["username"]}, token=token
    )
    # The dialog says "taken" only for its own code; tuiz's code stays in the details.
    assert taken.status_code == 409 and taken.json()["error"] == "username_taken"
    assert taken.json()["details"]["code"] == "CONFLICT"
    assert taken.json()["message"].startswith("username:")
    bad = client.json("PUT", "/profile/username", {"username": "no spaces!"}, token=token)
    assert bad.status_code == 422 and bad.json()["message"].startswith("username")
    shown = client.json("PUT", "/profile/display-name", {"displayName": "山田"}, token=token)
    assert shown.status_code == 200 and shown.json()["displayName"] == "山田"

    uploaded = client.upload("/profile/avatar", "avatar", png(), token=token)
    assert uploaded.status_code == 200, uploaded.text
    url = uploaded.json()["url"]
    assert uploaded.json()["path"] in url
    image = httpx.get(url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert client.json("GET", "/profile", token=token).json()["avatarUrl"] == url
    removed = client.json("DELETE", "/profile/avatar", token=token)
    assert removed.status_code == 200 and removed.json()["message"]
    assert httpx.get(url).status_code == 404
    none = client.json("DELETE", "/profile/avatar", token=token)
    assert none.status_code == 404 and none.json()["error"] == "no_avatar"
    assert none.json()["details"] == {"code": "NOT_FOUND"}
    assert client.json("GET", "/profile", token="").status_code == 401


# -- the editor -----------------------------------------------------------------------------


def test_editor_creates_uploads_fills_and_publishes(client: Client) -> None:
    token = token_of(register(client))
    quiz = new_quiz(client, token)
    for field in ("id", "user_id", "title", "status", "play_settings", "total_questions"):
        assert field in quiz
    assert quiz["status"] == "draft" and quiz["thumbnail_url"] is None  # blob: is not stored
    assert quiz["category"] == "地理" and quiz["play_settings"]["max_players"] == 200
    quiz_id = quiz["id"]

    thumb = client.upload(f"/upload/quiz-thumbnail/{quiz_id}", "thumbnail", png(), token=token)
    assert thumb.status_code == 201, thumb.text
    url = thumb.json()["url"]
    assert httpx.get(url).headers["content-type"] == "image/png"
    updated = client.json("PUT", f"/quiz/{quiz_id}", {"thumbnail_url": url}, token=token)
    assert updated.status_code == 200 and updated.json()["thumbnail_url"] == url
    assert updated.json()["title"] == QUIZ_FORM["title"]  # a partial PUT keeps the rest

    image = client.upload(f"/upload/question-image/{quiz_id}", "image", JPEG, token=token)
    assert image.status_code == 201 and image.json()["url"].endswith(".jpg")
    answer_image = client.upload(f"/upload/answer-image/{quiz_id}", "image", GIF, token=token)
    assert answer_image.status_code == 201 and answer_image.json()["url"].endswith(".gif")

    added = client.json(
        "POST",
        f"/quiz/{quiz_id}/questions",
        question(image_url=image.json()["url"]),
        token=token,
    )
    assert added.status_code == 201, added.text
    q = added.json()["question"]
    assert q["image_url"] == image.json()["url"] and q["question_set_id"] == quiz_id
    assert [(a["answer_text"], a["is_correct"]) for a in q["answers"]] == [
        ("東京", True),
        ("大阪", False),
    ]

    second = question("2 + 2 = ?", 2)
    second["answers"][0].update(answer_text="4", image_url=answer_image.json()["url"])
    second["answers"][1].update(answer_text="5")
    batch = client.json(
        "POST", f"/quiz/{quiz_id}/questions/batch", {"questions": [question(), second]}, token=token
    )
    assert batch.status_code == 200, batch.text
    saved = batch.json()
    assert [s["question_text"] for s in saved] == ["日本の首都は？", "2 + 2 = ?"]
    assert saved[1]["answers"][0]["image_url"] == answer_image.json()["url"]

    edit = client.json("GET", f"/quiz/{quiz_id}/edit", token=token)
    assert edit.status_code == 200 and len(edit.json()["questions"]) == 2
    valid = client.json("GET", f"/quiz/{quiz_id}/validate", token=token)
    assert valid.status_code == 200
    assert valid.json()["validation"]["isValid"] is True
    assert valid.json()["quiz"]["total_questions"] == 2

    code = client.json("POST", f"/quiz/{quiz_id}/generate-code", {}, token=token)
    assert code.status_code == 200 and 100_000 <= code.json()["code"] <= 999_999
    n = code.json()["code"]
    assert client.json("GET", f"/quiz/{quiz_id}/code", token=token).json() == {"code": n}
    check = client.json("GET", f"/quiz/code/check/{n}", token=token).json()
    assert check["isAvailable"] is False
    free = 100_000 if n != 100_000 else 100_001
    assert client.json("GET", f"/quiz/code/check/{free}", token=token).json()["isAvailable"]
    settings = client.json(
        "PUT", f"/quiz/{quiz_id}", {"play_settings": {"time_bonus": False}}, token=token
    ).json()["play_settings"]
    assert settings["code"] == n and settings["time_bonus"] is False  # merged, not replaced

    published = client.json("POST", f"/quiz/{quiz_id}/publish", {}, token=token)
    assert published.status_code == 200, published.text
    body = published.json()
    assert body["quiz"]["status"] == "published" and body["validation"]["isValid"] is True
    assert body["message"]

    listed = client.json(
        "GET", "/quiz?status=published&limit=50&sort=updated_at&order=desc", token=token
    )
    assert listed.status_code == 200
    page = listed.json()
    assert [q["id"] for q in page["data"]] == [quiz_id]
    assert page["pagination"]["totalItems"] == 1 and page["pagination"]["page"] == 1
    assert client.json("GET", "/quiz?status=draft&limit=20", token=token).json()["data"] == []

    full = client.json("GET", f"/quiz/{quiz_id}?include=questions,answers", token=token).json()
    assert [a["is_correct"] for a in full["questions"][0]["answers"]] == [True, False]
    summary = client.json("GET", f"/quiz/{quiz_id}", token=token).json()
    assert "questions" not in summary and summary["thumbnail_url"] == url

    # the edit page: back to draft, change one question, reorder, delete, publish again
    assert client.json("PATCH", f"/quiz/{quiz_id}/draft", {}, token=token).json()["status"] == (
        "draft"
    )
    started = client.json("PUT", f"/quiz/{quiz_id}/start-edit", {}, token=token)
    assert started.status_code == 200 and started.json()["status"] == "draft"
    qid, qid2 = saved[0]["id"], saved[1]["id"]
    changed = client.json(
        "PUT", f"/quiz/{quiz_id}/questions/{qid}", {"question_text": "首都は？"}, token=token
    )
    assert changed.status_code == 200
    assert changed.json()["question"]["question_text"] == "首都は？"
    assert len(changed.json()["question"]["answers"]) == 2  # answers not sent: kept
    reorder = client.json(
        "PUT",
        f"/quiz/{quiz_id}/questions/reorder",
        {"questions": [{"id": qid, "order_index": 5}, {"id": qid2, "order_index": 0}]},
        token=token,
    )
    assert reorder.status_code == 200
    listed_q = client.json("GET", f"/quiz/{quiz_id}/questions", token=token).json()["questions"]
    assert [q["id"] for q in listed_q] == [qid2, qid]
    assert client.json("DELETE", f"/quiz/{quiz_id}/questions/{qid2}", token=token).status_code == (
        200
    )
    again = client.json("PATCH", f"/quiz/{quiz_id}/publish", {}, token=token)
    assert again.status_code == 200 and again.json()["status"] == "published"
    assert client.json("DELETE", f"/quiz/{quiz_id}/code", token=token).status_code == 200
    assert client.json("GET", f"/quiz/{quiz_id}/code", token=token).json() == {"code": None}


def test_editor_validation_names_the_field(client: Client) -> None:
    token = token_of(register(client))
    quiz_id = new_quiz(client, token)["id"]
    no_title = client.json("POST", "/quiz", {**QUIZ_FORM, "title": "  "}, token=token)
    assert no_title.status_code == 422 and no_title.json()["message"].startswith("title")

    empty = client.json("POST", f"/quiz/{quiz_id}/publish", {}, token=token)
    assert empty.status_code == 422 and empty.json()["message"].startswith("questions")
    report = client.json("GET", f"/quiz/{quiz_id}/validate", token=token).json()["validation"]
    assert report["isValid"] is False and report["errors"][0]["field"] == "questions"

    two_right = question()
    two_right["answers"][1]["is_correct"] = True
    refused = client.json(
        "POST", f"/quiz/{quiz_id}/questions/batch", {"questions": [two_right]}, token=token
    )
    assert refused.status_code == 422
    assert refused.json()["message"].startswith("body.questions.0")
    assert "exactly one correct" in refused.json()["message"]
    blank = question()
    blank["answers"][1]["answer_text"] = ""
    refused = client.json("POST", f"/quiz/{quiz_id}/questions", blank, token=token)
    assert refused.status_code == 422 and "answers.1.answer_text" in refused.json()["message"]
    too_long = client.json(
        "POST", f"/quiz/{quiz_id}/questions", question(answering_time=999), token=token
    )
    assert too_long.status_code == 422 and "answering_time" in too_long.json()["message"]


def test_answer_crud_is_not_served_and_changes_nothing(client: Client) -> None:
    # quizService.updateAnswer/deleteAnswer exist in the client but no page calls them: the
    # editor saves answers with their question. Even the owner changes nothing through them.
    token = token_of(register(client))
    quiz = published_quiz(client, token)
    before = client.json("GET", f"/quiz/{quiz['id']}?include=questions,answers", token=token)
    q = before.json()["questions"][0]
    base = f"/quiz/{quiz['id']}/questions/{q['id']}/answers"
    answer = q["answers"][0]["id"]
    for method, path, body in (
        ("PUT", f"{base}/{answer}", {"answer_text": "changed", "is_correct": False}),
        ("DELETE", f"{base}/{answer}", None),
        ("POST", base, {"answer_text": "new", "is_correct": True}),
    ):
        response = client.json(method, path, body, token=token)
        assert response.status_code in (404, 405), (method, response.status_code)
    after = client.json("GET", f"/quiz/{quiz['id']}?include=questions,answers", token=token)
    assert after.json()["questions"][0]["answers"] == q["answers"]


def test_another_users_quiz_and_anonymous_callers(client: Client) -> None:
    owner, intruder = token_of(register(client)), token_of(register(client))
    public = published_quiz(client, owner)
    private = new_quiz(client, owner, is_public=False)
    for quiz_id, status in ((public["id"], 403), (private["id"], 404)):
        assert client.json(
            "PUT", f"/quiz/{quiz_id}", {"title": "x"}, token=intruder
        ).status_code == (status)
        assert (
            client.json(
                "POST", f"/quiz/{quiz_id}/questions", question(), token=intruder
            ).status_code
            == status
        )
        assert client.json("DELETE", f"/quiz/{quiz_id}", token=intruder).status_code == status
        assert (
            client.upload(
                f"/upload/quiz-thumbnail/{quiz_id}", "thumbnail", png(), token=intruder
            ).status_code
            == status
        )
        assert client.json("POST", f"/quiz/{quiz_id}/publish", {}, token=intruder).status_code in (
            403,
            404,
        )
    assert client.json("GET", f"/quiz/{private['id']}/edit", token=intruder).status_code == 404
    assert client.json("GET", f"/quiz/{public['id']}/edit", token=intruder).status_code == 403

    # a visitor sees the public quiz without its answer key
    for token in (intruder, ""):
        seen = client.json("GET", f"/quiz/{public['id']}?include=questions,answers", token=token)
        assert seen.status_code == 200
        assert all("is_correct" not in a for a in seen.json()["questions"][0]["answers"])
        listed = client.json("GET", f"/quiz/{public['id']}/questions", token=token).json()
        assert all("is_correct" not in a for a in listed["questions"][0]["answers"])
    assert client.json("GET", f"/quiz/{private['id']}", token=intruder).status_code == 404

    assert client.json("POST", "/quiz", QUIZ_FORM, token="").status_code == 401
    assert client.json("GET", "/quiz?status=draft", token="").status_code == 401
    anon_upload = client.upload(
        f"/upload/quiz-thumbnail/{public['id']}", "thumbnail", png(), token=""
    )
    assert anon_upload.status_code == 401
    forged = jwt.encode(
        {"sub": "00000000-0000-4000-8000-000000000000", "role": "authenticated", "exp": 9e9},
        "not-the-secret-of-this-server-0123456789",
        algorithm="HS256",
    )
    assert client.json("GET", "/profile", token=forged).status_code == 401


# -- uploads --------------------------------------------------------------------------------


def test_uploads_check_type_from_bytes_and_size(client: Client) -> None:
    token = token_of(register(client))
    quiz_id = new_quiz(client, token)["id"]
    path = f"/upload/question-image/{quiz_id}"
    for data, ext in ((png(), "png"), (JPEG, "jpg"), (WEBP, "webp"), (GIF, "gif")):
        ok = client.upload(path, "image", data, name="whatever.bin", token=token)
        assert ok.status_code == 201, ok.text
        assert ok.json()["url"].endswith(f".{ext}")
        assert "whatever" not in ok.json()["url"]  # the server chooses the name
    html = b"<html><script>alert(1)</script></html>"
    fake = client.upload(path, "image", html, name="evil.png", token=token)
    assert fake.status_code == 422 and fake.json()["message"].startswith("file")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert client.upload(path, "image", svg, name="a.svg", token=token).status_code == 422
    big = png() + b"\x00" * (MAX_UPLOAD + 1)
    too_big = client.upload(path, "image", big, token=token)
    assert too_big.status_code == 413 and too_big.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert too_big.headers["access-control-allow-origin"] == ORIGIN
    # over TUIZ_MAX_BODY_BYTES but within the upload limit: accepted
    roomy = client.upload(path, "image", png() + b"\x00" * (MAX_BODY + 1024), token=token)
    assert roomy.status_code == 201, roomy.text
    # far over: refused from the headers by the body limit, still with CORS for the page
    huge = client.upload(path, "image", png() + b"\x00" * (4 * MAX_UPLOAD), token=token)
    assert huge.status_code == 413 and huge.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert huge.headers["access-control-allow-origin"] == ORIGIN
    json_body = client.json("PUT", f"/quiz/{quiz_id}", {"description": "x" * MAX_BODY})
    assert json_body.status_code == 413
    assert json_body.headers["access-control-allow-origin"] == ORIGIN
    wrong_field = client.upload(path, "file", png(), token=token)
    assert wrong_field.status_code == 422 and wrong_field.json()["message"].startswith("image")
    not_multipart = client.json("POST", path, {"image": "x"}, token=token)
    assert not_multipart.status_code == 422
    for probe in (f"{quiz_id}/..%2F..%2Fx.png", f"{quiz_id}/.x.png.part", "not-a-uuid/a.png"):
        assert client.http.get(f"/uploads/quizzes/{probe}").status_code == 404


def test_removing_a_quiz_removes_its_files(client: Client) -> None:
    token = token_of(register(client))
    quiz_id = new_quiz(client, token)["id"]
    url = client.upload(
        f"/upload/quiz-thumbnail/{quiz_id}", "thumbnail", png(), token=token
    ).json()["url"]
    assert httpx.get(url).status_code == 200
    deleted = client.json("DELETE", f"/quiz/{quiz_id}", token=token)
    assert deleted.status_code == 200 and deleted.json()["message"]
    assert httpx.get(url).status_code == 404
    assert client.json("GET", f"/quiz/{quiz_id}", token=token).status_code == 404


# -- the library ----------------------------------------------------------------------------


def test_library_lists_counts_previews_and_clones(client: Client) -> None:
    owner, visitor = token_of(register(client)), token_of(register(client))
    quiz = published_quiz(client, owner, title="ライブラリ クイズ", category="歴史")
    url = client.upload(
        f"/upload/quiz-thumbnail/{quiz['id']}", "thumbnail", png(), token=owner
    ).json()["url"]
    client.json("PUT", f"/quiz/{quiz['id']}", {"thumbnail_url": url}, token=owner)
    draft = new_quiz(client, owner, title="下書き")

    mine = client.json(
        "GET", "/quiz-library/my-library?page=1&limit=12&sort=updated_desc", token=owner
    )
    assert mine.status_code == 200
    assert [q["id"] for q in mine.json()["data"]] == [draft["id"], quiz["id"]]
    pagination = mine.json()["pagination"]
    assert pagination["total"] == 2 and pagination["total_pages"] == 1
    assert pagination["has_next"] is False and pagination["has_prev"] is False
    only_published = client.json(
        "GET", "/quiz-library/my-library?status=published&sort=title_asc", token=owner
    ).json()["data"]
    assert [q["id"] for q in only_published] == [quiz["id"]]
    counts = client.json("GET", "/quiz-library/status-counts", token=owner).json()
    assert counts == {"all": 2, "published": 1, "draft": 1}

    browse = client.json(
        "GET", "/quiz-library/public/browse?page=1&limit=12&sort=plays_desc&search=ライブラリ"
    )
    assert browse.status_code == 200
    assert [q["id"] for q in browse.json()["data"]] == [quiz["id"]]
    by_category = client.json("GET", "/quiz-library/public/browse?category=歴史").json()["data"]
    assert quiz["id"] in [q["id"] for q in by_category]
    assert draft["id"] not in [q["id"] for q in by_category]
    categories = client.json("GET", "/quiz-library/categories").json()["categories"]
    assert {"category": "歴史", "count": 1} in categories
    bad_sort = client.json("GET", "/quiz-library/public/browse?sort=sideways")
    assert bad_sort.status_code == 422 and bad_sort.json()["message"].startswith("sort")

    preview = client.json("GET", f"/quiz-library/preview/{quiz['id']}", token=visitor).json()
    assert preview["quiz"]["id"] == quiz["id"] and len(preview["questions"]) == 1
    assert all("is_correct" not in a for a in preview["questions"][0]["answers"])
    assert client.json(
        "GET", f"/quiz-library/preview/{draft['id']}", token=visitor
    ).status_code == (404)

    details = client.json("GET", f"/api/quizzes/{quiz['id']}", token=visitor)
    assert details.status_code == 200 and details.json()["title"] == "ライブラリ クイズ"

    cloned = client.json("POST", f"/quiz-library/clone/{quiz['id']}", token=visitor)
    assert cloned.status_code == 201, cloned.text
    body = cloned.json()
    copy = body["clonedQuiz"]
    assert copy["status"] == "draft" and copy["is_public"] is False
    assert copy["cloned_from"] == quiz["id"] and "code" not in copy["play_settings"]
    assert body["originalQuiz"]["id"] == quiz["id"] and body["originalQuiz"]["author"]
    assert copy["thumbnail_url"] != url and httpx.get(copy["thumbnail_url"]).status_code == 200
    mine_now = client.json("GET", f"/quiz/{copy['id']}?include=questions,answers", token=visitor)
    assert [a["is_correct"] for a in mine_now.json()["questions"][0]["answers"]] == [True, False]
    assert client.json("POST", f"/quiz-library/clone/{draft['id']}", token=visitor).status_code == (
        404
    )
    assert client.json("POST", f"/quiz-library/clone/{quiz['id']}", token="").status_code == 401

    status = client.json(
        "PATCH", f"/api/quizzes/{quiz['id']}/status", {"status": "archived"}, token=owner
    )
    assert status.status_code == 200 and status.json()["status"] == "archived"
    assert (
        client.json(
            "PATCH", f"/api/quizzes/{quiz['id']}/status", {"status": "draft"}, token=visitor
        ).status_code
        == 404
    )  # archived: no longer public, so invisible to the visitor


def test_sample_quiz_shows_in_public_browse(client: Client) -> None:
    listed = client.json("GET", "/quiz-library/public/browse?limit=100&sort=created_desc")
    assert str(SAMPLE_QUIZ_ID) in [q["id"] for q in listed.json()["data"]]


def test_openapi_documents_every_client_route(client: Client) -> None:
    spec = client.http.get("/openapi.json").json()
    paths = spec["paths"]
    wanted = {
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/logout", "post"),
        ("/auth/refresh", "post"),
        ("/profile", "get"),
        ("/profile/username", "put"),
        ("/profile/display-name", "put"),
        ("/profile/avatar", "post"),
        ("/profile/avatar", "delete"),
        ("/quiz", "post"),
        ("/quiz", "get"),
        ("/quiz/{quiz_id}", "get"),
        ("/quiz/{quiz_id}", "put"),
        ("/quiz/{quiz_id}", "delete"),
        ("/quiz/{quiz_id}/edit", "get"),
        ("/quiz/{quiz_id}/draft", "patch"),
        ("/quiz/{quiz_id}/start-edit", "put"),
        ("/quiz/{quiz_id}/publish", "patch"),
        ("/quiz/{quiz_id}/publish", "post"),
        ("/quiz/{quiz_id}/unpublish", "post"),
        ("/quiz/{quiz_id}/validate", "get"),
        ("/quiz/{quiz_id}/generate-code", "post"),
        ("/quiz/{quiz_id}/code", "get"),
        ("/quiz/{quiz_id}/code", "delete"),
        ("/quiz/code/check/{code}", "get"),
        ("/quiz/{quiz_id}/questions", "get"),
        ("/quiz/{quiz_id}/questions", "post"),
        ("/quiz/{quiz_id}/questions/batch", "post"),
        ("/quiz/{quiz_id}/questions/reorder", "put"),
        ("/quiz/{quiz_id}/questions/{question_id}", "put"),
        ("/quiz/{quiz_id}/questions/{question_id}", "delete"),
        ("/quiz-library/my-library", "get"),
        ("/quiz-library/public/browse", "get"),
        ("/quiz-library/categories", "get"),
        ("/quiz-library/status-counts", "get"),
        ("/quiz-library/preview/{quiz_id}", "get"),
        ("/quiz-library/clone/{quiz_id}", "post"),
        ("/api/quizzes/{quiz_id}", "get"),
        ("/api/quizzes/{quiz_id}/status", "patch"),
        ("/upload/quiz-thumbnail/{quiz_id}", "post"),
        ("/upload/question-image/{quiz_id}", "post"),
        ("/upload/answer-image/{quiz_id}", "post"),
    }
    for path, method in sorted(wanted):
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from OpenAPI"
        ok = {k: v for k, v in paths[path][method]["responses"].items() if k.startswith("2")}
        schema = next(iter(ok.values()))["content"]["application/json"]["schema"]
        assert schema, f"{method.upper()} {path} has no response model"
    multipart = paths["/upload/quiz-thumbnail/{quiz_id}"]["post"]["requestBody"]["content"]
    assert "thumbnail" in multipart["multipart/form-data"]["schema"]["properties"]


def test_sign_in_attempts_limited_per_address(
    module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever accounts it tries, one address gets TUIZ_LOGIN_MAX_PER_IP attempts per window."""
    tmp: Path = tmp_path_factory.mktemp("client-host-ip")
    with run_server(
        module_db_url,
        tmp,
        TUIZ_JWT_SECRET=SECRET,
        TUIZ_CORS_ORIGINS=ORIGIN,
        TUIZ_LOGIN_MAX_PER_IP="3",
        TUIZ_LOGIN_MAX_FAILURES="100",
    ) as limited:
        c = Client(limited)
        try:
            answers = [
                c.json(
                    "POST", "/auth/login", {"email": f"u{i}@example.com", "password": "Guess-123"}
                )
                for i in range(4)
            ]
            assert [a.status_code for a in answers] == [401, 401, 401, 429]
            assert answers[3].json()["error"] == "RATE_LIMITED"
            assert answers[3].headers["access-control-allow-origin"] == ORIGIN
        finally:
            c.http.close()
