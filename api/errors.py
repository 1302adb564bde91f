"""Domain errors mapped to HTTP in one place; every body says what was wrong and where."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from definition.limits import LimitExceeded
from definition.validation import DefinitionInvalid
from schema.api import ErrorBody, ErrorEnvelope
from schema.problems import Problem, pointer
from store.sql import Conflict

log = logging.getLogger("promptpilot.api")


class ApiError(Exception):
    """An error with an HTTP status and a stable code."""

    def __init__(self, status: int, code: str, message: str,
                 problems: list[Problem] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    """A 404 naming what was not found."""
    return ApiError(404, "not_found", f"{what} not found")


def error_body(code: str, message: str, problems: list[Problem] | None = None) -> dict[str, Any]:
    """The error envelope every 4xx/5xx carries (``schema.api.ErrorEnvelope``), as JSON data."""
    envelope = ErrorEnvelope(error=ErrorBody(code=code, message=message, problems=problems or []))
    return envelope.model_dump(mode="json", exclude_none=True)


def _request_problems(exc: RequestValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = [p for p in error.get("loc", ()) if p not in ("body",)]
        if len(loc) >= 3 and loc[0] == "steps" and loc[2] in ("llm", "tool", "transform"):
            del loc[2]
        problems.append(Problem(pointer=pointer(*loc), message=str(error.get("msg")),
                                field=str(loc[-1]) if loc else None))
    return problems


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")
# character_not_in_repertoire, untranslatable_character
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


def _sqlstate(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def loggable(exc: BaseException) -> str:
    """Where an unexpected error came from, without what it carried.

    Exception messages hold data: a driver error quotes the parameter it could not encode (a
    webhook secret, an API key digest), a validation error its input. The log gets each
    exception's type, Postgres's SQLSTATE and the frames, never a message or a parameter.
    """
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 10:
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        frames = "".join(traceback.format_list(traceback.extract_tb(seen.__traceback__)))
        parts.append(f"{type(seen).__module__}.{type(seen).__qualname__}"
                     f"{f' (SQLSTATE {state})' if isinstance(state, str) else ''}\n{frames}")
        seen = seen.__cause__ or seen.__context__
    return "caused by ".join(parts)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, found by asking the router
    (Starlette's 405 names the methods of the first route whose path matched, one of several
    that share it). Where documented paths overlap (`/api/workflows/runs` also fits
    `/api/workflows/{slug}`, whose slug `runs` is reserved), the most literal one decides."""
    routes = request.app.router.routes
    served = [method for method in _METHODS if any(
        route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)]
    path = request.url.path
    fitting = [(template.count("{"), template) for template in request.app.openapi()["paths"]
               if re.fullmatch(re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template)), path)]
    if not fitting:
        return served
    fewest = min(count for count, _ in fitting)
    documented = {method.upper() for count, template in fitting if count == fewest
                  for method in request.app.openapi()["paths"][template]}
    return [method for method in served if method in documented] or served


def install(app: FastAPI) -> None:
    """Register the handlers."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return JSONResponse(error_body(exc.code, exc.message, exc.problems), status_code=exc.status,
                            headers={**headers, **exc.headers})

    @app.exception_handler(DefinitionInvalid)
    async def _invalid(_: Request, exc: DefinitionInvalid) -> JSONResponse:
        summary = "; ".join(f"{p.pointer}: {p.message}" for p in exc.problems[:5])
        return JSONResponse(error_body("validation_error", f"{exc}: {summary}", exc.problems),
                            status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = _request_problems(exc)
        summary = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in problems[:5])
        return JSONResponse(error_body("validation_error", f"invalid request: {summary}", problems),
                            status_code=422)

    @app.exception_handler(LimitExceeded)
    async def _limit(_: Request, exc: LimitExceeded) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc), [exc.problem]),
                            status_code=exc.status)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(error_body("conflict", str(exc)), status_code=409)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # Text Postgres cannot store (a NUL byte, in a parameter or a JSON string) is the
        # client's problem, not ours: say so instead of a 500.
        if _sqlstate(exc) in _UNSTORABLE_TEXT:
            return JSONResponse(error_body("validation_error", "the request contains text Postgres "
                                      "cannot store (a NUL byte or \\u0000 escape)"),
                                status_code=422)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Where it failed is logged server-side, never the request's body, parameters or any
        # exception message (see `loggable`); the client gets no stack trace.
        log.error("unhandled error in %s %s: %s", request.method, request.url.path,
                  loggable(exc))
        return JSONResponse(error_body("internal_error", "internal error; see the API log"),
                            status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(error_body("http_error", str(exc.detail)), status_code=exc.status_code,
                            headers=headers)
