"""Dedup alone: messages/s through one dedup worker, from a prefilled raw-messages topic.

What is measured, and why
-------------------------
The issue's target is at least 2,000 messages/s of realistic mail through one dedup
worker. The pipeline benchmark cannot show that figure: there the fetcher feeds dedup
(at most as fast as it fetches) and all three services share one event loop. Here dedup
runs alone, on real servers on loopback (Apache Kafka, one KRaft node; SecantusDB with
``--sync-on-commit``), with production settings, against a topic that already holds all
the work:

- **Prefill** (not in the figure, reported on its own): N messages from
  ``bench._harness.build_corpus`` (the pipeline benchmark's corpus, same seed) are
  published to raw-messages exactly as the fetcher publishes them:
  ``services.fetcher.publish.Publisher`` with the services' producer
  (``acks=all``) and the GridFS blob store, in batches of the fetcher's batch size,
  one ``FetchedMessage`` per message (UIDs 1..N in INBOX, no flags, INTERNALDATE now).
  The account record of the corpus's recipient is published first, so dedup knows it.
- **Dedup**: ``services.cli.SERVICES["dedup"]`` (faust: agent ``tag`` reads
  raw-messages and repartitions to dedup-by-fingerprint, agent ``dedup`` keeps the
  sightings table and writes tagged-messages), run by ``run_as_production`` as
  ``mailsync dedup`` runs it. The clock starts when its ``start()`` returned and stops
  when tagged-messages holds N records, counted by *reading* the topic with one
  consumer without a group that follows every partition, ``read_committed`` (records
  of an open or aborted transaction are not counted; without transactions it reads
  what ``read_uncommitted`` would). Reading, not end offsets, also yields the distinct
  keys the checks need. The time to the first tagged record (faust's group join and
  assignment) is reported, and so is the rate after it.
- **CPU seconds** of this process (the dedup worker, plus the counting consumer, whose
  own cost is measured afterwards by reading the topic again) and of each server during
  the window. One worker is one event loop: it can use at most one core.
- **Against its bound** (``BOUND_ROUNDS``): after the run above (also the JVM's
  warm-up), the relay bound of ``bench.dedup_bound`` (mode ``work``: dedup's work in a
  plain aiokafka relay, no faust) and dedup alternate on the same servers, each round on
  topics of its own, prefilled the same way, the order reversed every other pair. The
  machine is shared and noisy, so the figure is the ratio of the two means in one run,
  each round's load noted.
- **Exactly-once against at-least-once** (``GUARANTEE_ROUNDS``): after those
  (production settings, also the JVM's warm-up), dedup runs again once per round with
  ``MAILSYNC_DEDUP_PROCESSING_GUARANTEE`` set, alternating ``at_least_once`` and
  ``exactly_once``, on the same servers and the same corpus, each round on topics of
  its own (its own prefix: prefilled the same way, a fresh consumer group, table and
  changelog). With ``exactly_once`` faust writes each partition's output and offsets
  in a transaction committed every ``broker_commit_interval`` (2.8 s by default), and a
  ``read_committed`` consumer sees the output only then: the clock stops when all N
  records are visible to it. A second consumer reading ``read_uncommitted`` (in both
  modes, so both pay for it) says when all N were produced, before their commit.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench._harness import (
    KAFKA_CPU_NAME,
    MB,
    Corpus,
    Prefill,
    TimedService,
    build_corpus,
    overrides_for,
    prefill,
    publish_account,
    rate,
    run_as_production,
    server_cpu_seconds,
    steady_rate,
)
from devservers import KafkaBroker, SecantusServer
from schemas.topics import (
    BY_FINGERPRINT,
    DEAD_LETTERS,
    RAW_MESSAGES,
    TAGGED_MESSAGES,
    TOPICS,
    TopicSpec,
)
from services.cli import SERVICES
from services.common.kafka import ensure_topics
from services.common.lifecycle import Service
from services.common.logs import setup_logging
from services.common.settings import CommonSettings
from services.dedup.settings import DedupSettings

# What is timed: a service built from the run's settings (``services.cli.SERVICES``).
MakeService = Callable[[dict[str, Any]], Service]

HEADING = "## Dedup"
TARGET_MPS = 2000  # the target for one dedup worker
POLL_MS = 100
PROGRESS_EVERY_S = 5.0
SHUTDOWN_TIMEOUT_S = 15.0
Guarantee = Literal["at_least_once", "exactly_once"]
# Relay bound and dedup alternate, four rounds each, the order reversed every other pair
# (bound first, then dedup first): a neighbour's load, and a drift over the run (later
# rounds ran slower, bench/RESULTS.md, Dedup, "The third round"), fall on both alike.
BOUND_ROUNDS = 4
# After the first run (warm-up), alternating, so a drift (the JVM's JIT, a neighbour's
# load) falls on both modes alike.
GUARANTEE_ROUNDS: tuple[Guarantee, ...] = (
    "at_least_once",
    "exactly_once",
    "at_least_once",
    "exactly_once",
)
# Adopt exactly-once unless it costs more than a third of the throughput (the issue).
ADOPT_AT_RATIO = 2 / 3
# Each round's limit: a stalled round (records left in a transaction nobody commits, and
# the broker aborts after the producer's transaction timeout, 60 s) does not take the
# other rounds' time.
ROUND_TIMEOUT_S = 120.0


def log(text: str) -> None:
    print(f"[bench.dedup] {text}", flush=True)


# -- counting a topic by reading it -------------------------------------------------------


class Counter:
    """One consumer without a group on every partition of a topic, counting what it reads.

    ``read_committed`` by default: a transaction's records count once it is committed,
    as a downstream consumer reading that way sees them."""

    def __init__(
        self, bootstrap: str, topic: str, partitions: int, isolation: str = "read_committed"
    ):
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_bytes=64 * MB,
            isolation_level=isolation,
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

    async def end_offset(self) -> int:
        """The topic's end offsets added up (the last stable offsets, read_committed)."""
        return sum((await self._consumer.end_offsets(self._tps)).values())

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


async def count_topic(
    overrides: dict[str, Any], spec: TopicSpec, isolation: str = "read_committed"
) -> tuple[int, int, float]:
    """(records, distinct keys, CPU seconds this process spent reading them)."""
    s = CommonSettings(**overrides)
    counter = Counter(s.require_kafka(), s.topic(spec), spec.partitions, isolation)
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
    produced_s: float | None = None  # all N read by a read_uncommitted consumer
    uncommitted_final: int | None = None  # what that consumer read in all
    markers: int | None = None  # offsets of tagged-messages not holding a record
    # dedup-by-fingerprint (dedup's own repartition) as read_committed and
    # read_uncommitted read it, after the window (with ``uncommitted``)
    by_fingerprint: tuple[int, int] | None = None
    timed_out: bool = False
    error: str | None = None


async def measure_dedup(
    overrides: dict[str, Any],
    expected: int,
    deadline: float,
    make: MakeService | None = None,
    uncommitted: bool = False,
) -> DedupRun:
    """Time ``make`` (the real dedup service unless given) through the prefilled topic;
    with ``uncommitted``, a ``read_uncommitted`` consumer also says when all were sent."""
    result = DedupRun(expected)
    s = CommonSettings(**overrides)
    tagged = (s.require_kafka(), s.topic(TAGGED_MESSAGES), TAGGED_MESSAGES.partitions)
    counter = Counter(*tagged)
    sent = Counter(*tagged, isolation="read_uncommitted") if uncommitted else None
    await counter.start()  # positioned before dedup starts: no set-up in the window
    if sent is not None:
        await sent.start()
    marks: dict[str, tuple[float, float]] = {}
    service = TimedService((make or SERVICES["dedup"])(dict(overrides)), marks)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_as_production([service], stop, SHUTDOWN_TIMEOUT_S))
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
            if sent is None:
                got = await counter.poll()
            else:
                got, _ = await asyncio.gather(counter.poll(), sent.poll())
            now = time.monotonic()
            if sent is not None and result.produced_s is None and sent.count >= expected:
                result.produced_s = now - started
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
        while sent is not None and result.produced_s is None and time.monotonic() < deadline:
            await sent.poll()  # the committed count got there in the same poll
            if sent.count >= expected:
                result.produced_s = time.monotonic() - started
        result.tagged_final = await counter.drain()
        result.distinct_keys = len(counter.keys)
        if sent is not None:
            result.uncommitted_final = await sent.drain()
        # Kafka's end offsets are exact: what no record holds is a transaction marker.
        result.markers = await counter.end_offset() - result.tagged_final
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
        if sent is not None:
            await sent.stop()
    if uncommitted:
        result.by_fingerprint = (
            (await count_topic(overrides, BY_FINGERPRINT))[0],
            (await count_topic(overrides, BY_FINGERPRINT, "read_uncommitted"))[0],
        )
    if result.error is None:
        _, _, result.counter_cpu_s = await count_topic(overrides, TAGGED_MESSAGES)
        result.dead_letters, _, _ = await count_topic(overrides, DEAD_LETTERS)
    return result


# -- one run, and its report --------------------------------------------------------------


@dataclass
class DedupReport:
    corpus: Corpus
    guarantee: str = ""  # faust's processing_guarantee in the run
    bound: bool = False  # the relay bound (bench.dedup_bound, mode work), not dedup
    uncommitted: bool = False  # a guarantee round: read_uncommitted counted too
    load_before: float | None = None  # 1-minute load average before dedup started
    prefill: Prefill | None = None
    raw_records: int = 0
    run: DedupRun | None = None
    notes: list[str] = field(default_factory=list)
    rounds: list[DedupReport] = field(default_factory=list)  # after this run, on its servers

    @property
    def finished(self) -> bool:
        """This run (not its rounds) moved every message."""
        r = self.run
        return r is not None and r.done_s is not None and r.error is None

    @property
    def complete(self) -> bool:
        """This run and its at_least_once rounds finished (an exactly_once round that
        stalls is a finding, reported in its row, not a broken benchmark)."""
        return self.finished and all(
            x.finished for x in self.rounds if x.guarantee != "exactly_once"
        )


async def _bench(
    overrides: dict[str, Any],
    corpus: Corpus,
    deadline: float,
    report: DedupReport,
    make: MakeService | None,
    uncommitted: bool = False,
) -> None:
    settings = CommonSettings(**overrides)
    await ensure_topics(settings, TOPICS)
    await publish_account(settings)
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
    report.load_before = before[0]
    report.run = await measure_dedup(overrides, len(corpus.messages), deadline, make, uncommitted)
    after = os.getloadavg()
    report.notes.append(
        f"Load average (1 min) {before[0]:.2f} before dedup, {after[0]:.2f} after "
        f"(on {len(os.sched_getaffinity(0))} CPUs; anything else running skews the figures)."
    )


@dataclass(frozen=True)
class Round:
    """One run after the first, on the same servers: dedup with ``guarantee``, or the
    relay bound; ``uncommitted``: also count what a read_uncommitted consumer reads."""

    guarantee: Guarantee = "at_least_once"
    bound: bool = False
    uncommitted: bool = False


def _relay_bound(overrides: dict[str, Any]) -> Service:
    from bench.dedup_bound import Relay  # bench.dedup_bound imports this module

    return Relay(overrides, mode="work")


def run(
    messages: int,
    seed: int,
    timeout_s: float,
    make: MakeService | None = None,
    rounds: Sequence[Round] = (),
) -> DedupReport:
    """Prefill, then time ``make`` (default: the dedup service) on fresh servers; then,
    on the same servers, one run per entry of ``rounds``, each on topics of its own."""
    setup_logging("WARNING")
    deadline = time.monotonic() + timeout_s
    log(f"building {messages} messages (seed {seed})")
    corpus = build_corpus(messages, seed)
    report = DedupReport(corpus)
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
            overrides = overrides_for(kafka, secantus, work / "data")
            report.guarantee = DedupSettings(**overrides).dedup_processing_guarantee
            try:
                asyncio.run(_bench(overrides, corpus, deadline, report, make))
            except Exception as exc:
                report.notes.append(f"set-up failed: {type(exc).__name__}: {exc}")
                log(f"set-up failed: {type(exc).__name__}: {exc}")
            for i, spec in enumerate(rounds, 1):
                guarantee = spec.guarantee
                what = "the relay bound" if spec.bound else f"dedup, {guarantee}"
                log(f"round {i}: {what}")
                again = DedupReport(corpus, guarantee, spec.bound, spec.uncommitted)
                report.rounds.append(again)
                own = dict(
                    overrides,
                    topic_prefix=f"bench-{i}-{'bound' if spec.bound else guarantee}.",
                    data_dir=work / f"data-{i}",
                    dedup_processing_guarantee=guarantee,
                )
                limit = min(deadline, time.monotonic() + ROUND_TIMEOUT_S)
                kind = _relay_bound if spec.bound else None
                try:
                    asyncio.run(_bench(own, corpus, limit, again, kind, spec.uncommitted))
                except Exception as exc:
                    again.notes.append(f"set-up failed: {type(exc).__name__}: {exc}")
                    log(f"round {i} set-up failed: {type(exc).__name__}: {exc}")
    return report


def render(report: DedupReport) -> str:
    c = report.corpus
    n = len(c.messages)
    total = c.total_bytes
    r = report.run
    lines: list[str] = []
    if not report.finished:
        why = "timed out" if r is not None and r.timed_out else (r.error if r else "not run")
        lines += [f"**INCOMPLETE RUN ({why})**: the figures below are what it had.", ""]
    lines += [
        f"Input: raw-messages prefilled with {n} messages from `devservers.corpus.build` "
        f"(the pipeline benchmark's corpus: {c.with_attachment} = {c.with_attachment / n:.0%} "
        f"with a PDF attachment), {total / MB:.1f} MB in all, {total / n / 1000:.1f} KB on "
        "average, published as the fetcher publishes them (one account, so one partition). "
        "One dedup worker (`mailsync dedup`: faust agents `tag` and `dedup`), production "
        f"settings (`processing_guarantee` {report.guarantee}). Target: {TARGET_MPS:,} msgs/s.",
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
            f"| Prefill: the fetcher's `Publisher`, {n} messages in its batches "
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
    alternating = [x for x in report.rounds if not x.uncommitted]
    if alternating:
        lines += ["", *render_bound(alternating)]
    guarantees = [x for x in report.rounds if x.uncommitted]
    if guarantees:
        lines += ["", *render_rounds(guarantees)]
    return "\n".join(lines) + "\n"


def _kafka_ms(r: DedupRun, n: int) -> str:
    seconds = r.cpu_s.get(KAFKA_CPU_NAME)
    return "—" if seconds is None else f"{seconds / n * 1000:.2f}"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def bound_ratio(rounds: Sequence[DedupReport]) -> tuple[float, float] | None:
    """(dedup's mean msgs/s, the relay bound's) over the alternating rounds that finished."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    for x in rounds:
        r = x.run
        if x.finished and r is not None and r.done_s:
            rates[x.bound].append(len(x.corpus.messages) / r.done_s)
    dedup, bound = _mean(rates[False]), _mean(rates[True])
    return None if dedup is None or bound is None else (dedup, bound)


def render_bound(rounds: list[DedupReport]) -> list[str]:
    """The subsection of the alternating rounds: dedup against its relay bound."""
    n = len(rounds[0].corpus.messages)
    lines = [
        "### Against its bound, alternating",
        "",
        "After the run above, on the same servers and corpus, the relay bound "
        "(`bench/dedup_bound.py`, mode `work`: dedup's work through a plain aiokafka relay, "
        "no faust) and dedup alternate, the order reversed every other pair, each round on "
        "topics of its own, prefilled the same way (a fresh group, table and changelog). "
        "The ratio is dedup's mean over the bound's mean, both measured in this run.",
        "",
        "| Round | What | Seconds | **Msgs/s** | Steady msgs/s | Bench CPU ms/msg "
        "| Kafka CPU ms/msg | Load 1 min before |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, report in enumerate(rounds, 1):
        r = report.run
        what = "relay bound" if report.bound else "dedup"
        if r is None or not report.finished or r.done_s is None:
            why = (r.error if r is not None else None) or "; ".join(report.notes) or "not run"
            lines.append(f"| {i} | {what} | {why} | — | — | — | — | — |")
            continue
        steady = steady_rate(n, report.corpus.total_bytes, r.first_s, r.at_first, r.done_s)
        bench = next((v for k, v in r.cpu_s.items() if k.startswith("bench")), 0.0)
        load = "—" if report.load_before is None else f"{report.load_before:.2f}"
        lines.append(
            f"| {i} | {what} | {r.done_s:.2f} | **{n / r.done_s:.0f}** | "
            f"{steady[1] if steady else '—'} | {bench / n * 1000:.2f} | {_kafka_ms(r, n)} | "
            f"{load} |"
        )
    means = bound_ratio(rounds)
    lines.append("")
    if means is not None:
        dedup, bound = means
        lines.append(
            f"Means: dedup **{dedup:.0f}** msgs/s, relay bound **{bound:.0f}**: dedup runs at "
            f"**{dedup / bound:.2f}** of its bound."
        )
    else:
        lines.append("No ratio: a kind finished no round.")
    return lines


def render_rounds(rounds: list[DedupReport]) -> list[str]:
    """The subsection comparing processing guarantees, round by round, and the verdict."""
    n = len(rounds[0].corpus.messages)
    lines = [
        "### Exactly-once against at-least-once",
        "",
        "After the run above, on the same servers and corpus, dedup once per round with "
        "`MAILSYNC_DEDUP_PROCESSING_GUARANTEE` set, alternating; each round on topics of its "
        "own, prefilled the same way (a fresh group, table and changelog). *Visible*: the "
        "clock stops when a `read_committed` consumer has read all "
        f"{n} tagged records (with exactly_once, faust commits each partition's transaction "
        "every `broker_commit_interval`, 2.8 s by default, and only then are its records "
        "visible). *Sent*: when a `read_uncommitted` consumer, running in both modes, had "
        "read them all. CPU per message over the visible window.",
        "",
        "| Round | Guarantee | Visible at (s) | **Msgs/s visible** | Sent at (s) | Msgs/s sent "
        "| `start()` (s) | Bench CPU ms/msg | Kafka CPU ms/msg | Load 1 min before |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    visible: dict[str, list[float]] = {}
    sent: dict[str, list[float]] = {}
    checks: list[str] = []
    for i, report in enumerate(rounds, 1):
        r = report.run
        if r is None or r.error is not None or r.done_s is None:
            if r is not None and r.timed_out and r.error is None:
                why = (
                    f"**stalled**: after {r.window_s:.0f}s {r.tagged_final} visible, "
                    f"{r.uncommitted_final} sent"
                )
            else:
                why = (r.error if r is not None else None) or "; ".join(report.notes) or "not run"
            lines.append(f"| {i} | {report.guarantee} | {why} | — | — | — | — | — | — | — |")
        if r is None:
            continue
        fp = r.by_fingerprint
        checks.append(
            f"round {i}: {r.tagged_final} read_committed ({r.distinct_keys} distinct ids), "
            f"{r.uncommitted_final} read_uncommitted, {r.dead_letters} dead letters, "
            f"{r.markers} transaction markers; dedup-by-fingerprint "
            + ("—" if fp is None else f"{fp[0]} read_committed of {fp[1]}")
        )
        if r.done_s is None or r.error is not None:
            continue
        visible.setdefault(report.guarantee, []).append(n / r.done_s)
        sent_s = f"{r.produced_s:.2f}" if r.produced_s is not None else "—"
        sent_mps = "—"
        if r.produced_s:
            sent.setdefault(report.guarantee, []).append(n / r.produced_s)
            sent_mps = f"{n / r.produced_s:.0f}"
        bench = next((v for k, v in r.cpu_s.items() if k.startswith("bench")), 0.0)
        load = "—" if report.load_before is None else f"{report.load_before:.2f}"
        lines.append(
            f"| {i} | {report.guarantee} | {r.done_s:.2f} | **{n / r.done_s:.0f}** | {sent_s} | "
            f"{sent_mps} | {r.startup_s:.1f} | {bench / n * 1000:.2f} | {_kafka_ms(r, n)} | "
            f"{load} |"
        )
    lines.append("")
    alo, eos = (_mean(visible.get(g, [])) for g in ("at_least_once", "exactly_once"))
    alo_sent, eos_sent = (_mean(sent.get(g, [])) for g in ("at_least_once", "exactly_once"))
    if alo and eos:
        ratio = eos / alo
        verdict = "adopt exactly_once" if ratio >= ADOPT_AT_RATIO else "keep at_least_once"
        sent_ratio = (
            f" (as sent: {eos_sent:.0f} over {alo_sent:.0f}, {eos_sent / alo_sent:.2f}×)"
            if alo_sent and eos_sent
            else ""
        )
        default = DedupSettings.model_fields["dedup_processing_guarantee"].default
        lines += [
            f"Mean msgs/s visible: at_least_once **{alo:.0f}**, exactly_once **{eos:.0f}**; "
            f"exactly_once runs at **{ratio:.2f}×** the rate of at_least_once, a cost of "
            f"{1 - ratio:.0%}{sent_ratio}. The rule (adopt unless it costs more than a third "
            f"of the throughput, i.e. at {ADOPT_AT_RATIO:.2f}× or more) says: **{verdict}**. "
            f"Default in `services/dedup/settings.py`: `{default}`.",
            "",
        ]
    elif alo:
        default = DedupSettings.model_fields["dedup_processing_guarantee"].default
        lines += [
            f"Mean msgs/s visible: at_least_once **{alo:.0f}**; exactly_once finished no round "
            f"(limit {ROUND_TIMEOUT_S:.0f}s each), so the rule says: **keep at_least_once**. "
            f"Default in `services/dedup/settings.py`: `{default}`.",
            "",
        ]
    stuck = [
        (i, r.by_fingerprint)
        for i, x in enumerate(rounds, 1)
        if (r := x.run) is not None
        and r.by_fingerprint is not None
        and r.by_fingerprint[0] < r.by_fingerprint[1]
    ]
    if stuck:
        lines += [
            "Where a round stalled, dedup had written its repartition, dedup-by-fingerprint, "
            "but records stayed in transactions nobody committed: "
            + "; ".join(
                f"round {i}: {u - c} of {u} invisible to read_committed" for i, (c, u) in stuck
            )
            + " (why: the summary at the top of this file).",
            "",
        ]
    lines.append(
        f"Checks (expected {n} each, {n} distinct, 0 dead letters; transaction markers, the "
        "end offsets less the records, only with exactly_once): " + "; ".join(checks) + "."
    )
    return lines


def main(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    """Run the benchmark, the bound rounds and the guarantee rounds; return (markdown
    body, complete)."""
    alternating = [
        Round(bound=b)
        for pair in range(BOUND_ROUNDS)
        for b in ((True, False) if pair % 2 == 0 else (False, True))
    ]
    guarantees = [Round(g, uncommitted=True) for g in GUARANTEE_ROUNDS]
    report = run(messages, seed, timeout_s, rounds=[*alternating, *guarantees])
    return render(report), report.complete
