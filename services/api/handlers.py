"""The exception handlers: every error leaves as ``application/problem+json`` (RFC 9457).

The app's own errors, the framework's (Starlette's 404 for an unknown route and 405
for a wrong method, FastAPI's 422 for an invalid request), a dependency that did not
answer (503) and anything unexpected (500) are all turned into one
:class:`~services.api.problems.Problem` here; what each says is decided in
:mod:`.problems`. The status codes are the ones these errors always had.
"""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException

from services.api.errors import ApiError, SecretUndecryptable, Unavailable
from services.api.problems import (
    MEDIA_TYPE,
    Problem,
    from_error,
    from_http,
    from_validation,
    internal,
)
from services.common.secrets import SecretDecryptError

log = logging.getLogger("mailsync.api")


def respond(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, headers=headers, media_type=MEDIA_TYPE
    )


def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    # RFC 6750 section 3: a 401 names the scheme the client should use.
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return respond(from_error(exc, request.url.path), headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _api_error(request, exc)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors: 404 (no such route, no such static file), 405 (with its
    ``Allow`` header, RFC 9110 section 15.5.6, kept)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    problem = from_http(
        exc.status_code,
        exc.detail if isinstance(exc.detail, str) else None,
        request.url.path,
        method=request.method,
        allow=headers.get("Allow", ""),
    )
    return respond(problem, headers or None)


async def _on_invalid(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 echoes the offending input, which may hold a password: never here."""
    assert isinstance(exc, RequestValidationError)
    return respond(from_validation(exc.errors(), request.url.path))


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: %s unavailable: %r", request.method, request.url.path, type(exc), exc)
    return _api_error(request, Unavailable("the broker or the database did not answer; try again"))


async def _on_undecryptable(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s: %s", request.url.path, exc)
    error = SecretUndecryptable(
        "a saved secret cannot be decrypted with the configured keys: set the password again"
    )
    return _api_error(request, error)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware sends this, then raises the exception again:
    # uvicorn logs it with its traceback. Nothing of it goes to the client.
    return respond(internal(request.url.path))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(PyMongoError, _on_unavailable)
    app.add_exception_handler(KafkaError, _on_unavailable)
    app.add_exception_handler(SecretDecryptError, _on_undecryptable)
    app.add_exception_handler(Exception, _on_unexpected)
