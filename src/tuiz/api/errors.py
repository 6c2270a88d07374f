"""The one place TuizError and request validation failures become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tuiz.errors import ErrorCode, TuizError


def install(app: FastAPI) -> None:
    @app.exception_handler(TuizError)
    async def _tuiz_error(_: Request, exc: TuizError) -> JSONResponse:
        return JSONResponse(exc.to_payload(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = TuizError(
            ErrorCode.VALIDATION_ERROR,
            "request does not match the schema",
            errors=[{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()],
        )
        return JSONResponse(err.to_payload(), status_code=err.http_status)
