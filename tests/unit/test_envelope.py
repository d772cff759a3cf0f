"""Kafka record headers carrying a model as JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from schemas.common import FolderRole, MessageLocation
from schemas.envelope import (
    BLOB_REF,
    CONTENT_TYPE_HEADER,
    META_HEADER,
    RFC822,
    encode_headers,
    meta_header,
)
from schemas.mailbox_state import FolderCursor
from schemas.raw_message import RawMessageMeta

META = RawMessageMeta(
    location=MessageLocation(account_id="jan", folder="Koš", uidvalidity=7, uid=42),
    folder_role=FolderRole.TRASH,
    internaldate=dt.datetime(2026, 11, 23, 16, 15, 18, tzinfo=dt.UTC),
    size=294,
    sha256="0" * 64,
    flags=("\\Seen",),
    fetched_at=dt.datetime(2026, 11, 23, 16, 20, tzinfo=dt.UTC),
)


def test_inline_message_headers() -> None:
    headers = encode_headers(META, in_blob=False)
    assert dict(headers)[CONTENT_TYPE_HEADER] == RFC822 == b"message/rfc822"
    assert [name for name, _ in headers] == [META_HEADER, CONTENT_TYPE_HEADER]


def test_blob_message_headers() -> None:
    headers = encode_headers(META, in_blob=True)
    assert dict(headers)[CONTENT_TYPE_HEADER] == BLOB_REF


def test_meta_is_json_that_validates_back() -> None:
    raw = meta_header(encode_headers(META, in_blob=False))
    assert isinstance(raw, bytes)
    assert json.loads(raw)["location"]["folder"] == "Koš"
    assert RawMessageMeta.model_validate_json(raw) == META


def test_meta_uses_field_aliases() -> None:
    cursor = FolderCursor(  # type: ignore[call-arg]  # by its alias, _id, as stored
        _id="jan/INBOX",
        account_id="jan",
        folder="INBOX",
        folder_role=FolderRole.INBOX,
        uidvalidity=1,
        last_uid=0,
        updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    doc = json.loads(meta_header(encode_headers(cursor, in_blob=False)))
    assert doc["_id"] == "jan/INBOX"
    assert "id" not in doc


def test_meta_header_among_other_headers() -> None:
    headers = [("traceparent", b"00-abc"), (META_HEADER, b'{"a": 1}'), ("x", b"y")]
    assert meta_header(headers) == b'{"a": 1}'


@pytest.mark.parametrize("headers", [None, [], [(CONTENT_TYPE_HEADER, RFC822)]])
def test_missing_meta_header(headers: list[tuple[str, bytes]] | None) -> None:
    with pytest.raises(KeyError, match=META_HEADER):
        meta_header(headers)
