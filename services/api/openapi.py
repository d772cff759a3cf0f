"""The OpenAPI document, published in ``docs/openapi.json`` and checked for drift like
the JSON Schemas (``mailsync openapi export [--check]``)."""

from __future__ import annotations

import json
from pathlib import Path

from services.api.app import openapi_document

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def rendered() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def drifted(path: Path = DOCUMENT) -> bool:
    return not path.exists() or path.read_text() != rendered()


def export(path: Path = DOCUMENT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rendered())
    return path
