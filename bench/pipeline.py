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
  topics, before the pipeline runs): ``bench.imap_sync.fetcher_alone``, as the mbsync
  benchmark runs it. In the pipeline, dedup and the writer compete with the fetcher for
  the same cores (and the same event loop), so this is the figure to read against the
  imaplib baseline; both are given, with their ratio to it.
- **End to end**: from the same moment until N activity documents exist in MongoDB
  (fetch, dedup's two faust agents, the writer's bulk upserts): polled as the
  writer's committed offsets on tagged-messages (it commits after each bulk write
  returned), then confirmed by counting the activities.
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
  fetcher's Kafka leg (``Publisher.publish``, no IMAP) at the same moment in two
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
import contextlib
import datetime as dt
import imaplib
import os
import random
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from devservers import DovecotServer, KafkaBroker, MailUser, SecantusServer
from devservers.corpus import CUSTOMERS, build
from schemas.account import AccountRecord, EncryptedSecret, Endpoint, PersonalOwnership, Security
from schemas.topics import ACCOUNTS, DEAD_LETTERS, RAW_MESSAGES, TAGGED_MESSAGES, TopicSpec
from services.accounts import publish_account as publish
from services.activity_writer.settings import WriterSettings
from services.cli import SERVICES
from services.common.kafka import ensure_topics, producer
from services.common.lifecycle import Service, run_services
from services.common.logs import setup_logging
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings
from services.fetcher.sync import batches
from services.imap import uid_set

if TYPE_CHECKING:  # bench.imap_sync and bench.fetch_bound import this module
    from bench.fetch_bound import Bound
    from bench.imap_sync import FetchRun

HEADING = "## Pipeline end to end"
ACCOUNT_ID = "bench"
USER = MailUser("bench@example.com", "bench-password")
COWORKER = ("Jana Nováková", "jana.novakova@example.com")
ATTACHMENT_SHARE = 0.3
BASELINE_BATCH = 500
POLL_S = 0.2
PROGRESS_EVERY_S = 5.0
SHUTDOWN_TIMEOUT_S = 15.0  # as tests/fixtures/pipeline.py's Running
MB = 1_000_000


def log(text: str) -> None:
    print(f"[bench.pipeline] {text}", flush=True)


# -- corpus and seeding -------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    messages: list[bytes]
    with_attachment: int
    build_s: float

    @property
    def total_bytes(self) -> int:
        return sum(len(m) for m in self.messages)


def _one_message(seed: int) -> tuple[bytes, bool]:
    """One message from its own seed (a top-level function: it runs in a worker process)."""
    rng = random.Random(seed)
    sender = rng.choice(CUSTOMERS)
    cc = [COWORKER] if rng.random() < 0.2 else []
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=rng.randint(0, 525_600))
    attachment = rng.random() < ATTACHMENT_SHARE
    mail = build(rng, sender, [("Bench Účet", USER.address)], cc, date=when, attachment=attachment)
    return mail.message, attachment


def build_corpus(count: int, seed: int) -> Corpus:
    """``count`` messages from ``devservers.corpus.build``, deterministic for ``seed``.

    ``random.Random(seed)`` draws one seed per message, so the messages can be built in
    parallel (the attachments' random bytes make building slow) and still not depend on
    the number of workers.
    """
    began = time.perf_counter()
    master = random.Random(seed)
    seeds = [master.getrandbits(64) for _ in range(count)]
    workers = max(1, len(os.sched_getaffinity(0)))
    with ProcessPoolExecutor(workers) as pool:
        built = list(pool.map(_one_message, seeds, chunksize=max(1, count // (workers * 8))))
    return Corpus([m for m, _ in built], sum(1 for _, a in built if a), time.perf_counter() - began)


def seed_mailbox(dovecot: DovecotServer, user: MailUser, messages: Sequence[bytes]) -> float:
    """File ``messages`` into the user's INBOX with one ``doveadm import``; return seconds.

    The messages are written as a Maildir, which ``doveadm import`` copies into the
    mailbox in one process: about 6x faster than LMTP over one connection and 25x
    faster than one ``doveadm save`` per message (300 messages, on a 2-core VM).
    """
    began = time.perf_counter()
    source = Path(tempfile.mkdtemp(prefix="bench-import-", dir=dovecot.root))
    try:
        for sub in ("cur", "new", "tmp"):
            (source / sub).mkdir()
        for i, message in enumerate(messages):
            (source / "cur" / f"{1_700_000_000 + i}.M{i}P{os.getpid()}.bench:2,").write_bytes(
                message
            )
        # The Maildirs belong to the mail uid (Debian's `mail` when we run as root).
        owner = (dovecot.root / "mail").stat()
        for path in [source, *source.rglob("*")]:
            os.chown(path, owner.st_uid, owner.st_gid)
        dovecot.doveadm("import", "-u", user.address, f"maildir:{source}", "", "all")
    finally:
        shutil.rmtree(source, ignore_errors=True)
    stored = int(dovecot.status(user.address, "INBOX")["messages"])
    if stored != len(messages):
        raise RuntimeError(f"seeded {stored} messages, expected {len(messages)}")
    return time.perf_counter() - began


# -- the imaplib baseline -----------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    messages: int
    bytes: int
    fetch_s: float  # the UID FETCH round trips only
    session_s: float  # connect + TLS + login + EXAMINE + SEARCH + FETCH + LOGOUT
    fetch_began_at: float = 0.0  # time.time() when the first UID FETCH was sent


def imaplib_baseline(
    dovecot: DovecotServer,
    user: MailUser,
    batch: int,
    before_fetch: Callable[[], None] = lambda: None,
) -> Baseline:
    """Stdlib ``imaplib`` over one IMAPS connection: every message, ``batch`` UIDs a FETCH.

    ``before_fetch`` runs once logged in, just before the first FETCH (bench.fetch_bound
    starts two legs at the same moment with it)."""
    assert dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(dovecot.cert.cert))
    began = time.perf_counter()
    count = size = 0
    with imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=tls) as imap:
        imap.login(user.address, user.password)
        imap.select("INBOX", readonly=True)  # EXAMINE, as the fetcher opens folders
        _, data = imap.uid("SEARCH", "ALL")
        uids = [int(u) for u in (data[0] or b"").split()]
        before_fetch()
        fetch_began, began_at = time.perf_counter(), time.time()
        for chunk in batches(uids, batch):
            typ, data = imap.uid("FETCH", uid_set(chunk), "(BODY.PEEK[])")
            if typ != "OK":
                raise RuntimeError(f"UID FETCH failed: {typ} {data!r}")
            for item in data:
                if isinstance(item, tuple):
                    count += 1
                    size += len(item[1])
        fetch_s = time.perf_counter() - fetch_began
    return Baseline(count, size, fetch_s, time.perf_counter() - began, began_at)


# -- CPU accounting -----------------------------------------------------------------------


def server_cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each server we started, by its session leader's name
    (the Kafka broker's JVM as :data:`KAFKA_CPU_NAME`).

    Every launcher starts its server in a new session (``start_new_session``), so a
    server is the set of processes whose session id is the pid of one of our children
    (Dovecot's imap and auth processes included). Exited and reaped children count
    through their parent's ``cutime``/``cstime``. Linux only; empty elsewhere.
    """
    me = os.getpid()
    tick = os.sysconf("SC_CLK_TCK")
    rows: list[tuple[int, str, int, int, int]] = []  # pid, comm, ppid, sid, ticks
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.find("(") + 1 : stat.rfind(")")]
            f = stat[stat.rfind(")") + 2 :].split()
            ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
            rows.append((int(entry.name), comm, int(f[1]), int(f[3]), ticks))
    leaders = {
        pid: _server_name(pid, comm)
        for pid, comm, ppid, sid, _ in rows
        if ppid == me and sid == pid
    }
    out: dict[str, float] = {}
    for _, _, _, sid, ticks in rows:
        if sid in leaders:
            out[leaders[sid]] = out.get(leaders[sid], 0.0) + ticks / tick
    return out


KAFKA_CPU_NAME = "kafka (JVM)"


def _server_name(pid: int, comm: str) -> str:
    """A server's name in the CPU tables: its command, or ``kafka (JVM)`` for the broker.

    The broker is a ``java`` process whose main class is ``kafka.Kafka``
    (``devservers._kafka``); the name is checked on the command line, as ``java`` alone
    could be any JVM.
    """
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return comm
    if comm == "java" and b"kafka.Kafka" in argv:
        return KAFKA_CPU_NAME
    return comm


# -- the pipeline -------------------------------------------------------------------------


class TimedService:
    """A service whose ``start()`` is timed; ``run_services`` drives it like any other."""

    def __init__(self, inner: Service, marks: dict[str, tuple[float, float]]):
        self.inner = inner
        self.name: str = inner.name
        self._marks = marks

    async def start(self) -> None:
        began = time.monotonic()
        await self.inner.start()
        self._marks[self.name] = (began, time.monotonic())

    async def run(self, stop: asyncio.Event) -> None:
        await self.inner.run(stop)

    async def cleanup(self, failed: bool) -> None:
        await self.inner.cleanup(failed)


class Probe:
    """Reads what the pipeline produced: the fetcher's cursor, activities, topic records."""

    def __init__(self, overrides: dict[str, Any]):
        self.settings = WriterSettings(**overrides)
        self._consumer: Any = None  # AIOKafkaConsumer (untyped)
        self._admin: Any = None  # AIOKafkaAdminClient (untyped)
        self._mongo: AsyncMongoClient[dict[str, Any]] | None = None

    async def start(self) -> None:
        bootstrap = self.settings.require_kafka()
        # read_committed, as a downstream consumer reads: an open or aborted
        # transaction's records do not count.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
        )
        await self._consumer.start()
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-probe")
        await self._admin.start()
        self._mongo = AsyncMongoClient(self.settings.require_mongo(), tz_aware=True)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        if self._mongo is not None:
            await self._mongo.close()

    @property
    def _db(self) -> Any:
        assert self._mongo is not None
        return self._mongo[self.settings.mongo_database]

    async def fetched_uid(self) -> int:
        """The INBOX cursor's last UID: the fetcher saves it once a batch is acknowledged.

        The cursor, not the topic's end offsets (exact on Kafka), marks the stage's end:
        it is what the fetcher itself has finished, acknowledged and recorded.
        """
        doc = await self._db["folder_cursors"].find_one({"_id": f"{ACCOUNT_ID}/INBOX"})
        return int(doc["last_uid"]) if doc else 0

    async def written(self) -> int:
        """Tagged records the activity writer committed: it commits after the bulk write.

        Polled instead of counting activities: SecantusDB counts by scanning the
        collection, and counting every 0.2 s took a sixth of its time in a first run.
        """
        spec = TAGGED_MESSAGES
        tps = [TopicPartition(self.settings.topic(spec), p) for p in range(spec.partitions)]
        offsets = await self._admin.list_consumer_group_offsets(
            self.settings.writer_group, partitions=tps
        )
        return int(sum(max(0, o.offset) for o in offsets.values()))

    async def activities(self) -> int:
        return int(await self._db["activities"].count_documents({}))

    async def records(self, spec: TopicSpec, idle_s: float = 2.0) -> int:
        """Records in a topic, counted by reading it whole (until ``idle_s`` brings none)."""
        tps = [TopicPartition(self.settings.topic(spec), p) for p in range(spec.partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        count = 0
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            batches = await self._consumer.getmany(timeout_ms=200)
            got = sum(len(records) for records in batches.values())
            if got:
                count += got
                quiet_since = time.monotonic()
        return count


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
    ingest = ("fetcher", "dedup", "activity-writer")  # the sender has no part in an import
    services = [TimedService(SERVICES[name](dict(overrides)), marks) for name in ingest]
    probe = Probe(overrides)
    await probe.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_services(services, stop, SHUTDOWN_TIMEOUT_S))
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
        next_progress = started + PROGRESS_EVERY_S
        raw = activities = 0
        while True:
            if runner.done():
                runner.result()
                raise RuntimeError("services stopped unexpectedly")
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
                break
            if time.monotonic() >= next_progress:
                log(f"t={now:6.1f}s  raw {raw}/{expected}  activities {activities}/{expected}")
                next_progress += PROGRESS_EVERY_S
            if time.monotonic() > deadline:
                result.timed_out = True
                log(f"timed out at t={now:.1f}s: raw {raw}, activities {activities}")
                break
            await asyncio.sleep(POLL_S)
        result.window_s = time.monotonic() - started
        cpu_after = server_cpu_seconds()
        result.cpu_s["bench process (3 services, one loop)"] = time.process_time() - proc_before
        for name, seconds in cpu_after.items():
            result.cpu_s[name] = seconds - cpu_before.get(name, 0.0)
        result.raw_final = await probe.records(RAW_MESSAGES)
        result.activities_final = await probe.activities()
        result.dead_letters = await probe.records(DEAD_LETTERS)
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


# -- one run, and its report --------------------------------------------------------------


@dataclass
class Report:
    corpus: Corpus
    seed_s: float = 0.0
    baselines: list[Baseline] = field(default_factory=list)
    bound: Bound | None = None
    fetch_alone: FetchRun | None = None
    pipeline: PipelineRun | None = None
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


def _overrides(
    kafka: KafkaBroker, secantus: SecantusServer, dovecot: DovecotServer, data: Path
) -> dict[str, Any]:
    """Settings overrides as tests/fixtures/pipeline.py's ``env``, production defaults else."""
    assert dovecot.cert is not None
    return {
        "kafka_bootstrap": kafka.bootstrap,
        "mongo_uri": SecretStr(secantus.uri),
        "mongo_database": "bench",
        "secret_key": SecretStr(SecretBox.new_key()),
        "topic_prefix": "bench.",
        "data_dir": data,
        "fetcher_ca_file": dovecot.cert.cert,
        "log_level": "WARNING",
    }


async def publish_account(overrides: dict[str, Any], dovecot: DovecotServer) -> None:
    """The account record of the bench user, as Env.account/publish_accounts build it."""
    settings = CommonSettings(**overrides)
    box = SecretBox(settings.secret_key)
    record = AccountRecord(
        account_id=ACCOUNT_ID,
        address=USER.address,
        display_name="Bench Účet",
        ownership=PersonalOwnership(owner="owner-bench"),
        imap=Endpoint(
            host="127.0.0.1", port=dovecot.imaps_port, security=Security.TLS, username=USER.address
        ),
        secret=EncryptedSecret(ciphertext=box.encrypt(USER.password)),
        updated_at=dt.datetime.now(dt.UTC),
    )
    await ensure_topics(settings, [ACCOUNTS])
    prod = producer(settings, client_id="bench")
    await prod.start()
    try:
        await publish(prod, settings, record)
    finally:
        await prod.stop()


@contextlib.contextmanager
def _servers(work: Path) -> Iterator[tuple[KafkaBroker, SecantusServer, DovecotServer]]:
    with (
        KafkaBroker(work) as kafka,
        SecantusServer(work / "secantus" / "data") as secantus,  # durable: --sync-on-commit
        DovecotServer() as dovecot,
    ):
        yield kafka, secantus, dovecot


def run(messages: int, seed: int, timeout_s: float) -> Report:
    """The whole benchmark; stops at ``timeout_s`` and reports what it measured by then."""
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
        with _servers(work) as (kafka, secantus, dovecot):
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
            overrides = _overrides(kafka, secantus, dovecot, work / "data")
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
    return report


def _bound(dovecot: DovecotServer, overrides: dict[str, Any], corpus: Corpus) -> Bound:
    from bench.fetch_bound import measure  # it imports this module

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
    report: Report,
) -> None:
    from bench.imap_sync import fetcher_alone  # it imports this module

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
    report: Report,
) -> None:
    await publish_account(overrides, dovecot)
    log("account published; starting fetcher, dedup, activity-writer")
    before = os.getloadavg()
    report.pipeline = await measure_pipeline(overrides, messages, last_uid, deadline)
    after = os.getloadavg()
    report.notes.append(
        f"Load average (1 min) {before[0]:.2f} before the pipeline, {after[0]:.2f} after "
        f"(on {len(os.sched_getaffinity(0))} CPUs; anything else running skews the figures)."
    )


# -- rendering ----------------------------------------------------------------------------


def rate(count: int, nbytes: int, seconds: float | None) -> tuple[str, str, str]:
    """Seconds, messages/s and MB/s as table cells; dashes without a time."""
    if seconds is None or seconds <= 0:
        return "—", "—", "—"
    return f"{seconds:.2f}", f"{count / seconds:.0f}", f"{nbytes / seconds / MB:.2f}"


def steady_rate(
    count: int, nbytes: int, first_s: float | None, at_first: int, end_s: float | None
) -> tuple[str, str, str] | None:
    """The rate after the first poll that saw progress (``at_first`` of ``count`` done at
    ``first_s``) until ``end_s``: the steady state, without start-up; None without one."""
    if first_s is None or end_s is None or end_s <= first_s:
        return None
    left = count - at_first
    return rate(left, int(nbytes * left / count), end_s - first_s)


def _ratios(report: Report) -> list[str]:
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
                "that best case"
            )
    if not out:
        return []
    return [
        "",
        "**Ratio to the imaplib baseline** (messages/s over messages/s): " + "; ".join(out) + ".",
    ]


def _bound_rows(report: Report) -> list[str]:
    """The Kafka leg alone, and the best case of both legs at once (bench.fetch_bound)."""
    bound, n, total = report.bound, len(report.corpus.messages), report.corpus.total_bytes
    if bound is None:
        return []
    if bound.error:
        return [f"| Best case of the fetch stage | — | — | — | failed: {bound.error} |"]
    sec, mps, mbs = rate(n, total, bound.kafka_alone_s)
    rows = [
        f"| Kafka leg alone (`Publisher.publish`, the fetcher's batches, no IMAP) | {sec} | "
        f"{mps} | {mbs} | producer and Kafka broker only, acks=all; nothing else running |"
    ]
    sec, mps, mbs = rate(n, total, bound.together_s)
    rows.append(
        f"| **Best case of the fetch stage**: imaplib and the Kafka leg at once | {sec} | "
        f"**{mps}** | **{mbs}** | two processes started together, nothing shared; "
        f"meanwhile imaplib ran at {n / bound.imap_s:.0f} msgs/s and the Kafka leg at "
        f"{n / bound.kafka_s:.0f} (`bench.fetch_bound`) |"
    )
    return rows


def render(report: Report) -> str:
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
                f"| Fetch stage alone after the first batch | {sec} | {mps} | {mbs} | steady "
                f"state; the first poll to see a cursor saw UID {f.at_first} at "
                f"{f.first_s:.2f}s |"
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
                f"| Fetch stage after the first batch | {sec} | {mps} | {mbs} | steady state; "
                f"the first poll to see any saw {p.raw_at_first} acked at {p.first_raw_s:.2f}s |"
            )
        sec, mps, mbs = rate(n, total, p.end_to_end_s)
        first = f"{p.first_activity_s:.2f}s" if p.first_activity_s is not None else "—"
        lines.append(
            f"| **End to end** (IMAP → activities in MongoDB) | {sec} | **{mps}** | **{mbs}** | "
            f"from all services started; first activity at {first} |"
        )
    lines += _ratios(report)
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
    if p is not None and p.cpu_s:
        lines += [
            "",
            f"CPU during the measured window ({p.window_s:.1f}s wall):",
            "",
            "| Process | CPU seconds | Share of one core |",
            "|---|---:|---:|",
        ]
        for name, seconds in sorted(p.cpu_s.items(), key=lambda kv: -kv[1]):
            share = seconds / p.window_s if p.window_s else 0.0
            lines.append(f"| {name} | {seconds:.1f} | {share:.0%} |")
    if p is not None:
        lines += [
            "",
            f"Checks: raw-messages holds {p.raw_final} records, activities {p.activities_final} "
            f"documents, dead-letters {p.dead_letters} records (expected {n}, {n}, 0). "
            f"Times are when a probe polling every {POLL_S:.1f}s saw the count.",
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
