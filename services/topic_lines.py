"""``mailsync topic``'s output: one JSON object per record, for people and for jq (pure).

    {"topic": "mailsync.activity-events", "partition": 3, "offset": 0,
     "timestamp": 1795167000123, "time": "2026-11-20T09:30:00.123Z",
     "key": "act-…", "headers": {}, "size": 412, "value": {"kind": "created", …}}

- ``key`` and every header value are text when they are UTF-8, else
  ``{"base64": "…"}``; ``key`` is null for a record without one.
- ``size`` is the value's length in bytes (null for a tombstone).
- A record carrying the ``mailsync-meta`` header (``rfc822+meta-header`` topics:
  raw-messages, tagged-messages, dead-letters) has ``meta``, that header parsed, and no
  ``value``: the value is a whole RFC 822 message (up to megabytes, any charset), which
  no terminal or jq wants on one line. ``size`` says how big it is; kcat prints it raw
  (``kcat -C -b … -t … -o OFFSET -p P -c 1 -f '%s'``). The header is not repeated
  under ``headers``.
- Any other record has ``value``: the parsed JSON (JSON topics), else the value as
  text or base64 as for keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from schemas.envelope import META_HEADER
from services.topic_reader import TopicRecord


def as_json(record: TopicRecord) -> dict[str, Any]:
    """The JSON object printed for ``record``."""
    line: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "time": _time(record.timestamp),
        "key": _text(record.key),
        "headers": {n: _text(v) for n, v in record.headers.items() if n != META_HEADER},
        "size": None if record.value is None else len(record.value),
    }
    if META_HEADER in record.headers:
        line["meta"] = _parsed(record.headers[META_HEADER])
    else:
        line["value"] = _parsed(record.value)
    return line


def _time(timestamp_ms: int) -> str | None:
    if timestamp_ms < 0:
        return None
    when = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(data: bytes | None) -> str | dict[str, str] | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _parsed(data: bytes | None) -> Any:
    """JSON when ``data`` is JSON, else as :func:`_text` gives it."""
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:  # UnicodeDecodeError included
        return _text(data)
