"""The fetcher against a real mail client, and how soon a new message is published.

What is measured, and why
-------------------------
Issue #3 asks two questions about the fetcher alone (no dedup, no writer): is its first
sync of a mailbox in the same league as a mature IMAP client's, and how long does a
message that arrives in a watched INBOX take to reach Kafka?

``--only mbsync`` (section "IMAP sync: fetcher vs mbsync"): one INBOX of N messages of
the pipeline benchmark's corpus (``bench._harness.build_corpus``, seeded with its
``doveadm import``), on Dovecot over IMAPS on loopback.

- **mbsync** (isync, Debian) pulls INBOX into a fresh local Maildir (``Sync Pull``,
  ``Create Near``, ``CertificateFile``; the configuration of
  ``tests/fixtures/mail_client.py``), timed as a subprocess: process start, TLS, login,
  ``UID FETCH`` of every message, each written as a file to disk (fsync'd, mbsync's
  default ``FSync yes``), and its own sync state. It runs twice, each time into a fresh
  Maildir with fresh state: the first pass also builds Dovecot's caches, the second is
  warm (as the fetcher is, after it).
- **Fetcher**: ``services.cli.SERVICES["fetcher"]`` as ``mailsync fetcher`` runs it
  (production settings; Apache Kafka, SecantusDB with ``--sync-on-commit``). The clock starts
  when its ``start()`` returned and stops when the INBOX cursor reaches the mailbox's
  last UID, i.e. every raw message is acknowledged on raw-messages (``acks=all``) and
  the cursor is saved in MongoDB; included are the account pick-up (reading the accounts
  topic, connect, TLS, login, folder listing), ``UID FETCH``, publish and the cursor and
  progress saves. ``start()`` itself (the consumer group join) is reported apart.

Both read the same bytes from the same server; what they do with them differs (files
and a state file, against Kafka records and MongoDB cursors), so the ratio says how the
fetcher's whole path compares with a client's whole path, not which IMAP code is faster.

``--only idle`` (section "IDLE latency"): the fetcher running on an INBOX it has
synced and is watching with IDLE (RFC 2177; INBOX has its own connection). K =
min(N, 200) messages are delivered over LMTP (``DovecotServer.deliver``, one LMTP
session each), one every ``SPACING_S`` seconds on a fixed schedule. A message's
latency is from its ``deliver`` call returning (the message is in the mailbox) to a
consumer, reading raw-messages from its end, receiving the record with that UID (the
``mailsync-meta`` header's location). The consumer runs in the same process and event
loop as the fetcher, with a short fetch wait (``CONSUMER_WAIT_MS``), so its own delay
is part of the figure; the latency to the record's timestamp (set by the fetcher's
producer when it sends the record, before the broker acknowledges it) is given too.
Before the fetcher starts, a bare IDLE client (``BARE_IDLE`` deliveries, one a second)
measures the IMAP server's own delay from delivery to ``EXISTS``, the floor of any
IDLE-based latency on this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench._harness import (
    MB,
    SHUTDOWN_TIMEOUT_S,
    USER,
    Corpus,
    FetchRun,
    Started,
    bare_idle,
    build_corpus,
    fetcher_alone,
    overrides_for,
    publish_account,
    rate,
    seed_mailbox,
    servers,
    steady_rate,
)
from devservers import DovecotServer, MailUser
from schemas.envelope import meta_header
from schemas.topics import RAW_MESSAGES
from services.cli import SERVICES
from services.common import garbage
from services.common.lifecycle import run_services
from services.common.logs import setup_logging
from services.common.process import configure_runtime
from services.common.settings import CommonSettings

MBSYNC_HEADING = "## IMAP sync: fetcher vs mbsync"
IDLE_HEADING = "## IDLE latency"
MBSYNC_PASSES = 2
IDLE_MAX = 200
SPACING_S = 0.2
CONSUMER_WAIT_MS = 10
BARE_IDLE = 5  # deliveries, one a second, to a bare IDLE client first
SETTLE_S = 1.0  # after the warm-up message, so the fetcher is back in IDLE
SHARED_NOTE = "Anything else running on the machine skews the figures."


def log(text: str) -> None:
    print(f"[bench.imap_sync] {text}", flush=True)


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


# -- mbsync -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MbsyncPass:
    seconds: float
    files: int
    bytes: int


def mbsync_pull(dovecot: DovecotServer, user: MailUser, workdir: Path) -> MbsyncPass:
    """``mbsync`` pulls INBOX into a fresh Maildir under ``workdir``; timed as a process."""
    assert dovecot.cert is not None
    workdir.mkdir(parents=True)
    local = workdir / "Maildir"
    local.mkdir()
    config = workdir / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount bench
Host 127.0.0.1
Port {dovecot.imaps_port}
User {user.address}
Pass {user.password}
SSLType IMAPS
CertificateFile {dovecot.cert.cert}

IMAPStore remote
Account bench

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel pull
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""
    )
    began = time.perf_counter()
    done = subprocess.run(
        ["mbsync", "-q", "-c", str(config), "pull"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"mbsync failed ({done.returncode}): {done.stderr.strip()}")
    files = [p for sub in ("cur", "new") for p in (local / "INBOX" / sub).iterdir()]
    return MbsyncPass(seconds, len(files), sum(p.stat().st_size for p in files))


# -- the report ---------------------------------------------------------------------------


@dataclass
class SyncReport:
    corpus: Corpus
    seed_s: float = 0.0
    mbsync: list[MbsyncPass] = field(default_factory=list)
    fetch: FetchRun | None = None
    load: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        f = self.fetch
        return (
            self.error is None
            and len(self.mbsync) == MBSYNC_PASSES
            and f is not None
            and f.fetch_s is not None
            and f.error is None
        )


def run_sync(messages: int, seed: int, timeout_s: float) -> SyncReport:
    setup_logging("WARNING")
    log(f"building {messages} messages (seed {seed})")
    report = SyncReport(build_corpus(messages, seed))
    with tempfile.TemporaryDirectory(prefix="mailsync-bench-imap-") as tmp:
        work = Path(tmp)
        with servers(work) as (kafka, secantus, dovecot):
            dovecot.add_user(USER.address, USER.password)
            report.seed_s = seed_mailbox(dovecot, USER, report.corpus.messages)
            last_uid = int(dovecot.status(USER.address, "INBOX")["uidnext"]) - 1
            report.load.append(f"{_load()} before mbsync")
            try:
                for i in range(1, MBSYNC_PASSES + 1):
                    p = mbsync_pull(dovecot, USER, work / f"mbsync-{i}")
                    report.mbsync.append(p)
                    log(f"mbsync pass {i}: {p.files} files in {p.seconds:.2f}s")
                report.load.append(f"{_load()} before the fetcher")
                overrides = overrides_for(kafka, secantus, work / "data", dovecot)
                report.fetch = asyncio.run(fetcher_alone(overrides, dovecot, last_uid, timeout_s))
                report.load.append(f"{_load()} after")
                log(f"fetcher: {report.fetch}")
            except Exception as exc:
                report.error = f"{type(exc).__name__}: {exc}"
                log(f"failed: {report.error}")
    return report


def render_sync(r: SyncReport) -> str:
    c, n = r.corpus, len(r.corpus.messages)
    total = c.total_bytes
    lines: list[str] = []
    if not r.complete:
        why = r.error or (r.fetch.error if r.fetch and r.fetch.error else "not finished")
        lines += [f"**INCOMPLETE RUN ({why})**: the figures below are what it had.", ""]
    lines += [
        f"Mailbox: one INBOX, {n} messages from `devservers.corpus.build` "
        f"({c.with_attachment} with a PDF attachment), {total / MB:.1f} MB in all, "
        f"{total / n / 1000:.1f} KB on average (1 MB = 10^6 bytes); Dovecot over IMAPS "
        "on loopback. Both clients read every message's full body (`BODY.PEEK[]`).",
        "",
        "| Client | Seconds | Messages/s | MB/s | What it includes |",
        "|---|---:|---:|---:|---|",
    ]
    best = min(r.mbsync, key=lambda p: p.seconds) if r.mbsync else None
    for i, p in enumerate(r.mbsync, 1):
        sec, mps, mbs = rate(n, total, p.seconds)
        what = "first pass, also builds Dovecot's caches" if i == 1 else "Dovecot warm"
        strong = "**" if p is best else ""
        lines.append(
            f"| mbsync (isync 1.4.4), pass {i} | {sec} | {strong}{mps}{strong} | "
            f"{strong}{mbs}{strong} | {what}; process start, TLS, login, FETCH, one fsync'd "
            f"file per message in a fresh Maildir ({p.files} files, {p.bytes / MB:.1f} MB) "
            "and its sync state |"
        )
    f = r.fetch
    if f is not None:
        sec, mps, mbs = rate(n, total, f.fetch_s)
        lines.append(
            f"| **mailsync fetcher** | {sec} | **{mps}** | **{mbs}** | from `start()` "
            "returned to the INBOX cursor at the last UID: account pick-up from Kafka, "
            "TLS, login, FETCH, publish to raw-messages (acks=all), cursor and progress "
            "saves in MongoDB (SecantusDB, `--sync-on-commit`) |"
        )
        steady = steady_rate(n, total, f.first_s, f.at_first, f.fetch_s)
        if steady is not None:
            sec, mps, mbs = steady
            lines.append(
                f"| fetcher after its first saved cursor | {sec} | {mps} | {mbs} | steady "
                f"state; the first poll to see a cursor saw UID {f.at_first} at "
                f"{f.first_s:.2f}s |"
            )
    if best is not None and f is not None and f.fetch_s:
        worst = max(p.seconds for p in r.mbsync)
        lines += [
            "",
            f"**Ratio**: the fetcher syncs this mailbox at **{best.seconds / f.fetch_s:.2f}×** "
            f"the rate of mbsync's faster pass ({worst / f.fetch_s:.2f}× its slower one). "
            "Above 1 means the fetcher is faster.",
        ]
    lines += [
        "",
        "| Not in the figures | Seconds |",
        "|---|---:|",
        f"| Building the corpus ({n} messages, all cores) | {c.build_s:.1f} |",
        f"| Seeding the mailbox (`doveadm import` of a Maildir) | {r.seed_s:.1f} |",
    ]
    if f is not None:
        lines.append(f"| `start()` of the fetcher (consumer group join) | {f.start_s:.1f} |")
        lines += [
            "",
            f"Checks: mbsync wrote {', '.join(str(p.files) for p in r.mbsync)} files; "
            f"raw-messages holds {f.records} records (expected {n} each). The fetcher's "
            "time ends when it wrote its last cursor (the cursor's own `updated_at`).",
        ]
    lines += [
        "",
        f"- {SHARED_NOTE} Load average (1 min): {', '.join(r.load)}.",
    ]
    return "\n".join(lines) + "\n"


def main_mbsync(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    report = run_sync(messages, seed, timeout_s)
    return render_sync(report), report.complete


# -- IDLE latency -------------------------------------------------------------------------


@dataclass
class IdleReport:
    k: int
    start_s: float = 0.0
    warmup_s: float | None = None
    bare_ms: list[float] = field(default_factory=list)  # deliver() returned -> EXISTS
    delivered: dict[int, float] = field(default_factory=dict)  # UID -> wall time returned
    deliver_s: list[float] = field(default_factory=list)  # each deliver() call's duration
    seen: dict[int, float] = field(default_factory=dict)  # UID -> wall time consumed
    stamped: dict[int, float] = field(default_factory=dict)  # UID -> record timestamp
    uid_check: str = ""
    load: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        return (
            self.error is None
            and len(self.delivered) == self.k
            and all(u in self.seen for u in self.delivered)
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class RawTail:
    """Reads raw-messages from its end; records when each UID's record arrived."""

    def __init__(self, settings: CommonSettings):
        self.settings = settings
        self.consumer: Any = None  # AIOKafkaConsumer (untyped)

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.require_kafka(),
            enable_auto_commit=False,
            fetch_max_wait_ms=CONSUMER_WAIT_MS,
        )
        await self.consumer.start()
        topic = self.settings.topic(RAW_MESSAGES)
        tps = [TopicPartition(topic, p) for p in range(RAW_MESSAGES.partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def run(self, seen: dict[int, float], stamped: dict[int, float]) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batches.values():
                for record in records:
                    meta = json.loads(meta_header(record.headers))
                    uid = int(meta["location"]["uid"])
                    if meta["location"]["folder"] == "INBOX" and uid not in seen:
                        seen[uid] = now
                        stamped[uid] = record.timestamp / 1000


async def _wait_for(cond: Any, timeout_s: float, what: str) -> float:
    began = time.perf_counter()
    while not cond():
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError(f"waited {timeout_s:.0f}s for {what}")
        await asyncio.sleep(0.01)
    return time.perf_counter() - began


def _deliver(dovecot: DovecotServer, message: bytes) -> tuple[float, float]:
    """Deliver over LMTP; (wall time the call returned, seconds it took)."""
    began = time.perf_counter()
    dovecot.deliver(USER.address, message)
    return time.time(), time.perf_counter() - began


async def measure_idle(
    overrides: dict[str, Any], dovecot: DovecotServer, corpus: Corpus, timeout_s: float
) -> IdleReport:
    k = len(corpus.messages) - 1 - BARE_IDLE
    out = IdleReport(k)
    deadline = time.perf_counter() + timeout_s
    # One message first: the INBOX exists, and the fetcher's first sync has one to read.
    dovecot.deliver(USER.address, corpus.messages[0])
    out.bare_ms = await asyncio.to_thread(
        bare_idle, dovecot, USER, corpus.messages[1 : 1 + BARE_IDLE]
    )
    log(f"bare IDLE client: EXISTS after {[round(x) for x in out.bare_ms]} ms")
    first_uid = int(dovecot.status(USER.address, "INBOX")["uidnext"])
    await publish_account(CommonSettings(**overrides), dovecot.imaps_port)
    tail = RawTail(CommonSettings(**overrides))
    configure_runtime()  # the collector and malloc as `mailsync fetcher` sets them
    service: Any = SERVICES["fetcher"](dict(overrides))
    began = time.perf_counter()
    await service.start()
    out.start_s = time.perf_counter() - began
    garbage.freeze_started()
    await tail.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_services([Started(service)], stop, SHUTDOWN_TIMEOUT_S))
    reader = asyncio.create_task(tail.run(out.seen, out.stamped))
    try:
        out.warmup_s = await _wait_for(
            lambda: runner.done() or (first_uid - 1) in out.seen, 60, "the first message"
        )
        if runner.done():
            runner.result()
        await asyncio.sleep(SETTLE_S)
        out.load.append(f"{_load()} before the deliveries")
        log(f"fetcher idle (first message after {out.warmup_s:.2f}s); delivering {k}")
        t0 = time.perf_counter()
        for i, message in enumerate(corpus.messages[1 + BARE_IDLE :]):
            delay = t0 + i * SPACING_S - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            returned, took = await asyncio.to_thread(_deliver, dovecot, message)
            out.delivered[first_uid + i] = returned
            out.deliver_s.append(took)
            if runner.done() or time.perf_counter() > deadline:
                break
        remaining = max(1.0, deadline - time.perf_counter())
        await _wait_for(
            lambda: runner.done() or all(u in out.seen for u in out.delivered),
            min(remaining, 60),
            "the last records",
        )
        if runner.done():
            runner.result()
        out.load.append(f"{_load()} after")
        uidnext = int(dovecot.status(USER.address, "INBOX")["uidnext"])
        expected = first_uid + len(out.delivered)
        out.uid_check = (
            f"INBOX UIDNEXT {uidnext} after the deliveries (expected {expected}: "
            "one UID per delivery, in order)"
        )
        if uidnext != expected:
            raise RuntimeError(out.uid_check)
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        log(f"idle failed: {out.error}")
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner, 60)
        await tail.stop()
    return out


def run_idle(messages: int, seed: int, timeout_s: float) -> IdleReport:
    setup_logging("WARNING")
    k = min(messages, IDLE_MAX)
    corpus = build_corpus(k + 1 + BARE_IDLE, seed)
    with tempfile.TemporaryDirectory(prefix="mailsync-bench-idle-") as tmp:
        work = Path(tmp)
        with servers(work) as (kafka, secantus, dovecot):
            dovecot.add_user(USER.address, USER.password)
            overrides = overrides_for(kafka, secantus, work / "data", dovecot)
            return asyncio.run(measure_idle(overrides, dovecot, corpus, timeout_s))


def render_idle(r: IdleReport) -> str:
    lines: list[str] = []
    if not r.complete:
        lines += [
            f"**INCOMPLETE RUN ({r.error or 'records missing'})**: "
            f"{sum(1 for u in r.delivered if u in r.seen)} of {r.k} messages seen; "
            "the figures below are what it had.",
            "",
        ]
    bare = ", ".join(f"{v:.0f}" for v in r.bare_ms) or "—"
    pairs = [(u, t) for u, t in r.delivered.items() if u in r.seen]
    consumed = [(r.seen[u] - t) * 1000 for u, t in pairs]
    stamped = [(r.stamped[u] - t) * 1000 for u, t in pairs]
    lines += [
        f"The fetcher (production settings; INBOX IDLEs on its own connection) watching an "
        f"INBOX it has synced; {len(r.delivered)} messages of the pipeline corpus delivered "
        f"over LMTP, one every {SPACING_S * 1000:.0f} ms. Latency from `deliver()` "
        "returning (the message is in the mailbox) to:",
        "",
        "| Latency (ms) to | n | p50 | p90 | p99 | max | min |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, values in (
        ("**record received** by a consumer tailing raw-messages", consumed),
        ("the record's timestamp (the fetcher's producer sent it)", stamped),
    ):
        if values:
            cells = [percentile(values, q) for q in (50, 90, 99)] + [max(values), min(values)]
            row = " | ".join(f"{v:.0f}" for v in cells)
            if label.startswith("**"):
                row = (
                    " | ".join(f"**{v:.0f}**" for v in cells[:3])
                    + " | "
                    + " | ".join(f"{v:.0f}" for v in cells[3:])
                )
            lines.append(f"| {label} | {len(values)} | {row} |")
    if r.deliver_s:
        d = [s * 1000 for s in r.deliver_s]
        lines += [
            "",
            f"Not in the figures: each LMTP `deliver()` took p50 {percentile(d, 50):.0f} ms, "
            f"max {max(d):.0f} ms; `start()` of the fetcher {r.start_s:.1f}s; the first "
            f"message (its initial sync) was published "
            f"{r.warmup_s if r.warmup_s is not None else float('nan'):.2f}s after `start()`, "
            f"then {SETTLE_S:.0f}s to settle in IDLE.",
        ]
    lines += [
        "",
        f"The consumer runs on the fetcher's event loop with `fetch_max_wait_ms` "
        f"{CONSUMER_WAIT_MS}; record timestamps are the producer's clock (the same host). "
        f"Checks: {r.uid_check or '—'}.",
        "",
        "Dovecot sends IDLE's `EXISTS` only when a timer armed by the change runs out "
        "(`NOTIFY_DELAY_MSECS` 500 in its index-mailbox-check.c). Measured in this run "
        f"before the fetcher started: a bare IDLE client got `EXISTS` {bare} ms after "
        f"each of {len(r.bare_ms)} `deliver()` calls one second apart. With deliveries "
        f"{SPACING_S * 1000:.0f} ms apart a timer armed by one message also announces the "
        "next ones, hence the spread below that delay; the fetcher's own part (`EXISTS` → "
        "`UID FETCH` → publish, acks=all) is about the minimum.",
        "",
        f"- {SHARED_NOTE} Load average (1 min): {', '.join(r.load) or '—'}.",
    ]
    return "\n".join(lines) + "\n"


def main_idle(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    report = run_idle(messages, seed, timeout_s)
    return render_idle(report), report.complete
