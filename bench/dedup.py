"""Dedup alone: messages/s through one dedup worker, from a prefilled raw-messages topic.

What is measured, and why
-------------------------
The issue's target is at least 2,000 messages/s of realistic mail through one dedup
worker. The pipeline benchmark cannot show that figure: there the fetcher feeds dedup
(at most as fast as it fetches) and all three services share one event loop. Here dedup
runs alone, on real servers on loopback (Tansu, SecantusDB with ``--sync-on-commit``),
with production settings, against a topic that already holds all the work:

- **Prefill** (not in the figure, reported on its own): N messages from
  ``bench.pipeline.build_corpus`` (the pipeline benchmark's corpus, same seed) are
  published to raw-messages exactly as the fetcher publishes them:
  ``services.fetcher.publish.Publisher`` with the services' producer
  (``acks=all``) and the GridFS blob store, in batches of the fetcher's batch size,
  one ``FetchedMessage`` per message (UIDs 1..N in INBOX, no flags, INTERNALDATE now).
  The account record of the corpus's recipient is published first, so dedup knows it.
- **Dedup**: ``services.cli.SERVICES["dedup"]`` (faust: agent ``tag`` reads
  raw-messages and repartitions to dedup-by-fingerprint, agent ``dedup`` keeps the
  sightings table and writes tagged-messages), run by ``run_services`` as
  ``mailsync dedup`` runs it. The clock starts when its ``start()`` returned and stops
  when tagged-messages holds N records, counted by *reading* the topic with one
  consumer without a group that follows every partition (Tansu's ListOffsets answers
  the last batch's base offset + 1, not the high watermark, so end offsets under-report).
  The time to the first tagged record (faust's group join and assignment; Tansu holds
  the first JoinGroup for a few seconds) is reported, and so is the rate after it.
- **CPU seconds** of this process (the dedup worker, plus the counting consumer, whose
  own cost is measured afterwards by reading the topic again) and of each server during
  the window. One worker is one event loop: it can use at most one core.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from bench.pipeline import (
    ACCOUNT_ID,
    MB,
    USER,
    Corpus,
    TimedService,
    build_corpus,
    rate,
    server_cpu_seconds,
    steady_rate,
)
from devservers import KafkaBroker, SecantusServer
from schemas.account import AccountRecord, EncryptedSecret, Endpoint, PersonalOwnership, Security
from schemas.common import FolderRole
from schemas.topics import DEAD_LETTERS, RAW_MESSAGES, TAGGED_MESSAGES, TOPICS, TopicSpec
from services.accounts import publish_account
from services.cli import SERVICES
from services.common.blobs import BlobStore
from services.common.kafka import ensure_topics, producer
from services.common.lifecycle import Service, run_services
from services.common.logs import setup_logging
from services.common.mongo import database, mongo_client
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings
from services.fetcher.fetch_response import FetchedMessage
from services.fetcher.publish import Publisher
from services.fetcher.settings import FetcherSettings

# What is timed: a service built from the run's settings (``services.cli.SERVICES``).
MakeService = Callable[[dict[str, Any]], Service]

HEADING = "## Dedup"
TARGET_MPS = 2000  # the target for one dedup worker
FOLDER = "INBOX"
UIDVALIDITY = 1
POLL_MS = 100
PROGRESS_EVERY_S = 5.0
SHUTDOWN_TIMEOUT_S = 15.0


def log(text: str) -> None:
    print(f"[bench.dedup] {text}", flush=True)


# -- set-up: account, topics, prefill -----------------------------------------------------


def _overrides(kafka: KafkaBroker, secantus: SecantusServer, data: Path) -> dict[str, Any]:
    """As the pipeline benchmark's, without the IMAP server: production defaults else."""
    return {
        "kafka_bootstrap": kafka.bootstrap,
        "mongo_uri": SecretStr(secantus.uri),
        "mongo_database": "bench",
        "secret_key": SecretStr(SecretBox.new_key()),
        "topic_prefix": "bench.",
        "data_dir": data,
        "log_level": "WARNING",
    }


async def _publish_account(settings: CommonSettings) -> None:
    """The corpus recipient's account (the IMAP endpoint is never used: no fetcher runs)."""
    box = SecretBox(settings.secret_key)
    record = AccountRecord(
        account_id=ACCOUNT_ID,
        address=USER.address,
        display_name="Bench Účet",
        ownership=PersonalOwnership(owner="owner-bench"),
        imap=Endpoint(host="127.0.0.1", port=993, security=Security.TLS, username=USER.address),
        secret=EncryptedSecret(ciphertext=box.encrypt(USER.password)),
        updated_at=dt.datetime.now(dt.UTC),
    )
    prod = producer(settings, client_id="bench")
    await prod.start()
    try:
        await publish_account(prod, settings, record)
    finally:
        await prod.stop()


@dataclass
class Prefill:
    seconds: float = 0.0
    began_at: float = 0.0  # time.time() when the first batch was published
    records: int = 0  # counted by reading the topic back
    blobs: int = 0  # messages above the inline limit (record value empty, body in GridFS)


async def prefill(
    overrides: dict[str, Any], corpus: Corpus, before: Callable[[], None] = lambda: None
) -> Prefill:
    """raw-messages with every corpus message, as the fetcher publishes one INBOX.

    ``before`` runs once connected, just before the first batch (bench.fetch_bound)."""
    s = FetcherSettings(**overrides)
    out = Prefill(blobs=sum(1 for m in corpus.messages if len(m) > s.inline_limit_bytes))
    mongo = mongo_client(s, app_name="bench-prefill")
    prod = producer(s, client_id="bench-prefill")
    await prod.start()
    try:
        publisher = Publisher(
            prod, s.topic(RAW_MESSAGES), BlobStore(database(mongo, s)), s.inline_limit_bytes
        )
        now = dt.datetime.now(dt.UTC)
        fetched = [
            FetchedMessage(uid=i, body=body, size=len(body), flags=(), internaldate=now)
            for i, body in enumerate(corpus.messages, 1)
        ]
        before()
        began, out.began_at = time.perf_counter(), time.time()
        step = s.fetcher_batch_size
        for i in range(0, len(fetched), step):
            await publisher.publish(
                ACCOUNT_ID, FOLDER, FolderRole.INBOX, UIDVALIDITY, fetched[i : i + step]
            )
        out.seconds = time.perf_counter() - began
    finally:
        await prod.stop()
        await mongo.close()
    return out


# -- counting a topic by reading it -------------------------------------------------------


class Counter:
    """One consumer without a group on every partition of a topic, counting what it reads."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_bytes=64 * MB
        )
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.count = 0
        self.keys: set[bytes | None] = set()

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_beginning(*self._tps)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_ms: int = POLL_MS) -> int:
        got = 0
        for records in (await self._consumer.getmany(timeout_ms=timeout_ms)).values():
            got += len(records)
            self.keys.update(r.key for r in records)
        self.count += got
        return got

    async def drain(self, idle_s: float = 2.0) -> int:
        """Read on until ``idle_s`` brings nothing; return the total count."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            if await self.poll(200):
                quiet_since = time.monotonic()
        return self.count


async def count_topic(overrides: dict[str, Any], spec: TopicSpec) -> tuple[int, int, float]:
    """(records, distinct keys, CPU seconds this process spent reading them)."""
    s = CommonSettings(**overrides)
    counter = Counter(s.require_kafka(), s.topic(spec), spec.partitions)
    await counter.start()
    try:
        cpu = time.process_time()
        total = await counter.drain()
        return total, len(counter.keys), time.process_time() - cpu
    finally:
        await counter.stop()


# -- the measured run ---------------------------------------------------------------------


@dataclass
class DedupRun:
    """Times in seconds from ``started`` (dedup's ``start()`` returned)."""

    expected: int
    startup_s: float = 0.0
    first_s: float | None = None
    at_first: int = 0
    done_s: float | None = None
    tagged_final: int = 0
    distinct_keys: int = 0
    dead_letters: int = 0
    window_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    counter_cpu_s: float | None = None  # reading the whole topic once, measured afterwards
    timed_out: bool = False
    error: str | None = None


async def measure_dedup(
    overrides: dict[str, Any], expected: int, deadline: float, make: MakeService | None = None
) -> DedupRun:
    """Time ``make`` (the real dedup service unless given) through the prefilled topic."""
    result = DedupRun(expected)
    s = CommonSettings(**overrides)
    counter = Counter(s.require_kafka(), s.topic(TAGGED_MESSAGES), TAGGED_MESSAGES.partitions)
    await counter.start()  # positioned before dedup starts: no set-up in the window
    marks: dict[str, tuple[float, float]] = {}
    service = TimedService((make or SERVICES["dedup"])(dict(overrides)), marks)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_services([service], stop, SHUTDOWN_TIMEOUT_S))
    try:
        while not marks and not runner.done():
            if time.monotonic() > deadline:
                result.timed_out = True
                return result
            await asyncio.sleep(0.01)
        if runner.done():
            runner.result()
            raise RuntimeError("dedup stopped before it started")
        began, started = marks["dedup"]
        result.startup_s = started - began
        cpu_before, proc_before = server_cpu_seconds(), time.process_time()
        log(f"dedup started in {result.startup_s:.1f}s (pid {os.getpid()}); measuring")
        next_progress = started + PROGRESS_EVERY_S
        while counter.count < expected:
            if runner.done():
                runner.result()
                raise RuntimeError("dedup stopped unexpectedly")
            got = await counter.poll()
            now = time.monotonic()
            if got and result.first_s is None:
                result.first_s, result.at_first = now - started, counter.count
            if now >= next_progress:
                log(f"t={now - started:6.1f}s  tagged {counter.count}/{expected}")
                next_progress += PROGRESS_EVERY_S
            if now > deadline:
                result.timed_out = True
                log(f"timed out at t={now - started:.1f}s: tagged {counter.count}")
                break
        else:
            result.done_s = time.monotonic() - started
        result.window_s = time.monotonic() - started
        cpu_after = server_cpu_seconds()
        result.cpu_s["bench process (dedup worker + counting consumer)"] = (
            time.process_time() - proc_before
        )
        for name, seconds in cpu_after.items():
            result.cpu_s[name] = seconds - cpu_before.get(name, 0.0)
        log(f"tagged {counter.count} records in {result.window_s:.2f}s")
        result.tagged_final = await counter.drain()
        result.distinct_keys = len(counter.keys)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log(f"dedup failed: {result.error}")
    finally:
        stop.set()
        try:
            await asyncio.wait_for(runner, 60)
        except Exception as exc:
            result.error = result.error or f"{type(exc).__name__}: {exc}"
        await counter.stop()
    if result.error is None:
        _, _, result.counter_cpu_s = await count_topic(overrides, TAGGED_MESSAGES)
        result.dead_letters, _, _ = await count_topic(overrides, DEAD_LETTERS)
    return result


# -- one run, and its report --------------------------------------------------------------


@dataclass
class Report:
    corpus: Corpus
    prefill: Prefill | None = None
    raw_records: int = 0
    run: DedupRun | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        r = self.run
        return r is not None and r.done_s is not None and r.error is None


async def _bench(
    overrides: dict[str, Any],
    corpus: Corpus,
    deadline: float,
    report: Report,
    make: MakeService | None,
) -> None:
    settings = CommonSettings(**overrides)
    await ensure_topics(settings, TOPICS)
    await _publish_account(settings)
    report.prefill = await prefill(overrides, corpus)
    report.raw_records, _, _ = await count_topic(overrides, RAW_MESSAGES)
    p = report.prefill
    log(
        f"prefilled raw-messages in {p.seconds:.1f}s ({len(corpus.messages) / p.seconds:.0f} "
        f"msgs/s; not part of the figure): the topic holds {report.raw_records} records"
    )
    if report.raw_records != len(corpus.messages):
        raise RuntimeError(
            f"raw-messages holds {report.raw_records}, expected {len(corpus.messages)}"
        )
    log("starting dedup")
    before = os.getloadavg()
    report.run = await measure_dedup(overrides, len(corpus.messages), deadline, make)
    after = os.getloadavg()
    report.notes.append(
        f"Load average (1 min) {before[0]:.2f} before dedup, {after[0]:.2f} after "
        f"(on {len(os.sched_getaffinity(0))} CPUs; anything else running skews the figures)."
    )


def run(messages: int, seed: int, timeout_s: float, make: MakeService | None = None) -> Report:
    """Prefill, then time ``make`` (default: the dedup service) on fresh servers."""
    setup_logging("WARNING")
    deadline = time.monotonic() + timeout_s
    log(f"building {messages} messages (seed {seed})")
    corpus = build_corpus(messages, seed)
    report = Report(corpus)
    log(
        f"built in {corpus.build_s:.1f}s: {corpus.total_bytes / MB:.1f} MB, "
        f"avg {corpus.total_bytes / messages / 1000:.1f} KB, {corpus.with_attachment} attachments"
    )
    with tempfile.TemporaryDirectory(prefix="mailsync-bench-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        with (
            KafkaBroker(work) as kafka,
            SecantusServer(work / "secantus" / "data") as secantus,  # durable, as production
        ):
            log(f"servers up in {time.perf_counter() - began:.1f}s")
            overrides = _overrides(kafka, secantus, work / "data")
            try:
                asyncio.run(_bench(overrides, corpus, deadline, report, make))
            except Exception as exc:
                report.notes.append(f"set-up failed: {type(exc).__name__}: {exc}")
                log(f"set-up failed: {type(exc).__name__}: {exc}")
    return report


def render(report: Report) -> str:
    c = report.corpus
    n = len(c.messages)
    total = c.total_bytes
    r = report.run
    lines: list[str] = []
    if not report.complete:
        why = "timed out" if r is not None and r.timed_out else (r.error if r else "not run")
        lines += [f"**INCOMPLETE RUN ({why})**: the figures below are what it had.", ""]
    lines += [
        f"Input: raw-messages prefilled with {n} messages from `devservers.corpus.build` "
        f"(the pipeline benchmark's corpus: {c.with_attachment} = {c.with_attachment / n:.0%} "
        f"with a PDF attachment), {total / MB:.1f} MB in all, {total / n / 1000:.1f} KB on "
        "average, published as the fetcher publishes them (one account, so one partition). "
        "One dedup worker (`mailsync dedup`: faust agents `tag` and `dedup`), production "
        f"settings. Target: {TARGET_MPS:,} msgs/s.",
        "",
        "| Stage | Seconds | Messages/s | MB/s | Notes |",
        "|---|---:|---:|---:|---|",
    ]
    if r is not None:
        sec, mps, mbs = rate(n, total, r.done_s)
        first = f"{r.first_s:.2f}s" if r.first_s is not None else "—"
        lines.append(
            f"| **Dedup** (raw-messages → tagged-messages) | {sec} | **{mps}** | **{mbs}** | "
            f"from `start()` returned until tagged-messages holds {n} records; "
            f"first tagged record read at {first} |"
        )
        steady = steady_rate(n, total, r.first_s, r.at_first, r.done_s)
        if steady is not None:
            sec, mps, mbs = steady
            lines.append(
                f"| Dedup after the first tagged record | {sec} | {mps} | {mbs} | steady state "
                f"(without faust's group join); {r.at_first} read in the first poll |"
            )
    p = report.prefill
    lines += [
        "",
        "| Not in the figures | Seconds |",
        "|---|---:|",
        f"| Building the corpus ({n} messages, all cores) | {c.build_s:.1f} |",
    ]
    if p is not None:
        lines.append(
            f"| Prefill: `Publisher.publish` of {n} messages, batches as the fetcher's "
            f"({n / p.seconds:.0f} msgs/s; {p.blobs} in the blob store) | {p.seconds:.1f} |"
        )
    if r is not None:
        lines.append(f"| `start()` of dedup | {r.startup_s:.1f} |")
    if r is not None and r.cpu_s:
        lines += [
            "",
            f"CPU during the measured window ({r.window_s:.1f}s wall):",
            "",
            "| Process | CPU seconds | Share of one core | CPU ms per message |",
            "|---|---:|---:|---:|",
        ]
        for name, seconds in sorted(r.cpu_s.items(), key=lambda kv: -kv[1]):
            share = seconds / r.window_s if r.window_s else 0.0
            lines.append(f"| {name} | {seconds:.1f} | {share:.0%} | {seconds / n * 1000:.2f} |")
        if r.counter_cpu_s is not None:
            lines += [
                "",
                f"Of the bench process's CPU, the counting consumer accounts for about "
                f"{r.counter_cpu_s:.1f}s (reading all of tagged-messages once more, after the "
                "window, took that much CPU in this process).",
            ]
    if r is not None:
        lines += [
            "",
            f"Checks: raw-messages held {report.raw_records} records before dedup started; "
            f"tagged-messages holds {r.tagged_final} records with {r.distinct_keys} distinct "
            f"activity ids; dead-letters {r.dead_letters} records (expected {n}, {n}, {n}, 0).",
        ]
    if report.notes:
        lines += ["", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def main(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    """Run the benchmark; return (markdown body, complete)."""
    report = run(messages, seed, timeout_s)
    return render(report), report.complete
