"""The ``mailsync`` command with bad input, as a user meets it: one line naming the
problem and a non-zero exit, never a traceback; and the everyday commands' output."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from typing import Any

import pytest

from services.text_width import width
from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def mailsync(
    env: Env, *args: str, stdin: str = "", **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        input=stdin,
        env=env.environ(**extra),
        capture_output=True,
        text=True,
        timeout=90,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_version_and_help(env: Env) -> None:
    version = mailsync(env, "--version")
    assert version.returncode == 0 and version.stdout.startswith("mailsync 0.")
    helped = mailsync(env, "--help")
    assert "mailsync run" in helped.stdout and "``" not in helped.stdout


def test_bad_database_and_broker_are_one_line(env: Env) -> None:
    malformed = mailsync(env, "activities", MONGO_URI="mongodb://user:pw@")
    one_line_error(malformed, 2, "MAILSYNC_MONGO_URI")
    assert "pw" not in malformed.stderr.replace("usable", "")
    # The URI's own timeout is honoured (not replaced by a default of 10 s).
    started = time.monotonic()
    nowhere = mailsync(
        env, "accounts", "list", MONGO_URI="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300"
    )
    one_line_error(nowhere, 1, "MongoDB did not answer", "127.0.0.1:9")
    assert time.monotonic() - started < 8
    broker = mailsync(env, "topic", "mailsync.accounts", KAFKA_BOOTSTRAP="127.0.0.1:9")
    one_line_error(broker, 1, "127.0.0.1:9")
    unknown_topic = mailsync(env, "topic", "no-such-topic")
    one_line_error(unknown_topic, 1, "no-such-topic")
    unknown_account = mailsync(env, "accounts", "show", "nobody")
    one_line_error(unknown_account, 1, "nobody")


async def _activity(n: int, subject: str, sender: str, account: str) -> dict[str, Any]:
    return {
        "_id": f"act-{n}",
        "date": dt.datetime(2026, 3, 1, 9, n, tzinfo=dt.UTC),
        "direction": "inbound",
        "from": {"address": sender},
        "subject": subject,
        "account_ids": [account],
        "sightings": [
            {
                "account_id": account,
                "folder": "INBOX",
                "uidvalidity": 1,
                "uid": n,
                "duplicate": False,
            }
        ],
    }


async def test_activities_table_aligns_wide_characters(env: Env) -> None:
    async with env.mongo() as db:
        await db["account_states"].insert_one({"_id": "acc-1"})
        await db["activities"].insert_many(
            [
                await _activity(1, "Quarterly report", "ann@example.com", "acc-1"),
                await _activity(2, "会議の議事録について", "田中@example.jp", "acc-1"),
            ]
        )
    shown = mailsync(env, "activities", "--account", "acc-1")
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()
    assert header.split()[:3] == ["DATE", "(UTC)", "DIRECTION"]
    assert len(rows) == 2
    # The sightings column starts at the same terminal column on every line.
    starts = {width(line[: line.index("[acc-1")]) for line in rows}
    assert starts == {width(header[: header.index("SIGHTINGS")])}
    unknown = mailsync(env, "activities", "--account", "nobody")
    one_line_error(unknown, 1, "nobody")


async def test_erase_asks_first_and_dry_run_changes_nothing(env: Env) -> None:
    async with env.mongo() as db:
        await db["activities"].insert_one(await _activity(3, "Hi", "bo@example.com", "acc-2"))
    dry = mailsync(env, "erase", "--account", "acc-2", "--dry-run")
    assert dry.returncode == 0 and "1 activities" in dry.stdout and "dry run" in dry.stdout
    # No terminal to ask on, and no --yes: refused, nothing erased.
    refused = mailsync(env, "erase", "--account", "acc-2")
    one_line_error(refused, 2, "--yes")
    async with env.mongo() as db:
        assert await db["activities"].count_documents({}) == 1
    done = mailsync(env, "erase", "--account", "acc-2", "--yes")
    assert done.returncode == 0 and "1 activities erased" in done.stdout, done.stderr
    async with env.mongo() as db:
        assert await db["activities"].count_documents({}) == 0
