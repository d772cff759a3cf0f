"""Every error the API answers is an RFC 9457 problem (``application/problem+json``),
the framework's own 404, 405 and 422 included, with the status codes they always had."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.api import Api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The problem ``response`` holds, checked as a client would read it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://mailsync.invalid/problems/{code}"
    assert body["status"] == status and body["code"] == code
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    return body


async def test_every_error_is_a_problem(api: Api) -> None:
    anonymous, jana = api.client(None), api.client("u-jana")

    unknown_route = problem(await jana.get("/v1/no-such-thing"), 404, "not_found")
    assert unknown_route["detail"] == "nothing at /v1/no-such-thing"

    wrong_method = await jana.delete("/v1/presets")
    assert problem(wrong_method, 405, "method_not_allowed")["detail"].startswith("DELETE")
    assert wrong_method.headers["allow"] == "GET"

    no_token = await anonymous.get("/v1/accounts")
    assert problem(no_token, 401, "unauthenticated")["retriable"] is False
    assert no_token.headers["www-authenticate"] == "Bearer"

    password = "do-not-echo-this-password"
    invalid = await jana.post(
        "/v1/accounts/verify", json={"imap": {"port": "x"}, "password": password}
    )
    fields = problem(invalid, 422, "invalid_request")["errors"]
    assert {(f["pointer"], f["type"]) for f in fields} == {
        ("#/imap/port", "int_parsing"),
        ("#/imap/username", "missing"),
    }
    assert password not in invalid.text
    too_many = problem(
        await jana.get("/v1/activities", params={"limit": 5000}), 422, "invalid_request"
    )
    assert too_many["errors"][0]["loc"] == ["query", "limit"]

    not_found = problem(await jana.get("/v1/activities/nope"), 404, "not_found")
    assert not_found["detail"] == "no activity 'nope'"
    not_yours = problem(await jana.get("/v1/accounts/acc-other"), 403, "forbidden")
    assert not_yours["retriable"] is False
    # The OAuth2 callback (a program asking for JSON) answers the same shape.
    stale = await anonymous.get(
        "/v1/accounts/oauth2/callback",
        params={"state": "never-issued", "code": "c"},
        headers={"Accept": "application/json"},
    )
    problem(stale, 400, "invalid_state")
