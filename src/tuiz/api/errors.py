"""The one place TuizError, database outages, request validation failures and the framework's
own refusals (no such route, wrong method) become HTTP, all in one shape."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tuiz.errors import ErrorCode, TuizError, client_error
from tuiz.logs import get_logger, log_outage

log = get_logger(__name__)

# What the database layer raises (outages among them); anything else stays a plain 500.
_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


# The framework's own refusals, by status; a status not named here keeps its number and
# gets the nearest code (any other 4xx is the request's fault, any 5xx ours).
_FRAMEWORK_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


def install(app: FastAPI) -> None:
    @app.exception_handler(TuizError)
    async def _tuiz_error(_: Request, exc: TuizError) -> JSONResponse:
        return JSONResponse(exc.to_payload(), status_code=exc.http_status)

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        err = client_error(exc)
        if err is None:
            log.error("request_failed", path=request.url.path, error=repr(exc), exc_info=exc)
            err = TuizError(ErrorCode.INTERNAL_ERROR, "the server failed to handle this")
        elif err.code is ErrorCode.UNAVAILABLE:  # not a foreign key the client named
            log_outage(log, "database_unavailable", exc, path=request.url.path)
        return JSONResponse(err.to_payload(), status_code=err.http_status)

    @app.exception_handler(HTTPException)
    async def _framework_error(_: Request, exc: HTTPException) -> JSONResponse:
        status = exc.status_code
        fallback = ErrorCode.INTERNAL_ERROR if status >= 500 else ErrorCode.VALIDATION_ERROR
        code = _FRAMEWORK_CODES.get(status, fallback)
        message = exc.detail if isinstance(exc.detail, str) else code.value
        body = TuizError(code, message).to_payload()
        return JSONResponse(body, status_code=status, headers=exc.headers)

    for kind in _DATABASE_ERRORS:
        app.add_exception_handler(kind, _database_error)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": ""}
        where = ".".join(str(p) for p in first["loc"][1:] or first["loc"])
        err = TuizError(
            ErrorCode.VALIDATION_ERROR,
            f"{where}: {first['msg']}" if where else "request does not match the schema",
            errors=errors,
        )
        return JSONResponse(err.to_payload(), status_code=err.http_status)
