"""The exported JSON Schemas are what other teams build on: they must match the models."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.export import JSON_DIR, drift, rendered
from schemas.topics import TOPICS


def test_exported_schemas_match_the_models() -> None:
    assert drift() == [], "run `mailsync schemas export` and commit schemas/json"


def test_every_topic_is_described_with_its_schema_and_config() -> None:
    registry = json.loads((JSON_DIR / "topics.json").read_text())
    assert [t["name"] for t in registry] == [t.name for t in TOPICS]
    for entry in registry:
        schema = json.loads((JSON_DIR / entry["schema"]).read_text())
        assert schema["type"] == "object"
        assert schema["properties"]["schema_version"]["const"] == 1
        assert entry["config"]["cleanup.policy"] in ("compact", "delete")


def test_drift_is_detected(tmp_path: Path) -> None:
    files = rendered()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert drift(tmp_path) == []
    (tmp_path / "topic.mailsync.raw-messages.json").write_text("{}")
    (tmp_path / "stale.json").write_text("{}")
    assert drift(tmp_path) == ["stale.json", "topic.mailsync.raw-messages.json"]
