"""Who a caller is: Supabase-style JWTs (HS256, `TUIZ_JWT_SECRET`) and the service key."""

from __future__ import annotations

import base64
import functools
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from tuiz.errors import ErrorCode, TuizError


@dataclass(frozen=True)
class Caller:
    """The verified identity behind a request or socket; `role` is a PostgreSQL role name."""

    role: str
    user_id: uuid.UUID | None = None
    claims: dict[str, Any] | None = None

    @property
    def is_service(self) -> bool:
        return self.role == "service_role"


ANON = Caller(role="anon")


class InvalidCredential(TuizError):
    """A refused token. `guess` when it is not one we signed (a wrong service key, a forged or
    malformed token): those are what `tuiz.authlimit` counts; an expired token of ours is not."""

    def __init__(self, message: str, *, guess: bool) -> None:
        super().__init__(ErrorCode.UNAUTHORIZED, message)
        self.guess = guess


# Signature failures and garbage; every other PyJWTError comes after the signature verified.
_NOT_OURS = (jwt.DecodeError, jwt.InvalidAlgorithmError)


def verify_jwt(token: str, secret: str) -> Caller:
    """A signed-in user from a Supabase access token; anything not verifiable is refused."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "sub"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidCredential(
            f"invalid access token: {exc}", guess=isinstance(exc, _NOT_OURS)
        ) from None
    role = claims.get("role", "authenticated")
    if role not in ("authenticated", "service_role"):
        raise InvalidCredential(f"token role {role!r} is not accepted", guess=False)
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise InvalidCredential("token subject is not a user id", guess=False) from None
    return Caller(role=role, user_id=user_id, claims=claims)


def is_service_key(candidate: str | None, service_key: str | None) -> bool:
    """Constant-time comparison with the configured service key (never equal when unset)."""
    if not candidate or not service_key:
        return False
    return hmac.compare_digest(candidate.encode(), service_key.encode())


def signed_by(token: str, secret: str) -> bool:
    """True when `token` is a JWT carrying our signature, whatever its claims (e.g. an anon key)."""
    try:
        jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError:
        return False
    return True


def authenticate(token: str | None, *, jwt_secret: str, service_key: str | None) -> Caller:
    """The caller for a bearer token: service key, user JWT, or anonymous when absent."""
    if not token:
        return ANON
    if is_service_key(token, service_key):
        return Caller(role="service_role", claims={"role": "service_role"})
    return verify_jwt(token, jwt_secret)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@functools.lru_cache(maxsize=4)
def _token_key(secret: str) -> bytes:
    """The key of host and resume tokens: derived from the JWT secret for this one purpose
    (domain separation), so no token of ours is ever a MAC under the JWT signing key itself."""
    return hmac.new(secret.encode(), b"tuiz/seat-and-host-tokens/v1", "sha256").digest()


def _seat_mac(secret: str, *parts: str) -> str:
    digest = hmac.new(_token_key(secret), ":".join(parts).encode(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def seat_token(secret: str, game_id: str, player_id: str, device_id: str) -> str:
    """A player's resume token: proves the seat without an account (device id + this)."""
    return _seat_mac(secret, "seat", game_id, player_id, device_id)


def host_token(secret: str, game_id: str, host_player_id: str) -> str:
    """The credential that makes a socket or a request the game's host."""
    return _seat_mac(secret, "host", game_id, host_player_id)


def same_token(expected: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())
