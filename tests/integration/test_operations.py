"""What an operator sees: /metrics, /livez and /readyz of a real process, and its JSON logs.

The whole pipeline runs as one process would (``run_process``: services, lag monitor,
health server) against the session's real servers; real mail goes through it and the
endpoints are read over HTTP, as Prometheus and the kubelet read them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devservers.corpus import build
from schemas.account import EncryptedSecret
from services.cli import SERVICES
from services.common import metrics
from services.common.health import HealthServer
from services.common.logs import JsonFormatter
from services.common.process import run_process
from services.common.settings import CommonSettings
from tests.fixtures.pipeline import Env, eventually
from tests.integration.test_end_to_end import smtp_send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CUSTOMER = ("Ingrid Løvås", "ingrid@fjordhandel.no")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, base: str) -> Samples:
    """Every sample of /metrics: (name, labels) -> value, parsed as Prometheus would."""
    async with http.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The process's log lines, formatted as ``MAILSYNC_LOG_FORMAT=json`` prints them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_metrics_health_and_logs_of_a_running_pipeline(
    env: Env, json_log: io.StringIO
) -> None:
    good_user, bad_user = env.mail_user("ops"), env.mail_user("opsbad")
    suffix = env.overrides["mongo_database"]
    good = env.account(good_user, account_id=f"ops-{suffix}")
    bad = env.account(
        bad_user,
        account_id=f"opsbad-{suffix}",
        secret=EncryptedSecret(ciphertext=env.box.encrypt("not-the-password-7f3k")),
    )
    await env.publish_accounts(good, bad)
    now = dt.datetime.now(dt.UTC)
    mail = build(random.Random(8), CUSTOMER, [("Ops", good_user.address)], date=now)
    smtp_send(env, CUSTOMER[1], [good_user.address], mail.message)

    # Per-account series on, as a small installation has them: the account's own.
    overrides = {**env.overrides, "metrics_per_account": True}
    settings = CommonSettings(**overrides)
    services = [make(overrides) for make in SERVICES.values()]
    stop = asyncio.Event()
    listening: asyncio.Future[HealthServer] = asyncio.get_running_loop().create_future()
    process = asyncio.create_task(
        run_process(services, settings, stop, on_listening=listening.set_result)
    )
    try:
        health = await asyncio.wait_for(listening, 30)
        base = f"http://127.0.0.1:{health.port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            # While the services start (joining consumer groups takes seconds): alive,
            # not ready, and readiness says why.
            async with http.get(f"{base}/livez") as resp:
                assert resp.status == 200
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 503
                assert "not started" in " ".join((await resp.json())["problems"])
            before = await scrape(http, base)
            ingest_before = value(before, "mailsync_ingest_latency_seconds_count") or 0.0

            async def written() -> Samples | None:
                assert not process.done(), process
                samples = await scrape(http, base)
                labels = {"account": good.account_id, "folder": "INBOX"}
                got = value(samples, "mailsync_sightings_written_total", **labels)
                return samples if got == 1.0 else None

            samples = await eventually(written, timeout=120, what="the activity written")
            labels = {"account": good.account_id, "folder": "INBOX"}
            assert value(samples, "mailsync_messages_fetched_total", **labels) == 1.0
            assert value(samples, "mailsync_messages_published_total", **labels) == 1.0
            # Delivered seconds ago: one more observation, in a bucket under ten minutes.
            ingest = value(samples, "mailsync_ingest_latency_seconds_count")
            assert ingest == ingest_before + 1
            assert (value(samples, "mailsync_pipeline_latency_seconds_count") or 0) >= 1

            async def statuses() -> Samples | None:
                samples = await scrape(http, base)
                bad_failed = value(
                    samples, "mailsync_account_status", account=bad.account_id, status="auth_failed"
                )
                good_idle = value(
                    samples, "mailsync_account_status", account=good.account_id, status="idle"
                )
                return samples if bad_failed == 1.0 and good_idle == 1.0 else None

            samples = await eventually(statuses, timeout=60, what="auth_failed and idle")
            assert (value(samples, "mailsync_accounts", state="auth_failed") or 0) >= 1
            assert (value(samples, "mailsync_accounts", state="idle") or 0) >= 1
            # The good account's session is logged in (the bad one never got that far).
            assert (value(samples, "mailsync_imap_connections") or 0) >= 1
            assert any(
                name == "mailsync_errors_total" and ("component", "fetcher") in labels_
                for name, labels_ in samples
            )
            # Alerts read these from the first scrape on: at 0, not absent.
            for stage in ("dedup.tag", "activity_writer", "sender"):
                assert value(samples, "mailsync_dead_letters_total", stage=stage) is not None
            assert not [name for name, _ in samples if name.endswith("_created")]
            assert not [n for n, labels_ in samples if any(k == "service" for k, _ in labels_)]

            # Every group's lag is reported per topic.
            async def lag() -> Samples | None:
                samples = await scrape(http, base)
                topic = env.settings.topic_prefix + "mailsync.tagged-messages"
                found = value(
                    samples,
                    "mailsync_consumer_lag",
                    topic=topic,
                    group=env.overrides["writer_group"],
                )
                return samples if found is not None else None

            samples = await eventually(lag, timeout=60, what="the writer's consumer lag")
            assert (
                value(
                    samples,
                    "mailsync_consumer_lag",
                    topic=topic_of(env, "raw-messages"),
                    group=f"{env.settings.topic_prefix}mailsync-dedup",
                )
                is not None
            )

            async def ready() -> dict[str, Any] | None:
                async with http.get(f"{base}/readyz") as resp:
                    body = await resp.json()
                    return body if resp.status == 200 else None

            body = await eventually(ready, timeout=30, what="/readyz 200")
            assert body["dependencies"] == {"kafka": "ok", "mongodb": "ok"}
            assert set(body["services"]) == {"fetcher", "dedup", "activity-writer", "sender"}
            assert value(await scrape(http, base), "mailsync_ready") == 1.0
    finally:
        stop.set()
        await asyncio.wait_for(process, 60)
        metrics.configure(per_account=False)  # the default, for the tests after this one

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    refused = [
        line
        for line in lines
        if line["account_id"] == bad.account_id and "authentication failed" in line["message"]
    ]
    assert refused, [line for line in lines if line["level"] == "WARNING"]
    assert refused[0]["level"] == "WARNING" and refused[0]["request_id"] is None
    text = json_log.getvalue()
    for secret in (
        good_user.password,
        "not-the-password-7f3k",
        env.overrides["secret_key"].get_secret_value(),
    ):
        assert secret not in text


async def test_no_series_names_an_account_by_default(env: Env) -> None:
    """MAILSYNC_METRICS_PER_ACCOUNT unset: after a sync, /metrics counts the message and
    the account's state, and no series has an ``account`` label."""
    user = env.mail_user("opsoff")
    account = env.account(user, account_id=f"opsoff-{env.overrides['mongo_database']}")
    await env.publish_accounts(account)
    now = dt.datetime.now(dt.UTC)
    mail = build(random.Random(9), CUSTOMER, [("Ops", user.address)], date=now)
    smtp_send(env, CUSTOMER[1], [user.address], mail.message)

    overrides = env.overrides
    settings = CommonSettings(**overrides)
    assert not settings.metrics_per_account
    ingest = ("fetcher", "dedup", "activity-writer")
    services = [SERVICES[name](overrides) for name in ingest]
    stop = asyncio.Event()
    listening: asyncio.Future[HealthServer] = asyncio.get_running_loop().create_future()
    process = asyncio.create_task(
        run_process(services, settings, stop, on_listening=listening.set_result)
    )
    try:
        health = await asyncio.wait_for(listening, 30)
        base = f"http://127.0.0.1:{health.port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            # Other tests of this process may have counted before: from here on.
            before = await scrape(http, base)
            written_before = value(before, "mailsync_sightings_written_total", folder="INBOX")

            async def synced() -> Samples | None:
                assert not process.done(), process
                samples = await scrape(http, base)
                written = value(samples, "mailsync_sightings_written_total", folder="INBOX")
                idle = value(samples, "mailsync_accounts", state="idle") or 0
                if written == (written_before or 0) + 1 and idle >= 1:
                    return samples
                return None

            samples = await eventually(synced, timeout=120, what="the activity written")
            assert (value(samples, "mailsync_messages_fetched_total", folder="INBOX") or 0) >= 1
            assert (value(samples, "mailsync_activities_created_total") or 0) >= 1
            named = [(n, dict(labels)) for n, labels in samples if "account" in dict(labels)]
            assert named == []
    finally:
        stop.set()
        await asyncio.wait_for(process, 60)


def topic_of(env: Env, name: str) -> str:
    return f"{env.settings.topic_prefix}mailsync.{name}"
