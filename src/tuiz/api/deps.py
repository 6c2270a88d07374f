"""FastAPI dependencies shared by the routers: the app context and the verified caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from tuiz.auth import Caller, authenticate, bearer
from tuiz.context import AppContext
from tuiz.errors import ErrorCode, TuizError
from tuiz.realtime.protocol import check_device_id


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def caller(
    ctx: Annotated[AppContext, Depends(context)],
    authorization: Annotated[str | None, Header()] = None,
    apikey: Annotated[str | None, Header()] = None,
) -> Caller:
    """Bearer JWT or service key (Supabase clients also send it as `apikey`); else anonymous."""
    token = bearer(authorization)
    if token is None and apikey and apikey == ctx.settings.service_key:
        token = apikey
    return authenticate(
        token, jwt_secret=ctx.settings.jwt_secret, service_key=ctx.settings.service_key
    )


def device_id(x_device_id: Annotated[str | None, Header()] = None) -> str | None:
    """A guest's device id (`x-device-id`), validated like every device id."""
    if x_device_id is None:
        return None
    try:
        return check_device_id(x_device_id)
    except ValueError as exc:
        raise TuizError(ErrorCode.VALIDATION_ERROR, f"x-device-id: {exc}") from None


CallerDep = Annotated[Caller, Depends(caller)]
ContextDep = Annotated[AppContext, Depends(context)]
DeviceDep = Annotated[str | None, Depends(device_id)]
