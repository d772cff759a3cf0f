"""The errors in the OpenAPI document (pure): each one an RFC 9457 ``Problem``.

Routes name the errors they answer with :func:`problem_responses`; :func:`documented`
then completes the generated document: the ``Problem`` schema in the components, a
401 on every operation that needs a token (the token is checked before anything else),
and FastAPI's own 422 (``HTTPValidationError``, a shape this API never sends) replaced
by the problem the handlers answer (:mod:`.handlers`).
"""

from __future__ import annotations

import copy
from typing import Any

from services.api.problems import MEDIA_TYPE, Problem

REF = "#/components/schemas/Problem"
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")

DESCRIPTIONS = {
    400: "The request cannot be carried out as given (e.g. an invalid cursor).",
    401: "No API token, or an unknown one (with WWW-Authenticate: Bearer).",
    403: "Not allowed, or an account the caller may not see (whether it exists or not).",
    404: "No such resource.",
    409: "The account is not in a state that allows this.",
    422: "The request is not valid (``errors`` lists the fields), or the mail server "
    "refused (``failure``).",
    502: "The provider did not complete the sign-in.",
    503: "The broker or the database did not answer; retriable.",
}


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": {"$ref": REF}}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: these statuses answer a ``Problem``."""
    return {s: problem_response(DESCRIPTIONS.get(s, "An error.")) for s in statuses}


def _schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {**defs, "Problem": schema}


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    content = response.get("content", {})
    refs = [m.get("schema", {}).get("$ref", "") for m in content.values()]
    return any(r.endswith("/HTTPValidationError") for r in refs)


def documented(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with its errors as problems (a new dict; the input is not changed)."""
    doc = copy.deepcopy(document)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_422:
        schemas.pop(name, None)
    schemas.update(_schemas())
    for methods in doc.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses and _is_fastapi_422(responses["422"]):
                responses["422"] = problem_response(DESCRIPTIONS[422])
            if operation.get("security"):
                responses.setdefault("401", problem_response(DESCRIPTIONS[401]))
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    return doc
