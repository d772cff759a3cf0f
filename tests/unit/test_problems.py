"""Errors as RFC 9457 problems (pure): what a client reads, whatever went wrong."""

from __future__ import annotations

from services.api.errors import Forbidden, NotAuthenticated, Unavailable, VerificationFailed
from services.api.problems import from_error, from_http, from_validation, internal
from services.api.verify_errors import FailureCode, VerifyFailure


def test_an_api_error_keeps_its_status_and_code_with_the_standard_members() -> None:
    body = from_error(Forbidden("not yours"), "/v1/accounts/a1").body()
    assert body == {
        "type": "https://mailsync.invalid/problems/forbidden",
        "title": "Not allowed",
        "status": 403,
        "detail": "not yours",
        "instance": "/v1/accounts/a1",
        "code": "forbidden",
        "retriable": False,
    }
    assert from_error(NotAuthenticated("unknown API token")).status == 401
    assert from_error(Unavailable("later")).body()["retriable"] is True


def test_a_refused_verification_carries_its_failure_and_hint() -> None:
    failure = VerifyFailure(
        stage="imap", code=FailureCode.AUTH, message="IMAP: no", hint="Check the password."
    )
    body = from_error(VerificationFailed(failure), "/v1/accounts/verify").body()
    assert (body["status"], body["code"], body["hint"]) == (
        422,
        "verification_failed",
        "Check the password.",
    )
    assert body["failure"]["code"] == "auth_failed" and body["failure"]["stage"] == "imap"


def test_the_frameworks_404_and_405_say_what_was_asked() -> None:
    missing = from_http(404, "Not Found", "/v1/nope").body()
    assert (missing["status"], missing["code"], missing["title"]) == (404, "not_found", "Not found")
    assert missing["detail"] == "nothing at /v1/nope"
    wrong = from_http(405, "Method Not Allowed", "/v1/presets", method="DELETE", allow="GET")
    assert wrong.code == "method_not_allowed"
    assert wrong.detail == "DELETE is not allowed on /v1/presets; allowed: GET"
    busy = from_http(429, None, "/v1/send")
    assert (busy.code, busy.title, busy.retriable) == (
        "too_many_requests",
        "Too Many Requests",
        True,
    )


def test_an_invalid_request_lists_its_fields_with_json_pointers_never_the_input() -> None:
    errors = [
        {
            "loc": ("body", "imap", "port"),
            "msg": "Input should be a valid integer",
            "type": "int",
            "input": "secret-ish",
        },
        {"loc": ("body", "a/b~c"), "msg": "Field required", "type": "missing"},
        {"loc": ("query", "limit"), "msg": "Input should be <= 1000", "type": "less_than_equal"},
    ]
    body = from_validation(errors, "/v1/accounts").body()
    assert (body["status"], body["code"]) == (422, "invalid_request")
    assert [e["pointer"] for e in body["errors"] if "pointer" in e] == ["#/imap/port", "#/a~1b~0c"]
    assert body["errors"][2] == {
        "loc": ["query", "limit"],
        "detail": "Input should be <= 1000",
        "type": "less_than_equal",
    }
    assert "secret-ish" not in str(body)
    assert body["detail"] == "the request is not valid: body.imap.port, body.a/b~c, query.limit"


def test_an_unexpected_failure_says_nothing_of_itself() -> None:
    body = internal("/v1/status").body()
    assert (body["status"], body["code"], body["retriable"]) == (500, "internal_error", False)
