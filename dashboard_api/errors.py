"""Structured JSON errors: every failure leaves the API as ``{"error": {code, message, …}}``.

``code`` is stable (clients branch on it), ``message`` is for people and never echoes the
request body (it may hold a password or personal data). Nothing here reads a store.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shuxin.gateway.sql_errors import (
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    SqlDataError,
    SqlUnavailableError,
)

log = logging.getLogger(__name__)

_HTTP_CODES: Final[dict[int, str]] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    423: "locked",
    429: "too_many_requests",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    """The body of an error."""

    code: str
    message: str
    fields: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """What every non-2xx response carries."""

    error: ErrorDetail


#: For ``responses=`` in route declarations, so OpenAPI documents the error shape.
ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": ErrorBody, "description": "not logged in, or the token expired"},
    403: {"model": ErrorBody, "description": "the role or the org-unit scope forbids it"},
    404: {"model": ErrorBody, "description": "no such resource inside your scope"},
    422: {"model": ErrorBody, "description": "invalid parameters"},
}


class ApiError(Exception):
    """A refusal with a status, a stable code and a message."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(what: str) -> ApiError:
    """404 for a resource that does not exist *or* lies outside the caller's scope (the two
    are indistinguishable on purpose: existence outside the scope is itself information)."""
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str) -> ApiError:
    """403: authenticated, but the role does not allow it."""
    return ApiError(403, "forbidden", message)


def _body(code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        detail["fields"] = fields
    return {"error": detail}


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # loc/msg/type only: pydantic's "input" and "ctx" may echo what the client sent.
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()[:20]
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an :class:`ErrorBody`."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(_body(exc.code, exc.message), exc.status, headers=exc.headers)

    async def validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(
            _body("invalid_request", "the request is invalid", _field_errors(exc)), 422
        )

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            _body(code, message), exc.status_code, headers=getattr(exc, "headers", None)
        )

    async def store_error(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return JSONResponse(_body("not_found", "not found"), 404)
        if isinstance(exc, ConflictError | InvalidTransitionError):
            return JSONResponse(_body("conflict", str(exc)), 409)
        if isinstance(exc, SqlUnavailableError):
            return JSONResponse(_body("unavailable", "the database is unavailable"), 503)
        return JSONResponse(_body("invalid_request", str(exc)), 422)

    async def database_busy(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable or busy: %s", type(exc).__name__)
        return JSONResponse(
            _body("unavailable", "the database is busy or unavailable; retry shortly"),
            503,
            headers={"Retry-After": "1"},
        )

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s in a request", type(exc).__name__, exc_info=exc)
        return JSONResponse(_body("internal_error", "internal error"), 500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(SqlDataError, store_error)
    app.add_exception_handler(SqlUnavailableError, store_error)
    app.add_exception_handler(OperationalError, database_busy)
    app.add_exception_handler(Exception, unexpected)
