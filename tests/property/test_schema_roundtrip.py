"""Every published model survives JSON, as it travels on Kafka and in MongoDB."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas.account import AccountRecord
from schemas.activity import ActivityDocument
from schemas.dead_letter import DeadLetterMeta
from schemas.envelope import encode_headers, meta_header
from schemas.mailbox_state import AccountState, FolderCursor
from schemas.raw_message import RawMessageMeta
from schemas.tagged_message import MessageTags, TaggedMessageMeta
from tests.property import strategies as s

MODELS: list[tuple[type[BaseModel], st.SearchStrategy[BaseModel]]] = [
    (AccountRecord, s.account_records),
    (RawMessageMeta, s.raw_metas),
    (MessageTags, s.message_tags),
    (TaggedMessageMeta, s.tagged_metas),
    (DeadLetterMeta, s.dead_letters),
    (ActivityDocument, s.activity_documents),
    (FolderCursor, s.folder_cursors),
    (AccountState, s.account_states),
]
IDS = [cls.__name__ for cls, _ in MODELS]
# The models that travel in the mailsync-meta header of a Kafka record.
HEADER_MODELS = [
    (cls, models)
    for cls, models in MODELS
    if cls in {RawMessageMeta, MessageTags, TaggedMessageMeta, DeadLetterMeta}
]


@pytest.mark.parametrize(("cls", "models"), MODELS, ids=IDS)
@s.SCHEMAS
@given(data=st.data())
def test_json_round_trip(
    cls: type[BaseModel], models: st.SearchStrategy[BaseModel], data: st.DataObject
) -> None:
    model = data.draw(models)
    assert cls.model_validate_json(model.model_dump_json(by_alias=True)) == model


@pytest.mark.parametrize(
    ("cls", "models"), HEADER_MODELS, ids=[cls.__name__ for cls, _ in HEADER_MODELS]
)
@s.SCHEMAS
@given(data=st.data())
def test_envelope_round_trip(
    cls: type[BaseModel], models: st.SearchStrategy[BaseModel], data: st.DataObject
) -> None:
    """What a consumer reads from the ``mailsync-meta`` header is what was produced."""
    model = data.draw(models)
    headers = encode_headers(model, in_blob=data.draw(st.booleans()))
    assert cls.model_validate_json(meta_header(headers)) == model


@s.SCHEMAS
@given(s.activity_documents)
def test_activity_document_uses_mongo_and_rfc_field_names(doc: ActivityDocument) -> None:
    dumped = json.loads(doc.model_dump_json(by_alias=True))
    assert dumped["_id"] == doc.id
    assert "from" in dumped
    assert "id" not in dumped and "from_" not in dumped
