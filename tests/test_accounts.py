"""Local accounts without a server: password rules, hashes, tokens, the login throttle, and
image recognition for uploads."""

from __future__ import annotations

import uuid

import jwt
import pytest

from tuiz import accounts, uploads
from tuiz.auth import verify_jwt
from tuiz.errors import ErrorCode, TuizError


@pytest.mark.parametrize("password", ["short", "aaaaaaaaaaaa", "Password123", "alice@x.io"])
def test_weak_passwords_refused_with_the_field_named(password: str) -> None:
    with pytest.raises(TuizError) as caught:
        accounts.check_password_strength(password, "alice@x.io")
    assert caught.value.code is ErrorCode.VALIDATION_ERROR
    assert caught.value.message.startswith("password: ")
    (error,) = caught.value.details["errors"]
    assert error["loc"] == ["body", "password"]
    assert error["type"].startswith("password_")  # what the pages translate


async def test_argon2id_hash_verifies_only_the_right_password() -> None:
    stored = await accounts.hash_password("Quiz-host-2026")
    assert stored.startswith("$argon2id$")
    assert await accounts.verify_password(stored, "Quiz-host-2026")
    assert not await accounts.verify_password(stored, "Quiz-host-2027")
    assert not await accounts.verify_password(None, "Quiz-host-2026")  # unknown e-mail
    assert not await accounts.verify_password("not a hash", "x")
    assert not accounts.needs_rehash(stored)


def test_session_is_a_supabase_access_token_our_auth_accepts() -> None:
    user, session_id = uuid.uuid4(), uuid.uuid4()
    token, digest = accounts.new_refresh_token()
    assert digest == accounts.refresh_digest(token) and len(digest) == 32
    s = accounts.issue_session(
        secret="s" * 32,
        user_id=user,
        email="a@b.co",
        session_id=session_id,
        refresh_token=token,
        ttl_s=60,
        now=2_000_000_000,
    )
    claims = jwt.decode(
        s.access_token,
        "s" * 32,
        algorithms=["HS256"],
        audience="authenticated",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == str(user) and claims["role"] == "authenticated"
    assert claims["email"] == "a@b.co" and claims["exp"] == 2_000_000_060 == s.expires_at
    fresh = accounts.issue_session(
        secret="s" * 32,
        user_id=user,
        email="a@b.co",
        session_id=session_id,
        refresh_token=token,
        ttl_s=60,
    )
    caller = verify_jwt(fresh.access_token, "s" * 32)
    assert caller.user_id == user and caller.role == "authenticated"


def test_throttle_counts_failures_per_account_and_attempts_per_address() -> None:
    gate = accounts.LoginThrottle(per_account=2, per_ip=4, window_s=60)
    for _ in range(2):
        gate.attempt("a@x", "1.1.1.1", now=0)
        gate.failed("a@x", now=0)
    with pytest.raises(TuizError) as caught:
        gate.attempt("a@x", "2.2.2.2", now=1)
    assert caught.value.code is ErrorCode.RATE_LIMITED
    assert caught.value.details["retry_after_s"] == 60
    gate.attempt("a@x", "2.2.2.2", now=61)  # the window moved on
    gate.succeeded("a@x")
    gate.attempt("b@x", "1.1.1.1", now=62)
    gate.attempt("c@x", "1.1.1.1", now=62)
    gate.attempt("d@x", "1.1.1.1", now=62)
    gate.attempt("e@x", "1.1.1.1", now=62)
    with pytest.raises(TuizError):
        gate.attempt("f@x", "1.1.1.1", now=63)  # fifth from one address in the window
    gate.attempt("f@x", "3.3.3.3", now=63)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xe0....", "jpg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a....", "gif"),
        (b"GIF87a....", "gif"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_image_type_from_the_bytes(data: bytes, kind: str | None) -> None:
    assert uploads.image_type(data) == kind
