"""``mailsync topic``, run as a user runs it, against the real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.common import Address
from schemas.send_request import SendRequest
from schemas.topics import SEND_REQUESTS
from services.common.kafka import ensure_topics, producer
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

MAILSYNC = str(Path(sys.executable).with_name("mailsync"))
TOPIC = SEND_REQUESTS.name


def send_request(n: int) -> SendRequest:
    return SendRequest(
        request_id=f"request-{n}",
        account_id="info",
        sender=Address(address="info@example.com"),
        requested_by="petr",
        to=(Address(name="Zuzana Černá", address="zuzana@kvetinarstvi-cerna.cz"),),
        subject=f"Nabídka č. {n}",
        text_body="Dobrý den",
        requested_at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
    )


async def produce(env: Env, placed: list[tuple[int, int]]) -> None:
    """Send request ``n`` to partition ``p`` for each (n, p), in that order."""
    await ensure_topics(env.settings, [SEND_REQUESTS])
    prod = producer(env.settings, client_id="test-crm")
    await prod.start()
    try:
        for n, partition in placed:
            await prod.send_and_wait(
                env.settings.topic(SEND_REQUESTS),
                send_request(n).model_dump_json().encode(),
                key=b"info",
                partition=partition,
            )
    finally:
        await prod.stop()


async def start(env: Env, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        MAILSYNC,
        "topic",
        *args,
        env=env.environ(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run(env: Env, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Exit status, the JSON lines printed, and stderr of ``mailsync topic ARGS``."""
    proc = await start(env, *args)
    # A bound against hanging, not a speed check: six of these start side by side below,
    # and a loaded 2-core machine takes seconds to start each Python process.
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, [json.loads(line) for line in out.splitlines()], err.decode()


def places(lines: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return sorted((line["partition"], line["offset"]) for line in lines)


async def test_prints_each_record_as_a_json_line_and_stops_at_the_end(env: Env) -> None:
    # Three requests on partition 0, two on partition 5 (of 8).
    await produce(env, [(0, 0), (1, 5), (2, 0), (3, 5), (4, 0)])
    prefixed = env.settings.topic(SEND_REQUESTS)

    status, lines, err = await run(env, TOPIC)
    assert status == 0, err
    assert places(lines) == [(0, 0), (0, 1), (0, 2), (5, 0), (5, 1)]
    by_place = {(line["partition"], line["offset"]): line for line in lines}
    first = by_place[(0, 0)]
    assert first["topic"] == prefixed
    assert first["key"] == "info" and first["headers"] == {}
    assert first["value"] == json.loads(send_request(0).model_dump_json())
    assert first["size"] == len(send_request(0).model_dump_json().encode())
    assert first["time"].endswith("Z") and first["timestamp"] > 0
    # Within a partition, in offset order: requests 0, 2, 4 on partition 0.
    assert [line["value"]["request_id"] for line in lines if line["partition"] == 0] == [
        "request-0",
        "request-2",
        "request-4",
    ]
    # The name as Kafka knows it (with MAILSYNC_TOPIC_PREFIX) works as well; and the
    # options (independent runs, side by side).
    got = await asyncio.gather(
        run(env, prefixed, "--from-beginning"),
        run(env, TOPIC, "--max-messages", "2"),
        run(env, TOPIC, "--partition", "5"),
        run(env, TOPIC, "--offset", "1"),
        run(env, TOPIC, "--offset", "-1", "--partition", "0"),
        run(env, TOPIC, "--partition", "3"),  # an empty partition ends at once too
    )
    assert [status for status, _, _ in got] == [0] * 6, [err for _, _, err in got]
    same, two, fifth, from_one, last, empty = (lines for _, lines, _ in got)
    assert places(same) == places(lines)
    assert len(two) == 2
    assert places(fifth) == [(5, 0), (5, 1)]
    assert places(from_one) == [(0, 1), (0, 2), (5, 1)]
    assert places(last) == [(0, 2)]
    assert empty == []


async def test_an_unknown_topic_or_partition_is_an_error(env: Env) -> None:
    await produce(env, [(0, 0)])
    status, lines, err = await run(env, "mailsync.no-such-topic")
    assert (status, lines) == (1, [])
    assert len(err.splitlines()) == 1 and "mailsync.no-such-topic" in err, err
    status, lines, err = await run(env, TOPIC, "--partition", "8")
    assert (status, lines) == (1, [])
    assert len(err.splitlines()) == 1 and "no partition 8" in err, err


async def test_follow_prints_new_records_as_they_come_until_stopped(env: Env) -> None:
    await produce(env, [(0, 0), (1, 1)])
    proc = await start(env, TOPIC, "--follow")
    assert proc.stdout is not None and proc.stderr is not None
    try:
        old = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)) for _ in range(2)]
        assert places(old) == [(0, 0), (1, 0)]
        # At the end of what was there, it waits rather than exiting.
        await asyncio.sleep(1.0)
        assert proc.returncode is None
        await produce(env, [(2, 1)])
        new = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert (new["partition"], new["offset"], new["value"]["request_id"]) == (1, 1, "request-2")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
    # Ctrl+C ends it cleanly: status 0, nothing on stderr.
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert await proc.stdout.read() == b""
    assert await proc.stderr.read() == b""
