"""The published OpenAPI document matches the API (run `mailsync openapi export`)."""

from __future__ import annotations

import json

from services.api.openapi import DOCUMENT, drifted, rendered


def test_published_openapi_matches_the_api() -> None:
    assert not drifted(), "run `mailsync openapi export` and commit docs/openapi.json"


def test_every_endpoint_needs_a_token_and_secrets_only_go_in() -> None:
    doc = json.loads(rendered())
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert op.get("security") == [{"HTTPBearer": []}], f"{method} {path}"
    schemas = doc["components"]["schemas"]
    assert "password" not in schemas["AccountView"]["properties"]
    assert "secret" not in schemas["AccountView"]["properties"]
    assert schemas["VerifyRequest"]["properties"]["password"]["format"] == "password"
    assert DOCUMENT.name == "openapi.json"
