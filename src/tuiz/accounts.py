"""Local accounts: password hashes, the session tokens we hand out, and login throttling.

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 low-memory profile: 64 MiB,
3 passes), in a worker thread so a login never stalls the event loop. Sessions are what
Supabase Auth hands out, so every route that checks a Supabase JWT (`tuiz.auth`) accepts
ours unchanged: an HS256 access token signed with `TUIZ_JWT_SECRET` carrying `sub`,
`role: authenticated`, `email`, `aud`, `exp`, plus an opaque refresh token of which only the
SHA-256 digest is stored.

An unknown e-mail costs the same argon2 verification as a known one (against a dummy hash),
and both answer with the same message, so neither timing nor text says whether an account
exists. Registration does say that an e-mail is taken: the sign-up form needs to.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tuiz.errors import ErrorCode, TuizError
from tuiz.limits import SharedWindows

AUDIENCE = "authenticated"
MIN_PASSWORD = 8
MAX_PASSWORD = 256  # argon2 takes any length; this bounds the work one request can ask for

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters

# A few of the passwords every guessing list starts with; longer checks belong to a
# breached-password service, not to a game server.
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "iloveyou",
        "11111111",
        "00000000",
        "abcdefgh",
        "abc12345",
        "letmein1",
        "football",
        "baseball",
        "sunshine",
        "princess",
        "welcome1",
        "admin123",
    }
)


def check_password_strength(password: str, email: str) -> None:
    """Refuse passwords anyone would guess first; VALIDATION_ERROR says why."""

    def weak(kind: str, why: str, **ctx: int) -> TuizError:
        # `type` and `ctx` let a page say it in its own language; `msg` is the English.
        error = {"loc": ["body", "password"], "msg": why, "type": f"password_{kind}", "ctx": ctx}
        return TuizError(ErrorCode.VALIDATION_ERROR, f"password: {why}", errors=[error])

    if len(password) < MIN_PASSWORD:
        raise weak("too_short", f"use at least {MIN_PASSWORD} characters", min=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise weak("too_long", f"use at most {MAX_PASSWORD} characters", max=MAX_PASSWORD)
    if len(set(password)) < 4:
        raise weak("too_simple", "use more different characters")
    lowered = password.casefold()
    if lowered in _COMMON or lowered == email.casefold() or lowered == email.split("@")[0]:
        raise weak("guessable", "this password is too easy to guess")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; with no stored hash, spends the same time."""
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: int
    session_id: uuid.UUID
    token_type: str = "bearer"


def new_refresh_token() -> tuple[str, bytes]:
    """An opaque refresh token and the digest stored for it."""
    token = secrets.token_urlsafe(32)
    return token, refresh_digest(token)


def refresh_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def issue_session(
    *,
    secret: str,
    user_id: uuid.UUID,
    email: str,
    session_id: uuid.UUID,
    refresh_token: str,
    ttl_s: int,
    now: float | None = None,
) -> Session:
    """An access token in Supabase's claim format for `user_id`, paired with `refresh_token`."""
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": str(user_id),
        "role": "authenticated",
        "aud": AUDIENCE,
        "email": email,
        "iat": issued,
        "exp": issued + ttl_s,
        "iss": "tuiz",
        "session_id": str(session_id),
    }
    access = jwt.encode(claims, secret, algorithm="HS256")
    return Session(
        access_token=access,
        refresh_token=refresh_token,
        expires_in=ttl_s,
        expires_at=issued + ttl_s,
        session_id=session_id,
    )


BY_ADDRESS = "too many sign-in attempts from this address; try again later"
BY_ACCOUNT = "too many failed sign-ins for this account; try again later"


def _throttled(message: str, retry_after_s: int) -> TuizError:
    return TuizError(ErrorCode.RATE_LIMITED, message, retry_after_s=retry_after_s)


class LoginThrottle:
    """Sliding-window limits on sign-in attempts, per account and per client address.

    Per account only failures count (a user who signs in now and then is never locked out),
    and a success clears them; per address every attempt counts. These windows live in this
    process; `LoginGate` keeps the same windows in Redis for every process when there is one.
    """

    def __init__(self, *, per_account: int, per_ip: int, window_s: float) -> None:
        self.per_account = per_account
        self.per_ip = per_ip
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._attempts: dict[str, deque[float]] = {}

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        hits = table.get(key)
        if hits is None:
            hits = table[key] = deque()
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def _retry_after(self, hits: deque[float], now: float) -> int:
        return max(1, int(hits[0] + self.window_s - now) + 1)

    def attempt(self, account: str, ip: str | None, now: float | None = None) -> None:
        """Count an attempt; RATE_LIMITED when either window is full."""
        now = time.monotonic() if now is None else now
        self._sweep(now)
        if ip is not None:
            by_ip = self._recent(self._attempts, ip, now)
            if len(by_ip) >= self.per_ip:
                raise _throttled(BY_ADDRESS, self._retry_after(by_ip, now))
            by_ip.append(now)
        failures = self._recent(self._failures, account, now)
        if len(failures) >= self.per_account:
            raise _throttled(BY_ACCOUNT, self._retry_after(failures, now))

    def failed(self, account: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(self._failures, account, now).append(now)

    def succeeded(self, account: str) -> None:
        self._failures.pop(account, None)

    def _sweep(self, now: float) -> None:
        """Drop empty windows now and then, so the tables stay as small as the traffic."""
        if len(self._failures) + len(self._attempts) < 10_000:
            return
        for table in (self._failures, self._attempts):
            for key in [k for k, v in table.items() if not v or v[-1] <= now - self.window_s]:
                del table[key]


class LoginGate:
    """The sign-in limits of an app: `LoginThrottle`'s windows kept in `shared` (Redis: every
    process counts in the same windows, so N processes do not give a guesser N allowances);
    without it, or while it does not answer, this process's own `local` throttle."""

    def __init__(self, local: LoginThrottle, shared: SharedWindows | None = None) -> None:
        self.local = local
        self.shared = shared

    async def attempt(self, account: str, ip: str | None) -> None:
        """Count an attempt; RATE_LIMITED when either window is full."""
        local, shared = self.local, self.shared
        if shared is None:
            return local.attempt(account, ip)
        if ip is not None:
            wait = await shared.window(f"ip:{ip}", local.per_ip, local.window_s, "1")
            if wait is None:
                return local.attempt(account, ip)
            if wait:
                raise _throttled(BY_ADDRESS, math.ceil(wait))
        wait = await shared.window(f"fail:{account}", local.per_account, local.window_s, "0")
        if wait is None:
            return local.attempt(account, None)
        if wait:
            raise _throttled(BY_ACCOUNT, math.ceil(wait))
        return None

    async def failed(self, account: str) -> None:
        local, shared = self.local, self.shared
        key = f"fail:{account}"
        if (
            shared is None
            or await shared.window(key, local.per_account, local.window_s, "2") is None
        ):
            local.failed(account)

    async def succeeded(self, account: str) -> None:
        self.local.succeeded(account)
        if self.shared is not None:
            await self.shared.forget(f"fail:{account}")
