"""The one place TuizError, database outages and request validation failures become HTTP."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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
