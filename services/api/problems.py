"""What an error looks like on the wire (pure): an RFC 9457 problem detail.

Every error the API answers, its own (:class:`ApiError`) and the framework's (an
unknown route, a wrong method, an invalid request), is one :class:`Problem` sent as
``application/problem+json``, so a client reads one shape whatever went wrong. The
standard members (RFC 9457 section 3.1) are ``type``, ``title``, ``status``, ``detail``
and ``instance``; ``code`` and ``retriable`` are mailsync's extension members (section
3.2), as are ``hint``, ``failure`` (a refused verification) and ``errors`` (the fields
of an invalid request).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import Field

from schemas._base import Model
from services.api.errors import ApiError, VerificationFailed
from services.api.verify_errors import VerifyFailure

MEDIA_TYPE = "application/problem+json"
# One type URI per code; ``.invalid`` (RFC 2606) because the URI identifies, it is not
# meant to be dereferenced (RFC 9457 section 3.1.1 allows that).
PROBLEM_TYPE = "https://mailsync.invalid/problems/"

# A title per code, the same for every occurrence of that type (RFC 9457 section 3.1.3).
TITLES = {
    "bad_request": "The request cannot be carried out",
    "unauthenticated": "An API token is needed",
    "forbidden": "Not allowed",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "conflict": "The account is not in a state that allows this",
    "invalid_request": "The request is not valid",
    "invalid_cursor": "The cursor is not valid",
    "verification_failed": "The mail server refused the login",
    "unavailable": "A dependency did not answer",
    "secret_undecryptable": "A saved secret cannot be decrypted",
    "internal_error": "Internal server error",
    "sign_in_failed": "The account was not connected",
    "access_denied": "Access was refused",
    "invalid_state": "This sign-in is no longer valid",
    "provider_error": "The provider refused the sign-in",
    "token_exchange_failed": "The sign-in could not be completed",
    "address_unknown": "Which mailbox is it?",
    "provider_not_configured": "This provider is not set up",
}


class FieldError(Model):
    """One invalid part of a request (RFC 9457 section 3's ``errors`` example)."""

    loc: tuple[str | int, ...] = Field(
        description="Where: body, query, path or header, then the field's path."
    )
    detail: str
    type: str = Field(description="What is wrong, e.g. missing, int_parsing, too_long.")
    pointer: str | None = Field(
        default=None, description="A JSON Pointer (RFC 6901) into the body, for body fields."
    )


class Problem(Model):
    """An error as RFC 9457 ``application/problem+json``, with mailsync's code."""

    type: str = Field(description="A URI naming the kind of problem, one per ``code``.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, for a person.")
    instance: str | None = Field(default=None, description="The request's path.")
    code: str = Field(description="The kind of problem, stable, for a program.")
    retriable: bool = Field(description="The same request may succeed later.")
    hint: str | None = Field(default=None, description="What the user can do about it.")
    failure: VerifyFailure | None = Field(
        default=None, description="Why the mail server refused (verification_failed)."
    )
    errors: tuple[FieldError, ...] | None = Field(
        default=None, description="The invalid parts of the request (invalid_request)."
    )

    def body(self) -> dict[str, Any]:
        """The JSON body; members without a value are left out."""
        return self.model_dump(mode="json", exclude_none=True)


def problem_type(code: str) -> str:
    return PROBLEM_TYPE + code


def title_of(code: str, status: int) -> str:
    return TITLES.get(code) or _phrase(status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def from_error(error: ApiError, instance: str | None = None) -> Problem:
    """The problem an :class:`ApiError` is answered with."""
    failure = error.failure if isinstance(error, VerificationFailed) else None
    return Problem(
        type=problem_type(error.code),
        title=title_of(error.code, error.status),
        status=error.status,
        detail=str(error) or title_of(error.code, error.status),
        instance=instance,
        code=error.code,
        retriable=error.retriable,
        hint=failure.hint if failure else None,
        failure=failure,
    )


def http_code(status: int) -> str:
    """The code of a bare HTTP error the framework raised (404 -> not_found)."""
    try:
        return re.sub(r"[^a-z0-9]+", "_", HTTPStatus(status).phrase.lower()).strip("_")
    except ValueError:
        return "http_error"


def from_http(
    status: int, detail: str | None, instance: str, *, method: str = "", allow: str = ""
) -> Problem:
    """The problem of an HTTP error raised by the framework: an unknown route (404), a
    method the route does not take (405), a file the static mount does not have."""
    code = http_code(status)
    if not detail or detail == _phrase(status):
        if status == HTTPStatus.NOT_FOUND:
            detail = f"nothing at {instance}"
        elif status == HTTPStatus.METHOD_NOT_ALLOWED:
            detail = f"{method} is not allowed on {instance}" + (
                f"; allowed: {allow}" if allow else ""
            )
        else:
            detail = _phrase(status)
    return Problem(
        type=problem_type(code),
        title=title_of(code, status),
        status=status,
        detail=detail,
        instance=instance,
        code=code,
        retriable=status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE),
    )


def _pointer(loc: Sequence[str | int]) -> str | None:
    """A JSON Pointer (RFC 6901) to a body field: ``~`` and ``/`` escaped."""
    if not loc or loc[0] != "body":
        return None
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in loc[1:])


def from_validation(errors: Iterable[Mapping[str, Any]], instance: str) -> Problem:
    """The 422 of a request the framework found invalid: which fields and why, never the
    input itself (it may hold a password)."""
    fields = tuple(
        FieldError(
            loc=tuple(e.get("loc", ())),
            detail=str(e.get("msg", "")),
            type=str(e.get("type", "")),
            pointer=_pointer(tuple(e.get("loc", ()))),
        )
        for e in errors
    )
    where = ", ".join(".".join(str(p) for p in f.loc) for f in fields)
    return Problem(
        type=problem_type("invalid_request"),
        title=title_of("invalid_request", 422),
        status=422,
        detail=f"the request is not valid: {where}" if where else "the request is not valid",
        instance=instance,
        code="invalid_request",
        retriable=False,
        errors=fields,
    )


def internal(instance: str) -> Problem:
    """An unexpected failure: nothing about it goes out (it is logged)."""
    return Problem(
        type=problem_type("internal_error"),
        title=title_of("internal_error", 500),
        status=500,
        detail="the server failed to answer this request; it is logged",
        instance=instance,
        code="internal_error",
        # Unknown whether anything was done: a client must not repeat it blindly.
        retriable=False,
    )
