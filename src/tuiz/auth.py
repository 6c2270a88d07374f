"""Who a caller is: Supabase-style JWTs (HS256, `TUIZ_JWT_SECRET`) and the service key."""

from __future__ import annotations

import base64
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
        raise TuizError(ErrorCode.UNAUTHORIZED, f"invalid access token: {exc}") from None
    role = claims.get("role", "authenticated")
    if role not in ("authenticated", "service_role"):
        raise TuizError(ErrorCode.UNAUTHORIZED, f"token role {role!r} is not accepted")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise TuizError(ErrorCode.UNAUTHORIZED, "token subject is not a user id") from None
    return Caller(role=role, user_id=user_id, claims=claims)


def authenticate(token: str | None, *, jwt_secret: str, service_key: str | None) -> Caller:
    """The caller for a bearer token: service key, user JWT, or anonymous when absent."""
    if not token:
        return ANON
    if service_key and hmac.compare_digest(token.encode(), service_key.encode()):
        return Caller(role="service_role", claims={"role": "service_role"})
    return verify_jwt(token, jwt_secret)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _seat_mac(secret: str, *parts: str) -> str:
    digest = hmac.new(secret.encode(), ":".join(parts).encode(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def seat_token(secret: str, game_id: str, player_id: str, device_id: str) -> str:
    """A player's resume token: proves the seat without an account (device id + this)."""
    return _seat_mac(secret, "seat", game_id, player_id, device_id)


def host_token(secret: str, game_id: str, host_player_id: str) -> str:
    """The credential that makes a socket or a request the game's host."""
    return _seat_mac(secret, "host", game_id, host_player_id)


def same_token(expected: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())
