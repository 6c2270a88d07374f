"""REST for local accounts and profiles, in the TUIZ web client's shapes.

`/auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout` answer with Supabase-style
sessions (`tuiz.accounts`), and `/profile*` with the client's `ProfileData` (camelCase).
The client shows the `message` of a 4xx as it is, so each says what to fix. Its profile
dialog alone branches on the error code, on its own lower-case names (`username_taken`,
`no_avatar`): those two answers carry that name in `error` and tuiz's code in `details.code`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from tuiz import accounts, uploads
from tuiz.api.deps import CallerDep, ContextDep
from tuiz.api.uploads import UploadResult, multipart_body, public_url, read_image
from tuiz.auth import Caller
from tuiz.context import AppContext
from tuiz.errors import ErrorCode, TuizError
from tuiz.realtime.server import client_ip
from tuiz.store import accounts as repo

router = APIRouter(tags=["accounts"])


class ProfileError(TuizError):
    """A tuiz error in the TUIZ profile dialog's vocabulary: it compares `error` with its own
    names and otherwise shows a generic "update failed". Same shape; tuiz's code moves to
    `details.code` and the HTTP status stays tuiz's."""

    def __init__(self, err: TuizError, client_code: str) -> None:
        super().__init__(err.code, err.message, **err.details)
        self.client_code = client_code

    def to_payload(self) -> dict[str, Any]:
        body = super().to_payload()
        body["details"] = {**body.get("details", {}), "code": body["error"]}
        body["error"] = self.client_code
        return body


EMAIL_PATTERN = r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,255}\.[^@\s\x00]{1,63}$"
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, max_length=320, pattern=EMAIL_PATTERN),
]
Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_]{3,20}$")]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[^\x00]*$"),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the client may send confirmPassword

    email: Email
    password: Password
    username: Username | None = None
    displayName: DisplayName | None = None

    @field_validator("username", "displayName", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)]
    password: Password
    rememberMe: bool = False


class RefreshBody(BaseModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    username: str | None
    displayName: str
    avatarUrl: str | None


class SessionOut(BaseModel):
    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: int
    token_type: str


class AuthOut(BaseModel):
    user: UserOut
    session: SessionOut


class MessageOut(BaseModel):
    message: str


class ProfileOut(BaseModel):
    id: uuid.UUID
    email: str | None
    username: str | None
    displayName: str
    avatarUrl: str | None
    role: str
    createdAt: datetime
    updatedAt: datetime
    lastActive: datetime | None


class UsernameBody(BaseModel):
    username: Username


class UsernameOut(BaseModel):
    username: str
    updatedAt: datetime


class DisplayNameBody(BaseModel):
    displayName: DisplayName


class DisplayNameOut(BaseModel):
    displayName: str
    updatedAt: datetime


def throttle(ctx: AppContext) -> accounts.LoginGate:
    found = ctx.extras.get("login_throttle")
    if found is None:
        s = ctx.settings
        local = accounts.LoginThrottle(
            per_account=s.login_max_failures, per_ip=s.login_max_per_ip, window_s=s.login_window_s
        )
        found = ctx.extras["login_throttle"] = accounts.LoginGate(
            local, ctx.extras.get("shared_limits")
        )
    assert isinstance(found, accounts.LoginGate)
    return found


def _ip(request: Request, ctx: AppContext) -> str | None:
    environ = {
        "asgi.scope": request.scope,
        "HTTP_X_FORWARDED_FOR": request.headers.get("x-forwarded-for"),
    }
    return client_ip(environ, ctx.settings)


def _user(row: Any) -> UserOut:
    return UserOut(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        displayName=row["display_name"],
        avatarUrl=row["avatar_url"],
    )


async def _session(ctx: AppContext, user_id: uuid.UUID, email: str) -> SessionOut:
    token, digest = accounts.new_refresh_token()
    expires = datetime.now(UTC) + timedelta(seconds=ctx.settings.refresh_token_ttl_s)
    async with ctx.require_pool().acquire() as conn:
        session_id = await repo.store_refresh_token(conn, user_id, digest, expires)
    s = accounts.issue_session(
        secret=ctx.settings.jwt_secret,
        user_id=user_id,
        email=email,
        session_id=session_id,
        refresh_token=token,
        ttl_s=ctx.settings.access_token_ttl_s,
    )
    return SessionOut(
        access_token=s.access_token,
        refresh_token=s.refresh_token,
        expires_in=s.expires_in,
        expires_at=s.expires_at,
        token_type=s.token_type,
    )


def _signed_in(who: Caller) -> uuid.UUID:
    if who.user_id is None or who.role != "authenticated":
        raise TuizError(ErrorCode.UNAUTHORIZED, "sign in first (Authorization: Bearer <token>)")
    return who.user_id


@router.post("/auth/register", status_code=201, response_model=AuthOut)
async def register(ctx: ContextDep, request: Request, body: RegisterBody) -> AuthOut:
    """A new local account (e-mail + password), signed in at once.

    409 when the e-mail or username is taken, 422 for a weak password; the display name
    defaults to the username, then to the e-mail's local part.
    """
    await throttle(ctx).attempt(f"register:{_ip(request, ctx)}", _ip(request, ctx))
    accounts.check_password_strength(body.password, body.email)
    display = body.displayName or body.username or body.email.split("@")[0][:50]
    password_hash = await accounts.hash_password(body.password)
    async with ctx.require_pool().acquire() as conn:
        row = await repo.create_account(
            conn,
            email=body.email,
            password_hash=password_hash,
            username=body.username,
            display_name=display,
        )
    return AuthOut(user=_user(row), session=await _session(ctx, row["id"], row["email"]))


@router.post("/auth/login", response_model=AuthOut)
async def login(ctx: ContextDep, request: Request, body: LoginBody) -> AuthOut:
    """Sign in with e-mail and password. 401 "invalid email or password" for an unknown
    e-mail and a wrong password alike (same message, same argon2 work); 429 after
    TUIZ_LOGIN_MAX_FAILURES failures for the account or TUIZ_LOGIN_MAX_PER_IP attempts
    from one address within TUIZ_LOGIN_WINDOW_S."""
    account = body.email.lower()
    gate = throttle(ctx)
    await gate.attempt(account, _ip(request, ctx))
    async with ctx.require_pool().acquire() as conn:
        found = await repo.find_login(conn, account)
    stored = found["password_hash"] if found is not None else None
    if not await accounts.verify_password(stored, body.password) or found is None:
        await gate.failed(account)
        raise TuizError(ErrorCode.UNAUTHORIZED, "invalid email or password")
    await gate.succeeded(account)
    async with ctx.require_pool().acquire() as conn:
        if stored is not None and accounts.needs_rehash(stored):
            await repo.set_password_hash(
                conn, found["id"], await accounts.hash_password(body.password)
            )
        profile = await repo.fetch_profile(conn, found["id"])
        await repo.touch(conn, found["id"])
    assert profile is not None
    return AuthOut(user=_user(profile), session=await _session(ctx, found["id"], found["email"]))


@router.post("/auth/refresh", response_model=AuthOut)
async def refresh(ctx: ContextDep, body: RefreshBody) -> AuthOut:
    """A new session for a live refresh token (which is used up: each works once)."""
    async with ctx.require_pool().acquire() as conn:
        used = await repo.use_refresh_token(conn, accounts.refresh_digest(body.refresh_token))
        if used is None:
            raise TuizError(ErrorCode.UNAUTHORIZED, "refresh token is invalid, expired or used")
        profile = await repo.fetch_profile(conn, used["user_id"])
    assert profile is not None
    return AuthOut(user=_user(profile), session=await _session(ctx, used["user_id"], used["email"]))


@router.post("/auth/logout", response_model=MessageOut)
async def logout(ctx: ContextDep, who: CallerDep) -> MessageOut:
    """End the session of the access token: its refresh token stops working. The access
    token itself stays valid until it expires (TUIZ_ACCESS_TOKEN_TTL_S)."""
    user_id = _signed_in(who)
    raw = (who.claims or {}).get("session_id")
    try:
        session_id = uuid.UUID(str(raw)) if raw else None
    except ValueError:
        session_id = None
    async with ctx.require_pool().acquire() as conn:
        await repo.revoke_session(conn, user_id, session_id)
    return MessageOut(message="signed out")


def _profile(row: Any) -> ProfileOut:
    return ProfileOut(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        displayName=row["display_name"],
        avatarUrl=row["avatar_url"],
        role=row["role"],
        createdAt=row["created_at"],
        updatedAt=row["updated_at"],
        lastActive=row["last_active"],
    )


async def _profile_row(ctx: AppContext, user_id: uuid.UUID) -> Any:
    async with ctx.require_pool().acquire() as conn:
        row = await repo.fetch_profile(conn, user_id)
    if row is None:
        raise TuizError(ErrorCode.UNAUTHORIZED, "the token's user no longer exists")
    return row


@router.get("/profile", response_model=ProfileOut)
async def get_profile(ctx: ContextDep, who: CallerDep) -> ProfileOut:
    """The signed-in user's profile."""
    return _profile(await _profile_row(ctx, _signed_in(who)))


@router.put("/profile/username", response_model=UsernameOut)
async def put_username(ctx: ContextDep, who: CallerDep, body: UsernameBody) -> UsernameOut:
    """3-20 letters, digits or underscores; 409 `username_taken` when taken (any case)."""
    try:
        async with ctx.require_pool().acquire() as conn:
            row = await repo.update_profile(conn, _signed_in(who), username=body.username)
    except TuizError as err:
        if err.details.get("reason") == "username_taken":
            raise ProfileError(err, "username_taken") from None
        raise
    return UsernameOut(username=row["username"], updatedAt=row["updated_at"])


@router.put("/profile/display-name", response_model=DisplayNameOut)
async def put_display_name(
    ctx: ContextDep, who: CallerDep, body: DisplayNameBody
) -> DisplayNameOut:
    async with ctx.require_pool().acquire() as conn:
        row = await repo.update_profile(conn, _signed_in(who), display_name=body.displayName)
    return DisplayNameOut(displayName=row["display_name"], updatedAt=row["updated_at"])


@router.post(
    "/profile/avatar",
    response_model=UploadResult,
    openapi_extra=multipart_body("avatar"),
)
async def post_avatar(ctx: ContextDep, who: CallerDep, request: Request) -> UploadResult:
    """Multipart field `avatar`: a PNG, JPEG, WebP or GIF image; replaces the old avatar."""
    user_id = _signed_in(who)
    data = await read_image(ctx, request, "avatar")
    uploads.remove_all(ctx.settings.data_dir, "avatars", user_id)
    path = uploads.save_image(ctx.settings.data_dir, "avatars", user_id, data)
    url = public_url(ctx, request, path)
    async with ctx.require_pool().acquire() as conn:
        await repo.update_profile(conn, user_id, avatar_url=url)
    return UploadResult(url=url, path=path)


@router.delete("/profile/avatar", response_model=MessageOut)
async def delete_avatar(ctx: ContextDep, who: CallerDep) -> MessageOut:
    """Remove the avatar and its file; 404 when there is none."""
    user_id = _signed_in(who)
    row = await _profile_row(ctx, user_id)
    if row["avatar_url"] is None:
        raise ProfileError(TuizError(ErrorCode.NOT_FOUND, "no avatar to delete"), "no_avatar")
    async with ctx.require_pool().acquire() as conn:
        await repo.update_profile(conn, user_id, avatar_url=None)
    uploads.remove_all(ctx.settings.data_dir, "avatars", user_id)
    return MessageOut(message="avatar deleted")
