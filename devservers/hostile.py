"""Malformed and hostile messages, as real mailboxes hold them (for tests and benchmarks).

Every entry is something seen in the wild: missing or repeated headers, encoded words
in legacy and unknown charsets, raw 8-bit headers, overlong lines, broken MIME, absurd
nesting. A stage may tag such a message or dead-letter it with a reason, never lose it.
"""

from __future__ import annotations

import base64


def _ew(charset: str, text: str, codec: str | None = None) -> str:
    """An RFC 2047 B-encoded word."""
    raw = text.encode(codec or charset)
    return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="


def _msg(headers: list[str], body: bytes = b"hello\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def hostile_messages(to: str) -> dict[str, bytes]:
    """Name -> raw message, all addressed to ``to`` where they have a To at all."""
    base = [
        f"To: {to}",
        "From: Sender <sender@example.net>",
        "Date: Mon, 2 Nov 2026 10:00:00 +0100",
    ]
    deep = b""
    for level in range(60):
        deep += (
            f"--b{level}\r\nContent-Type: multipart/mixed; boundary=b{level + 1}\r\n\r\n".encode()
        )
    msgs = {
        "no-headers": b"just a line of text, no header block at all\r\n",
        "headers-no-body": (
            "\r\n".join([*base, "Subject: no body", "Message-ID: <nb@x>"])
        ).encode(),
        "unknown-charset": _msg([*base, "Subject: =?x-unknown-9?Q?caf=E9?=", "Message-ID: <uc@x>"]),
        "iso-2022-jp": _msg(
            [*base, "Subject: " + _ew("ISO-2022-JP", "見積もりのお願い"), "Message-ID: <jp@x>"]
        ),
        "koi8-r": _msg(
            [*base, "Subject: " + _ew("KOI8-R", "Счёт на оплату"), "Message-ID: <ru@x>"]
        ),
        "windows-1250": _msg(
            [*base, "Subject: " + _ew("windows-1250", "Žluťoučký kůň"), "Message-ID: <cz@x>"]
        ),
        "iso-8859-2": _msg(
            [*base, "Subject: " + _ew("ISO-8859-2", "Zażółć gęślą jaźń"), "Message-ID: <pl@x>"]
        ),
        "raw-8bit-header": b"\r\n".join(
            [
                f"To: {to}".encode(),
                b"From: J\xfcrgen <j@example.de>",
                b"Subject: Gr\xfc\xdfe aus M\xfcnchen",
                b"Message-ID: <8bit@x>",
                b"",
                b"K\xf6rper\r\n",
            ]
        ),
        "repeated-headers": _msg(
            [
                *base,
                f"To: {to}",
                "Subject: first",
                "Subject: second",
                "From: other@example.org",
                "Message-ID: <rep@x>",
                "Message-ID: <rep2@x>",
            ]
        ),
        "overlong-lines": _msg(
            [*base, "Subject: " + "x" * 10_000, "Message-ID: <long@x>"], b"y" * 200_000 + b"\r\n"
        ),
        "broken-boundary": _msg(
            [
                *base,
                "Subject: broken",
                "Message-ID: <bb@x>",
                "Content-Type: multipart/mixed; boundary=zz",
            ],
            b"--zz\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
            b"--zz\r\nContent-Type: text/html\r\n\r\n<p>unclosed",
        ),
        "boundary-missing-param": _msg(
            [*base, "Subject: no boundary", "Message-ID: <nbp@x>", "Content-Type: multipart/mixed"],
            b"--whatever\r\n\r\ntext\r\n",
        ),
        "no-message-id": _msg([*base, "Subject: anonymous"]),
        "empty-message-id": _msg([*base, "Subject: empty id", "Message-ID: <>"]),
        "nul-bytes": _msg([*base, "Subject: nul", "Message-ID: <nul@x>"], b"a\x00b\x00c\r\n"),
        "bad-date": _msg(
            [
                f"To: {to}",
                "From: s@example.net",
                "Date: yesterday-ish",
                "Subject: when",
                "Message-ID: <date@x>",
            ]
        ),
        "garbage-header-line": _msg(
            [*base, "this line has no colon", "Subject: garbage", "Message-ID: <g@x>"]
        ),
        "deep-nesting": _msg(
            [
                *base,
                "Subject: deep",
                "Message-ID: <deep@x>",
                "Content-Type: multipart/mixed; boundary=b0",
            ],
            deep,
        ),
        "bad-base64-part": _msg(
            [
                *base,
                "Subject: bad b64",
                "Message-ID: <b64@x>",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: base64",
            ],
            b"!!!not base64 at all***\r\n",
        ),
    }
    return msgs
