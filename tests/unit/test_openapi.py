"""The published OpenAPI document matches the API (run `mailsync openapi export`)."""

from __future__ import annotations

import json

from services.api.openapi import DOCUMENT, drifted, rendered


def test_published_openapi_matches_the_api() -> None:
    assert not drifted(), "run `mailsync openapi export` and commit docs/openapi.json"


def test_every_endpoint_needs_a_token_and_secrets_only_go_in() -> None:
    doc = json.loads(rendered())
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # The OAuth2 callback is where the provider sends the user's browser: it cannot carry
    # an API token; its one-use ``state`` identifies the sign-in (and its caller).
    callback = doc["paths"].pop("/v1/accounts/oauth2/callback")
    assert "security" not in callback["get"]
    assert {p["name"] for p in callback["get"]["parameters"]} == {
        "state",
        "code",
        "error",
        "error_description",
    }
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert op.get("security") == [{"HTTPBearer": []}], f"{method} {path}"
    schemas = doc["components"]["schemas"]
    assert "password" not in schemas["AccountView"]["properties"]
    assert "secret" not in schemas["AccountView"]["properties"]
    assert schemas["VerifyRequest"]["properties"]["password"]["format"] == "password"
    assert DOCUMENT.name == "openapi.json"


def test_every_error_is_a_problem_and_every_route_with_a_token_lists_401() -> None:
    doc = json.loads(rendered())
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            for status, response in errors.items():
                assert response["content"] == {"application/problem+json": {"schema": problem}}, (
                    f"{method} {path} {status}"
                )
            if op.get("security"):
                assert "401" in errors, f"{method} {path}"
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ErrorBody" not in schemas
    members = set(schemas["Problem"]["properties"])
    assert {"type", "title", "status", "detail", "instance", "errors"} <= members
    assert set(schemas["Problem"]["required"]) >= {"type", "title", "status", "detail"}
