"""``mailsync topic``: where each partition is read from, and the line printed per record."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import cast

import pytest

from schemas.envelope import encode_headers
from schemas.send_request import SendResult, SendState
from services.cli import _print_where
from services.common.health import HealthServer
from services.common.settings import CommonSettings
from services.topic_lines import as_json
from services.topic_reader import Start, TopicRecord, start_offset
from tests.unit.test_envelope import META

MESSAGE = "Subject: Nabídka\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDobrý den\r\n"
MESSAGE_BYTES = MESSAGE.encode()


@pytest.mark.parametrize(
    ("start", "first", "end", "expected"),
    [
        ("beginning", 0, 5, 0),
        ("beginning", 3, 5, 3),  # older records deleted by retention
        ("end", 3, 5, 5),
        (4, 0, 5, 4),
        (1, 3, 5, 3),  # before the first record left: from the first
        (9, 0, 5, 5),  # past the end: nothing now, new records with --follow
        (-2, 0, 5, 3),  # the last two
        (-9, 3, 5, 3),
        (-1, 0, 0, 0),  # an empty partition
    ],
)
def test_start_offset(start: Start, first: int, end: int, expected: int) -> None:
    assert start_offset(start, first, end) == expected


def test_a_json_record_shows_its_value_parsed() -> None:
    result = SendResult(
        request_id="request-1",
        account_id="info",
        state=SendState.SENT,
        message_id="request-1@example.com",
        smtp_reply="250 2.0.0 Ok: queued",
        at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
    )
    value = result.model_dump_json().encode()
    record = TopicRecord("p.mailsync.send-results", 2, 7, 1795167000123, b"request-1", {}, value)
    assert as_json(record) == {
        "topic": "p.mailsync.send-results",
        "partition": 2,
        "offset": 7,
        "timestamp": 1795167000123,
        "time": "2026-11-20T09:30:00.123Z",
        "key": "request-1",
        "headers": {},
        "size": len(value),
        "value": json.loads(value),
    }


def test_a_message_record_shows_its_meta_and_size_not_the_message() -> None:
    headers = dict(encode_headers(META, in_blob=False))
    record = TopicRecord(
        "mailsync.raw-messages", 0, 0, 1795167000123, b"jan", headers, MESSAGE_BYTES
    )
    line = as_json(record)
    assert line["meta"] == json.loads(META.model_dump_json(by_alias=True))
    assert line["meta"]["location"]["folder"] == "Koš"
    assert line["headers"] == {"content-type": "message/rfc822"}
    assert line["size"] == len(MESSAGE_BYTES)
    assert "value" not in line
    assert "Dobrý" not in json.dumps(line, ensure_ascii=False)


def test_bytes_that_are_not_text_are_base64_and_a_tombstone_is_null() -> None:
    record = TopicRecord("mailsync.accounts", 0, 1, -1, b"\xff\xfe", {"trace": b"\x00\xff"}, None)
    line = as_json(record)
    assert line["key"] == {"base64": "//4="}
    assert line["headers"] == {"trace": {"base64": "AP8="}}
    assert (line["value"], line["size"], line["time"]) == (None, None, None)
    broken = TopicRecord("mailsync.accounts", 0, 2, 0, None, {}, b"{not json")
    assert as_json(broken)["value"] == "{not json"


def test_mailsync_run_prints_how_to_read_a_topic_with_kcat(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = CommonSettings(kafka_bootstrap="127.0.0.1:39092", topic_prefix="dev.")
    _print_where(
        settings,
        cast(HealthServer, SimpleNamespace(host="127.0.0.1", port=9100)),
        "http://x/status",
        key_made=False,
    )
    printed = capsys.readouterr().out
    assert "Kafka bootstrap : 127.0.0.1:39092\n" in printed
    assert (
        "kcat -C -b 127.0.0.1:39092 -t dev.mailsync.activity-events -o beginning -e -J\n" in printed
    )
