"""The FETCH reader of services.imap.protocol, fed a server's bytes in chunks.

TLS and TCP cut a response anywhere: inside a line, inside the CRLF, inside a literal
(RFC 3501 4.3), just before or after one. Whatever the cut, the messages must come out
byte for byte, with the attributes that precede or follow their literal.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import aioimaplib
import pytest

from services.imap.fetch_response import FetchedMessage, parse_fetch, parse_response
from services.imap.protocol import _FetchCommand, _Protocol, _StreamedFetch

BODIES = [
    b"From: anna@example.cz\r\nSubject: Hello\r\n\r\nHi Bob, (a paren) {5}\r\n* 9 FETCH (\r\n",
    b"",  # a {0} literal: an empty message
    b"Subject: binary-ish\r\n\r\n" + bytes(range(256)) * 40,
    b"x",
]


def response(tag: str) -> bytes:
    """A UID FETCH response: attributes before the literal, after it, and both."""
    parts = [
        b'* 1 FETCH (UID 11 FLAGS (\\Seen) INTERNALDATE "23-Nov-2026 16:15:18 +0000" '
        b"RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n" % (len(BODIES[0]), len(BODIES[0]), BODIES[0]),
        b"* 2 FETCH (UID 12 BODY[] {0}\r\n FLAGS (\\Answered))\r\n",
        b"* 3 FETCH (BODY[] {%d}\r\n%s UID 13 FLAGS ())\r\n" % (len(BODIES[2]), BODIES[2]),
        # Another client changed flags meanwhile: an unsolicited FETCH without a body;
        # and delivered a message (RFC 3501 7.3.1: untagged EXISTS may come any time).
        b"* 2 FETCH (FLAGS (\\Seen \\Answered))\r\n",
        b"* 5 EXISTS\r\n",
        b"* 4 FETCH (UID 14 FLAGS (\\Flagged) BODY[] {1}\r\nx)\r\n",
        b"%s OK Fetch completed (0.001 + 0.000 secs).\r\n" % tag.encode(),
    ]
    return b"".join(parts)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def feed(loop: asyncio.AbstractEventLoop, pieces: Iterator[bytes]) -> aioimaplib.Response:
    protocol = _Protocol(loop, None)
    protocol.state = aioimaplib.SELECTED
    command = _FetchCommand("A1", "11:14", "(BODY.PEEK[])", prefix="UID", loop=loop)
    protocol.pending_sync_command = command
    for piece in pieces:
        protocol.data_received(piece)
    assert command._event.is_set(), "the tagged completion was not seen"
    assert protocol.pending_sync_command is None
    return command.response


def expected() -> list[FetchedMessage]:
    return [
        FetchedMessage(11, BODIES[0], len(BODIES[0]), ("\\Seen",), None),
        FetchedMessage(12, b"", 0, ("\\Answered",), None),
        FetchedMessage(13, BODIES[2], len(BODIES[2]), (), None),
        FetchedMessage(14, b"x", 1, ("\\Flagged",), None),
    ]


def summary(messages: list[FetchedMessage]) -> list[tuple[int, bytes, int, tuple[str, ...]]]:
    return [(m.uid, m.body, m.size, m.flags) for m in messages]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16, 61, 100, 1000, 4096, 10**6])
def test_messages_are_whole_whatever_the_chunk_size(
    loop: asyncio.AbstractEventLoop, size: int
) -> None:
    result = feed(loop, chunks(response("A1"), size))
    assert result.result == "OK"
    messages = parse_fetch(result.lines)
    assert summary(messages) == summary(expected())
    assert all(type(m.body) is bytes for m in messages)
    assert messages[0].internaldate is not None


def test_every_cut_of_the_response_gives_the_same_messages(
    loop: asyncio.AbstractEventLoop,
) -> None:
    data = response("A1")
    want = summary(expected())
    for cut in range(1, len(data)):
        result = feed(loop, iter([data[:cut], data[cut:]]))
        assert summary(parse_fetch(result.lines)) == want, f"cut at byte {cut}"


def test_a_literal_split_across_many_chunks_is_reassembled(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Cuts inside the large literal only: the reader must not confuse its CRLFs, its
    parentheses or its ``{5}`` with protocol syntax."""
    data = response("A1")
    start = data.index(BODIES[2])
    cuts = [0, start - 1, start, start + 1, start + 3000, start + len(BODIES[2]) - 1, len(data)]
    pieces = iter([data[a:b] for a, b in itertools.pairwise(cuts)])
    result = feed(loop, pieces)
    assert summary(parse_fetch(result.lines)) == summary(expected())


def feed_each(
    loop: asyncio.AbstractEventLoop, pieces: Iterator[bytes]
) -> tuple[list[FetchedMessage], list[int], aioimaplib.Response]:
    """As :func:`feed`, with a FETCH that hands over each response once complete: the
    messages handed over, how many pieces had been fed when each was, the response."""
    protocol = _Protocol(loop, None)
    protocol.state = aioimaplib.SELECTED
    got: list[FetchedMessage] = []
    when: list[int] = []
    fed = 0

    def each(parts: list[bytes]) -> None:
        message = parse_response(parts)
        if message is not None:
            got.append(message)
            when.append(fed)

    command = _StreamedFetch("A1", "11:14", "(BODY.PEEK[])", prefix="UID", loop=loop, each=each)
    protocol.pending_async_commands["FETCH"] = command  # FETCH runs as aioimaplib's async
    for piece in pieces:
        fed += 1
        protocol.data_received(piece)
    assert command._event.is_set(), "the tagged completion was not seen"
    return got, when, command.response


@pytest.mark.parametrize("size", [1, 7, 100, 4096, 10**6])
def test_each_message_is_handed_over_whole_and_not_kept(
    loop: asyncio.AbstractEventLoop, size: int
) -> None:
    got, _, result = feed_each(loop, chunks(response("A1"), size))
    assert result.result == "OK"
    assert summary(got) == summary(expected())
    assert all(type(m.body) is bytes for m in got)
    # Nothing of the messages stays in the response: a batch is not held twice.
    assert not any(isinstance(line, bytearray) for line in result.lines)
    assert parse_fetch(result.lines) == []


def test_every_cut_hands_over_the_same_messages(loop: asyncio.AbstractEventLoop) -> None:
    data = response("A1")
    want = summary(expected())
    for cut in range(1, len(data), 7):
        got, _, _ = feed_each(loop, iter([data[:cut], data[cut:]]))
        assert summary(got) == want, f"cut at byte {cut}"


def test_a_message_is_handed_over_as_soon_as_its_response_is_complete(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The first message is the caller's once its own ``)`` came, while the server is
    still sending the others: the fetcher publishes it without waiting for the batch."""
    data = response("A1")
    ends = [data.index(b")\r\n* 2 FETCH") + 3, data.index(b"* 4 FETCH"), len(data)]
    pieces = iter([data[a:b] for a, b in itertools.pairwise([0, *ends])])
    got, when, result = feed_each(loop, pieces)
    assert [m.uid for m in got] == [11, 12, 13, 14]
    assert when == [1, 2, 2, 3]  # UID 11 after the first piece, long before the completion
    assert result.result == "OK"
