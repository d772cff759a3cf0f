"""Export every topic and document schema as JSON Schema: ``mailsync schemas export``.

``--check`` exits 1 when the files in ``schemas/json/`` differ from the models, so CI
catches a model change that was not exported for the teams who consume our topics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.account_document import AccountDocument
from schemas.activity import ActivityDocument
from schemas.mailbox_state import AccountState, FolderCursor, WorkerHeartbeat
from schemas.send_request import SendRecord
from schemas.tombstone import Tombstone
from schemas.topics import TOPICS

JSON_DIR = Path(__file__).with_name("json")

DOCUMENTS: dict[str, type[BaseModel]] = {
    "activities": ActivityDocument,
    "folder_cursors": FolderCursor,
    "account_states": AccountState,
    "fetcher_workers": WorkerHeartbeat,
    "send_requests": SendRecord,
    "accounts": AccountDocument,
    "tombstones": Tombstone,
}


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> content of every exported schema, as it should be on disk."""
    files: dict[str, str] = {}
    registry = []
    for spec in TOPICS:
        file = f"topic.{spec.name}.json"
        files[file] = _dump(spec.model.model_json_schema(by_alias=True, mode="serialization"))
        registry.append(
            {
                "name": spec.name,
                "key": spec.key,
                "encoding": spec.encoding,
                "schema": file,
                "partitions": spec.partitions,
                "config": spec.config(),
                "producers": list(spec.producers),
                "consumers": list(spec.consumers),
                "description": spec.description,
            }
        )
    for collection, model in DOCUMENTS.items():
        files[f"document.{collection}.json"] = _dump(
            model.model_json_schema(by_alias=True, mode="serialization")
        )
    files["topics.json"] = _dump(registry)
    return files


def drift(directory: Path = JSON_DIR) -> list[str]:
    """Names of files that are missing, stale or no longer produced."""
    want = rendered()
    have = {p.name for p in directory.glob("*.json")} if directory.exists() else set()
    stale = [
        n
        for n, text in want.items()
        if not (directory / n).exists() or (directory / n).read_text() != text
    ]
    return sorted(stale + sorted(have - want.keys()))


def export(directory: Path = JSON_DIR) -> list[str]:
    """Write every schema; remove files for models that no longer exist."""
    directory.mkdir(parents=True, exist_ok=True)
    want = rendered()
    for name, text in want.items():
        (directory / name).write_text(text)
    for old in directory.glob("*.json"):
        if old.name not in want:
            old.unlink()
    return sorted(want)
