"""Pipeline end to end: one mailbox of N realistic messages, IMAP -> Kafka -> MongoDB.

What is measured, and why
-------------------------
The question is how fast mailsync imports an existing mailbox (the first sync of an
account, when the whole history comes in), and which stage limits it. On real servers
on loopback (Apache Kafka, one KRaft node; SecantusDB with ``--sync-on-commit`` as in
production; Dovecot over IMAPS) the three services run in-process on one event loop,
as ``mailsync run`` and the integration tests run them, with production settings
(batch sizes, timeouts).

- **Fetch stage**: from the moment every service has finished ``start()`` until all N
  raw messages are acknowledged in the raw-messages topic (the fetcher's INBOX cursor,
  saved after each acknowledged batch, reaches the mailbox's last UID). This is IMAP
  FETCH + publish (``acks=all``) + cursor and progress saves in MongoDB, plus the
  account pick-up (reading the accounts topic, IMAP connect and login). The time to
  the first acknowledged batch is reported separately, and so is the rate after it
  (the steady state).
- **Fetch stage alone**: the same, with only the fetcher running (its own database and
  topics, before the pipeline runs): ``bench._harness.fetcher_alone``, as the mbsync
  benchmark runs it. In the pipeline, dedup and the writer compete with the fetcher for
  the same cores (and the same event loop), so this is the figure to read against the
  imaplib baseline; both are given, with their ratio to it.
- **End to end**: from the same moment until N activity documents exist in MongoDB
  (fetch, dedup's two faust agents, the writer's bulk upserts): polled as the
  writer's committed offsets on tagged-messages (it commits after each bulk write
  returned), then confirmed by counting the activities.
- **End to end, one process per service**: the same import again (its own database,
  topics and groups), with fetcher, dedup and writer each in a process of its own
  (``python -m bench._service NAME``, which is ``mailsync NAME``), as production runs
  them, a pod each. In one process the three share one event loop, so one core; here
  they can use both. The processes are ready (``/readyz``) before the account is
  published, and the times count from its publication.
- **End to end against the machine's CPU**: each end-to-end run's CPU seconds over all
  processes (the services and the servers) per message give the most messages/s the
  cores allow at that cost, were every core busy all the time; on a machine that also
  runs the broker, the database and Dovecot this is the bound the figure can reach.
- **Service start-up** (``start()`` of each service: topics checked, the account
  directory read, the consumer group joined; against Tansu most of it was the broker
  holding each group's first JoinGroup for 5 s) is *not* in either figure; it is
  reported on its own lines.
- **imaplib baseline**: the stdlib ``imaplib`` fetching the same mailbox over one IMAPS
  connection, ``UID FETCH <500 UIDs> (BODY.PEEK[])`` per round trip, so the fetcher's
  figure can be read against what the IMAP server and TLS allow at all. It runs twice
  before the pipeline (the first pass also builds Dovecot's caches, the second is warm)
  while nothing else runs. (On a Maildir of many thousand files Dovecot stops about a
  second to resync its uidlist, perf shows ``maildir_filename_base_cmp``, at the first
  FETCH of a session and again every few seconds of a long one: imaplib's short
  session pays it once or twice at 20,000 messages, the fetcher's longer one more
  often. At the default 2,000 it is not seen.)
- **Best case of the fetch stage** (``bench.fetch_bound``): the imaplib baseline and the
  fetcher's Kafka leg (its ``Publisher``, no IMAP) at the same moment in two
  processes, so they overlap perfectly: what any fetcher on this producer could reach
  on these cores. The Kafka leg is also timed alone.
- **CPU seconds** of this process (the three services, the probes) and of each server
  process group during the measured window, to see which side is the bottleneck: one
  event loop can use at most one core.

Progress is polled every ``POLL_S`` seconds, so every time has that resolution (each
is the time the probe *saw* the count, an upper bound). Seeding the mailbox (building
the corpus, then ``doveadm import`` of a Maildir) is timed and printed separately; it
is not part of any figure.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench._harness import (
    BASELINE_BATCH,
    MB,
    SHUTDOWN_TIMEOUT_S,
    USER,
    Baseline,
    Corpus,
    FetchRun,
    Probe,
    TimedService,
    build_corpus,
    fetcher_alone,
    imaplib_baseline,
    overrides_for,
    publish_account,
    rate,
    run_as_production,
    seed_mailbox,
    server_cpu_seconds,
    servers,
    steady_rate,
)
from bench.fetch_bound import Bound, measure
from bench.scale import ServiceProcess
from devservers import DovecotServer
from schemas.topics import DEAD_LETTERS, RAW_MESSAGES
from services.cli import SERVICES
from services.common.logs import setup_logging
from services.common.settings import CommonSettings

HEADING = "## Pipeline end to end"
POLL_S = 0.2
PROGRESS_EVERY_S = 5.0
INGEST = ("fetcher", "dedup", "activity-writer")  # the sender has no part in an import


def log(text: str) -> None:
    print(f"[bench.pipeline] {text}", flush=True)


# -- the pipeline -------------------------------------------------------------------------


@dataclass
class PipelineRun:
    """Times in seconds from ``started`` (every service's ``start()`` returned)."""

    expected: int
    startup_s: dict[str, float] = field(default_factory=dict)
    first_raw_s: float | None = None
    raw_at_first: int = 0
    fetch_s: float | None = None
    first_activity_s: float | None = None
    end_to_end_s: float | None = None
    raw_final: int = 0
    activities_final: int = 0
    dead_letters: int = 0
    window_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    timed_out: bool = False
    error: str | None = None


async def measure_pipeline(
    overrides: dict[str, Any], expected: int, last_uid: int, deadline: float
) -> PipelineRun:
    """Run fetcher, dedup and activity writer until ``expected`` activities exist.

    The fetch stage is complete when the INBOX cursor reaches ``last_uid`` (the
    mailbox's highest UID): the fetcher saves it after the broker acknowledged the batch.
    """
    result = PipelineRun(expected)
    marks: dict[str, tuple[float, float]] = {}
    services = [TimedService(SERVICES[name](dict(overrides)), marks) for name in INGEST]
    probe = Probe(overrides)
    await probe.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_as_production(services, stop, SHUTDOWN_TIMEOUT_S))
    try:
        while len(marks) < len(services) and not runner.done():
            if time.monotonic() > deadline:
                result.timed_out = True
                return result
            await asyncio.sleep(0.05)
        if runner.done():
            runner.result()
            raise RuntimeError("services stopped before they all started")
        for name, (began, ended) in marks.items():
            result.startup_s[name] = ended - began
        started = max(ended for _, ended in marks.values())
        cpu_before, proc_before = server_cpu_seconds(), time.process_time()
        log(f"services started ({', '.join(f'{k} {v:.1f}s' for k, v in result.startup_s.items())})")
        await _follow(probe, result, started, last_uid, deadline, alive=lambda: _alive(runner))
        result.window_s = time.monotonic() - started
        cpu_after = server_cpu_seconds()
        result.cpu_s["bench process (3 services, one loop)"] = time.process_time() - proc_before
        for name, seconds in cpu_after.items():
            result.cpu_s[name] = seconds - cpu_before.get(name, 0.0)
        await _count_what_is_left(probe, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log(f"pipeline failed: {result.error}")
    finally:
        stop.set()
        try:
            await asyncio.wait_for(runner, 60)
        except Exception as exc:  # reported, and the servers are stopped by the caller
            result.error = result.error or f"{type(exc).__name__}: {exc}"
        await probe.stop()
    return result


def _alive(runner: asyncio.Task[None]) -> None:
    if runner.done():
        runner.result()
        raise RuntimeError("services stopped unexpectedly")


async def _follow(
    probe: Probe,
    result: PipelineRun,
    started: float,
    last_uid: int,
    deadline: float,
    alive: Callable[[], None],
) -> None:
    """Poll until ``result.expected`` activities exist (or the deadline), noting when the
    fetch stage completed and when the first activity appeared; ``alive`` raises once a
    service died."""
    expected = result.expected
    next_progress = started + PROGRESS_EVERY_S
    raw = activities = 0
    while True:
        alive()
        if raw < last_uid:
            raw = await probe.fetched_uid()  # UIDs are 1..N: the count fetched so far
            now = time.monotonic() - started
            if raw and result.first_raw_s is None:
                result.first_raw_s, result.raw_at_first = now, raw
            if raw >= last_uid:
                result.fetch_s = now
        activities = await probe.written()
        now = time.monotonic() - started
        if activities and result.first_activity_s is None:
            result.first_activity_s = now
        # Committed means written; the count confirms it (once, it is not cheap).
        if activities >= expected and await probe.activities() >= expected:
            result.end_to_end_s = now
            return
        if time.monotonic() >= next_progress:
            log(f"t={now:6.1f}s  raw {raw}/{expected}  activities {activities}/{expected}")
            next_progress += PROGRESS_EVERY_S
        if time.monotonic() > deadline:
            result.timed_out = True
            log(f"timed out at t={now:.1f}s: raw {raw}, activities {activities}")
            return
        await asyncio.sleep(POLL_S)


async def _count_what_is_left(probe: Probe, result: PipelineRun) -> None:
    """The checks: what the topics and the database hold once the run is over."""
    result.raw_final = await probe.records(RAW_MESSAGES)
    result.activities_final = await probe.activities()
    result.dead_letters = await probe.records(DEAD_LETTERS)


def _process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, its reaped children's included) of one process."""
    stat = (Path("/proc") / str(pid) / "stat").read_text()
    f = stat[stat.rfind(")") + 2 :].split()
    return (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")


async def measure_processes(
    overrides: dict[str, Any],
    dovecot: DovecotServer,
    work: Path,
    expected: int,
    last_uid: int,
    deadline: float,
) -> PipelineRun:
    """The same import with each service in a process of its own, as production runs
    them (a pod each), so they use both cores rather than one event loop.

    The processes start first and are ready (``/readyz``) before the account is
    published: the time counts from the account's publication, and so includes its
    pick-up (the accounts topic, IMAP connect and login), as the in-process figure does.
    """
    result = PipelineRun(expected)
    procs = {name: ServiceProcess(name, overrides, work, None) for name in INGEST}
    probe = Probe(overrides)
    try:
        began = time.monotonic()
        for proc in procs.values():
            proc.start()
        async with aiohttp.ClientSession() as http:
            for proc in procs.values():
                await proc.wait_ready(http)
        log(f"services ready in {time.monotonic() - began:.1f}s (one process each)")
        await probe.start()
        pids = {name: proc.pid for name, proc in procs.items()}
        cpu_before = server_cpu_seconds()
        own_before = {name: _process_cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        await publish_account(CommonSettings(**overrides), dovecot.imaps_port)

        def alive() -> None:
            for proc in procs.values():
                proc.pid  # noqa: B018  (raises, naming the log, once the process died)

        await _follow(probe, result, started, last_uid, deadline, alive)
        result.window_s = time.monotonic() - started
        for name, pid in pids.items():
            result.cpu_s[f"{name} (its process)"] = _process_cpu_seconds(pid) - own_before[name]
        for name, seconds in server_cpu_seconds().items():
            if not name.startswith("python"):  # the services, counted above by pid
                result.cpu_s[name] = seconds - cpu_before.get(name, 0.0)
        await _count_what_is_left(probe, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log(f"pipeline in processes failed: {result.error}")
    finally:
        for proc in procs.values():
            proc.stop()
        await probe.stop()
    return result


# -- one run, and its report --------------------------------------------------------------


@dataclass
class PipelineReport:
    corpus: Corpus
    seed_s: float = 0.0
    baselines: list[Baseline] = field(default_factory=list)
    bound: Bound | None = None
    fetch_alone: FetchRun | None = None
    pipeline: PipelineRun | None = None
    processes: PipelineRun | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        p, f = self.pipeline, self.fetch_alone
        return (
            p is not None
            and p.end_to_end_s is not None
            and p.error is None
            and f is not None
            and f.fetch_s is not None
            and f.error is None
        )


def run(messages: int, seed: int, timeout_s: float) -> PipelineReport:
    """The whole benchmark; stops at ``timeout_s`` and reports what it measured by then."""
    setup_logging("WARNING")
    deadline = time.monotonic() + timeout_s
    log(f"building {messages} messages (seed {seed})")
    corpus = build_corpus(messages, seed)
    report = PipelineReport(corpus)
    log(
        f"built in {corpus.build_s:.1f}s: {corpus.total_bytes / MB:.1f} MB, "
        f"avg {corpus.total_bytes / messages / 1000:.1f} KB, {corpus.with_attachment} attachments"
    )
    with tempfile.TemporaryDirectory(prefix="mailsync-bench-") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        with servers(work) as (kafka, secantus, dovecot):
            log(f"servers up in {time.perf_counter() - began:.1f}s")
            dovecot.add_user(USER.address, USER.password)
            report.seed_s = seed_mailbox(dovecot, USER, corpus.messages)
            log(
                f"seeded {messages} messages with doveadm import in {report.seed_s:.1f}s "
                f"({messages / report.seed_s:.0f} msgs/s; not part of any figure)"
            )
            for attempt in (1, 2):
                if time.monotonic() > deadline:
                    break
                b = imaplib_baseline(dovecot, USER, BASELINE_BATCH)
                report.baselines.append(b)
                log(
                    f"imaplib baseline pass {attempt}: {b.messages} msgs in {b.fetch_s:.2f}s "
                    f"({b.messages / b.fetch_s:.0f} msgs/s, {b.bytes / b.fetch_s / MB:.1f} MB/s)"
                )
            overrides = overrides_for(kafka, secantus, work / "data", dovecot)
            if time.monotonic() < deadline:
                report.bound = _bound(dovecot, overrides, corpus)
            last_uid = int(dovecot.status(USER.address, "INBOX")["uidnext"]) - 1
            alone = dict(
                overrides,
                mongo_database="bench_fetch",
                topic_prefix="bench-fetch.",
                fetcher_group="bench-fetch-alone",  # not the pipeline fetcher's group
            )
            asyncio.run(_fetch_alone(alone, dovecot, last_uid, deadline, report))
            asyncio.run(_pipeline(overrides, dovecot, messages, last_uid, deadline, report))
            separate = dict(
                overrides,
                mongo_database="bench_processes",
                topic_prefix="bench-processes.",
                fetcher_group="bench-processes-fetcher",
                dedup_app_id="bench-processes-dedup",
                writer_group="bench-processes-writer",
            )
            log("the same import with one process per service")
            before = os.getloadavg()
            report.processes = asyncio.run(
                measure_processes(separate, dovecot, work, messages, last_uid, deadline)
            )
            report.notes.append(
                f"Load average (1 min) {before[0]:.2f} before the processes' run, "
                f"{os.getloadavg()[0]:.2f} after."
            )
    return report


def _bound(dovecot: DovecotServer, overrides: dict[str, Any], corpus: Corpus) -> Bound:
    log("best case: imaplib and the Kafka leg at once, in two processes")
    bound = measure(dovecot, USER, overrides, corpus)
    n = len(corpus.messages)
    if bound.error:
        log(f"best case failed: {bound.error}")
    else:
        log(
            f"Kafka leg alone {n / bound.kafka_alone_s:.0f} msgs/s; both legs at once "
            f"{n / bound.together_s:.0f} msgs/s"
        )
    return bound


async def _fetch_alone(
    overrides: dict[str, Any],
    dovecot: DovecotServer,
    last_uid: int,
    deadline: float,
    report: PipelineReport,
) -> None:
    log("fetcher alone: starting it")
    before = os.getloadavg()
    run = await fetcher_alone(overrides, dovecot, last_uid, max(1.0, deadline - time.monotonic()))
    report.fetch_alone = run
    if run.fetch_s:
        log(f"fetcher alone: {len(report.corpus.messages) / run.fetch_s:.0f} msgs/s")
    report.notes.append(
        f"Load average (1 min) {before[0]:.2f} before the fetcher alone, "
        f"{os.getloadavg()[0]:.2f} after."
    )


async def _pipeline(
    overrides: dict[str, Any],
    dovecot: DovecotServer,
    messages: int,
    last_uid: int,
    deadline: float,
    report: PipelineReport,
) -> None:
    await publish_account(CommonSettings(**overrides), dovecot.imaps_port)
    log("account published; starting fetcher, dedup, activity-writer")
    before = os.getloadavg()
    report.pipeline = await measure_pipeline(overrides, messages, last_uid, deadline)
    after = os.getloadavg()
    report.notes.append(
        f"Load average (1 min) {before[0]:.2f} before the pipeline, {after[0]:.2f} after "
        f"(on {len(os.sched_getaffinity(0))} CPUs; anything else running skews the figures)."
    )


# -- rendering ----------------------------------------------------------------------------


def _ratios(report: PipelineReport) -> list[str]:
    """The fetch stage's rate over the imaplib baseline's (issue #3: at least 0.5)."""
    fetch_alone = report.fetch_alone.fetch_s if report.fetch_alone is not None else None
    in_pipeline = report.pipeline.fetch_s if report.pipeline is not None else None
    passes = [b.fetch_s for b in report.baselines if b.fetch_s > 0]
    if not passes:
        return []
    out = []
    for what, seconds in (("alone", fetch_alone), ("in the pipeline", in_pipeline)):
        if seconds:
            out.append(
                f"fetch stage {what} **{min(passes) / seconds:.2f}×** of the faster pass "
                f"({max(passes) / seconds:.2f}× of the slower)"
            )
    bound = report.bound
    if bound is not None and not bound.error and bound.together_s:
        out.append(
            f"best case of both legs at once **{min(passes) / bound.together_s:.2f}×** of the "
            f"faster pass"
        )
        if fetch_alone:
            out.append(
                f"the fetcher alone reaches **{bound.together_s / fetch_alone:.0%}** of "
                "that best case from `start()`"
            )
        span = report.fetch_alone.from_fetch_s if report.fetch_alone is not None else None
        if span:
            out.append(
                f"from its first `UID FETCH` to its last cursor, the span the bound's legs are"
                f" timed over, **{bound.together_s / span:.0%}**"
            )
        transfer = report.fetch_alone.transfer_s if report.fetch_alone is not None else None
        if transfer and bound.one_process_s:
            out.append(
                f"its transfer (first record to last cursor) **{bound.together_s / transfer:.0%}**"
                f" of it and **{bound.one_process_s / transfer:.0%}** of both legs in one process"
            )
    if not out:
        return []
    return [
        "",
        "**Ratio to the imaplib baseline** (messages/s over messages/s): " + "; ".join(out) + ".",
    ]


def cpu_bound(run: PipelineRun, messages: int, cores: int) -> float | None:
    """The most messages/s the machine's cores allow at this run's CPU cost: ``cores``
    busy all the time, over the CPU seconds every process (the services and the
    servers) used per message in the run."""
    used = sum(run.cpu_s.values())
    return cores * messages / used if used > 0 else None


def _cpu_bound(report: PipelineReport) -> list[str]:
    """End to end against what the cores allow, each run against its own CPU cost."""
    n, cores = len(report.corpus.messages), len(os.sched_getaffinity(0))
    out = []
    for run, what in ((report.pipeline, "in one process"), (report.processes, "one per service")):
        if run is None or not run.end_to_end_s or (bound := cpu_bound(run, n, cores)) is None:
            continue
        rate_ = n / run.end_to_end_s
        out.append(
            f"{what}: {sum(run.cpu_s.values()) / n * 1000:.2f} ms of CPU a message over all "
            f"processes, so at most {bound:.0f} msgs/s on {cores} cores; it reached {rate_:.0f}, "
            f"**{rate_ / bound:.2f}** of that"
        )
    if not out:
        return []
    return ["", "**End to end against the machine's CPU** (same run): " + "; ".join(out) + "."]


def _bound_rows(report: PipelineReport) -> list[str]:
    """The Kafka leg alone, and the best case of both legs at once (bench.fetch_bound)."""
    bound, n, total = report.bound, len(report.corpus.messages), report.corpus.total_bytes
    if bound is None:
        return []
    if bound.error:
        return [f"| Best case of the fetch stage | — | — | — | failed: {bound.error} |"]
    sec, mps, mbs = rate(n, total, bound.kafka_alone_s)
    rows = [
        f"| Kafka leg alone (the fetcher's `Publisher`, its batches, no IMAP) | {sec} | "
        f"{mps} | {mbs} | producer and Kafka broker only, acks=all; nothing else running |"
    ]
    sec, mps, mbs = rate(n, total, bound.together_s)
    rows.append(
        f"| **Best case of the fetch stage**: imaplib and the Kafka leg at once | {sec} | "
        f"**{mps}** | **{mbs}** | two processes started together, nothing shared; "
        f"meanwhile imaplib ran at {n / bound.imap_s:.0f} msgs/s and the Kafka leg at "
        f"{n / bound.kafka_s:.0f} (`bench.fetch_bound`) |"
    )
    if bound.one_process_s:
        sec, mps, mbs = rate(n, total, bound.one_process_s)
        rows.append(
            f"| Both legs in one process: the fetcher's IMAP client into its `Publisher` | "
            f"{sec} | {mps} | {mbs} | one event loop, nothing else; from the first message "
            "handed over to the last acknowledgement (`bench.fetch_bound`) |"
        )
    return rows


def render(report: PipelineReport) -> str:
    """The markdown body of this benchmark's section (under :data:`HEADING`)."""
    c = report.corpus
    n = len(c.messages)
    total = c.total_bytes
    p = report.pipeline
    lines: list[str] = []
    if not report.complete:
        why = "timed out" if p is not None and p.timed_out else (p.error if p else "not run")
        if report.fetch_alone is not None and report.fetch_alone.error:
            why = f"fetcher alone: {report.fetch_alone.error}"
        lines += [f"**INCOMPLETE RUN ({why})**: the figures below are what it had.", ""]
    lines += [
        f"Mailbox: one INBOX, {n} messages from `devservers.corpus.build` "
        f"({c.with_attachment} = {c.with_attachment / n:.0%} with a PDF attachment), "
        f"{total / MB:.1f} MB in all, {total / n / 1000:.1f} KB on average "
        "(1 MB = 10^6 bytes).",
        "",
        "| Stage | Seconds | Messages/s | MB/s | Notes |",
        "|---|---:|---:|---:|---|",
    ]
    for i, b in enumerate(report.baselines, 1):
        sec, mps, mbs = rate(b.messages, b.bytes, b.fetch_s)
        what = "first pass, builds Dovecot's caches" if i == 1 else "warm"
        lines.append(
            f"| imaplib baseline, pass {i} | {sec} | {mps} | {mbs} | one IMAPS connection, "
            f"UID FETCH of {BASELINE_BATCH} UIDs (BODY.PEEK[]) per round trip; {what}; "
            f"{b.session_s:.2f}s with connect and login |"
        )
    lines += _bound_rows(report)
    f = report.fetch_alone
    if f is not None:
        sec, mps, mbs = rate(n, total, f.fetch_s)
        lines.append(
            f"| **Fetch stage alone** (only the fetcher running) | {sec} | **{mps}** | "
            f"**{mbs}** | from its `start()` returned to the INBOX cursor at the last UID; "
            "includes account pick-up and IMAP login |"
        )
        steady = steady_rate(n, total, f.first_s, f.at_first, f.fetch_s)
        if steady is not None:
            sec, mps, mbs = steady
            lines.append(
                f"| Fetch stage alone after its first cursor | {sec} | {mps} | {mbs} | "
                f"steady state; the first poll to see a cursor (a checkpoint, at most one "
                f"a second) saw UID {f.at_first} at {f.first_s:.2f}s |"
            )
    if p is not None:
        sec, mps, mbs = rate(n, total, p.fetch_s)
        lines.append(
            f"| **Fetch stage** (IMAP → raw-messages, acked) | {sec} | **{mps}** | **{mbs}** | "
            "from all services started; includes account pick-up and IMAP login |"
        )
        steady = steady_rate(n, total, p.first_raw_s, p.raw_at_first, p.fetch_s)
        if steady is not None:
            sec, mps, mbs = steady
            lines.append(
                f"| Fetch stage after its first cursor | {sec} | {mps} | {mbs} | steady state; "
                f"the first poll to see a cursor (a checkpoint, at most one a second) saw "
                f"{p.raw_at_first} acked at {p.first_raw_s:.2f}s |"
            )
        sec, mps, mbs = rate(n, total, p.end_to_end_s)
        first = f"{p.first_activity_s:.2f}s" if p.first_activity_s is not None else "—"
        lines.append(
            f"| **End to end** (IMAP → activities in MongoDB) | {sec} | **{mps}** | **{mbs}** | "
            f"from all services started; first activity at {first} |"
        )
    q = report.processes
    if q is not None:
        if q.error or q.timed_out:
            lines.append(
                f"| End to end, one process per service | — | — | — | {q.error or 'timed out'} |"
            )
        else:
            sec, mps, mbs = rate(n, total, q.fetch_s)
            lines.append(
                f"| Fetch stage, one process per service | {sec} | {mps} | {mbs} | from the "
                "account's publication (the services ready); includes its pick-up and login |"
            )
            sec, mps, mbs = rate(n, total, q.end_to_end_s)
            first = f"{q.first_activity_s:.2f}s" if q.first_activity_s is not None else "—"
            lines.append(
                f"| **End to end, one process per service** (production's shape: a pod "
                f"each) | {sec} | **{mps}** | **{mbs}** | the same import, its own database "
                f"and topics; first activity at {first} |"
            )
    lines += _ratios(report)
    lines += _cpu_bound(report)
    lines += [
        "",
        "| Not in the figures | Seconds |",
        "|---|---:|",
        f"| Building the corpus ({n} messages, all cores) | {c.build_s:.1f} |",
        f"| Seeding the mailbox (`doveadm import` of a Maildir) | {report.seed_s:.1f} |",
    ]
    if f is not None:
        lines.append(f"| `start()` of the fetcher alone | {f.start_s:.1f} |")
    if p is not None:
        for name, seconds in p.startup_s.items():
            lines.append(f"| `start()` of {name} | {seconds:.1f} |")
    for run, what in ((p, "in one process"), (q, "one process per service")):
        if run is not None and run.cpu_s:
            lines += [
                "",
                f"CPU during the measured window, {what} ({run.window_s:.1f}s wall):",
                "",
                "| Process | CPU seconds | Share of one core |",
                "|---|---:|---:|",
            ]
            for name, seconds in sorted(run.cpu_s.items(), key=lambda kv: -kv[1]):
                share = seconds / run.window_s if run.window_s else 0.0
                lines.append(f"| {name} | {seconds:.1f} | {share:.0%} |")
    for run, what in ((p, ""), (q, " (one process per service)")):
        if run is not None:
            lines += [
                "",
                f"Checks{what}: raw-messages holds {run.raw_final} records, activities "
                f"{run.activities_final} documents, dead-letters {run.dead_letters} records "
                f"(expected {n}, {n}, 0). Times are when a probe polling every {POLL_S:.1f}s "
                "saw the count.",
            ]
    if report.notes:
        lines += ["", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def main(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    """Run the benchmark; return (markdown body, complete)."""
    report = run(messages, seed, timeout_s)
    return render(report), report.complete


# A hook for run.py: every benchmark is (heading, entry point).
BENCHMARK: tuple[str, Callable[[int, int, float], tuple[str, bool]]] = (HEADING, main)
