"""FastAPI dependencies shared by the routers: the app context and the verified caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from tuiz.auth import (
    ANON,
    Caller,
    InvalidCredential,
    authenticate,
    bearer,
    is_service_key,
    signed_by,
)
from tuiz.context import AppContext
from tuiz.errors import ErrorCode, TuizError
from tuiz.limits import PinLookup
from tuiz.netaddr import client_address
from tuiz.realtime.protocol import check_device_id


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def request_address(request: Request, ctx: AppContext) -> str | None:
    """The client's address (`TUIZ_TRUSTED_PROXIES` decides whether X-Forwarded-For counts)."""
    return client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        ctx.settings.trusted_proxy_networks,
    )


async def caller(
    request: Request,
    ctx: Annotated[AppContext, Depends(context)],
    authorization: Annotated[str | None, Header()] = None,
    apikey: Annotated[str | None, Header()] = None,
) -> Caller:
    """Bearer JWT or service key (Supabase clients also send it as `apikey`); else anonymous.

    Failed guesses count per client address (`tuiz.authlimit`); an address over the limit
    gets 429 for any credential it presents until its window ends. An `apikey` that is not
    the service key leaves the caller anonymous (Supabase clients send their anon key there);
    it counts as a failure unless it carries our signature.
    """
    token = bearer(authorization)
    if token is None and not apikey:
        return ANON
    settings = ctx.settings
    address = request_address(request, ctx)
    await ctx.auth_failures.check(address)
    if token is None:
        assert apikey is not None
        if is_service_key(apikey, settings.service_key):
            token = apikey
        else:
            if not signed_by(apikey, settings.jwt_secret):
                await ctx.auth_failures.failed(address)
            return ANON
    try:
        return authenticate(token, jwt_secret=settings.jwt_secret, service_key=settings.service_key)
    except InvalidCredential as exc:
        if exc.guess:
            await ctx.auth_failures.failed(address)
        raise


def device_id(x_device_id: Annotated[str | None, Header()] = None) -> str | None:
    """A guest's device id (`x-device-id`), validated like every device id."""
    if x_device_id is None:
        return None
    try:
        return check_device_id(x_device_id)
    except ValueError as exc:
        raise TuizError(ErrorCode.VALIDATION_ERROR, f"x-device-id: {exc}") from None


def address(request: Request, ctx: Annotated[AppContext, Depends(context)]) -> str | None:
    return request_address(request, ctx)


AddressDep = Annotated[str | None, Depends(address)]


async def pin_lookup(
    ctx: Annotated[AppContext, Depends(context)], address: AddressDep
) -> PinLookup:
    """A PIN lookup within this address's limits: `await lookup(find, pin)`."""
    return await ctx.limits.pin_lookup(address)


async def limit_joins(ctx: Annotated[AppContext, Depends(context)], address: AddressDep) -> None:
    await ctx.limits.join(address)


async def limit_game_creation(
    ctx: Annotated[AppContext, Depends(context)], address: AddressDep
) -> None:
    await ctx.limits.create_game(address)


async def limit_conversions(
    ctx: Annotated[AppContext, Depends(context)], address: AddressDep
) -> None:
    await ctx.limits.convert_sheet(address)


CallerDep = Annotated[Caller, Depends(caller)]
ContextDep = Annotated[AppContext, Depends(context)]
DeviceDep = Annotated[str | None, Depends(device_id)]
PinLookupDep = Annotated[PinLookup, Depends(pin_lookup)]
