"""What the benchmarks share: servers, settings, the corpus, the services timed, rates.

No benchmark imports another's module: what two of them use lives here.

- servers and settings: :func:`servers` (Kafka, SecantusDB, Dovecot), :func:`overrides`,
  :func:`publish_account` (the bench user's account record);
- the corpus: :func:`build_corpus` (realistic mail, deterministic for a seed),
  :func:`seed_mailbox` (into Dovecot), :func:`prefill` (onto raw-messages, as the
  fetcher publishes it);
- what is compared with: :func:`imaplib_baseline`, :func:`bare_idle` (Dovecot's own
  IDLE delay);
- timing services: :class:`TimedService`, :class:`Started`, :class:`Probe`,
  :func:`fetcher_alone`, :func:`server_cpu_seconds`;
- rendering: :func:`rate`, :func:`steady_rate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import datetime as dt
import imaplib
import os
import random
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from devservers import DovecotServer, KafkaBroker, MailUser, SecantusServer
from devservers.corpus import CUSTOMERS, build
from schemas.account import AccountRecord, EncryptedSecret, Endpoint, PersonalOwnership, Security
from schemas.common import FolderRole
from schemas.topics import ACCOUNTS, RAW_MESSAGES, TAGGED_MESSAGES, TopicSpec
from services.accounts import publish_account as publish
from services.activity_writer.settings import WriterSettings
from services.cli import SERVICES
from services.common import garbage
from services.common.blobs import BlobStore
from services.common.kafka import ensure_topics, producer
from services.common.lifecycle import Service, run_services
from services.common.mongo import database, mongo_client
from services.common.process import configure_runtime
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings
from services.fetcher.publish import Publisher
from services.fetcher.settings import FetcherSettings
from services.fetcher.sync import batches
from services.imap import FetchedMessage, ImapSession, uid_set

ACCOUNT_ID = "bench"
USER = MailUser("bench@example.com", "bench-password")
COWORKER = ("Jana Nováková", "jana.novakova@example.com")
ATTACHMENT_SHARE = 0.3
BASELINE_BATCH = 500
FOLDER = "INBOX"
UIDVALIDITY = 1
MB = 1_000_000
SHUTDOWN_TIMEOUT_S = 15.0  # as tests/fixtures/pipeline.py's Running
# How often fetcher_alone reads the INBOX cursor. Its end is the last cursor's own
# ``updated_at`` (stamped as its write goes out), not when a poll saw it: the probe runs
# in the fetcher's process and on its event loop, and the 5 ms polls it made near the end
# (about 30 an import, ~0.4 ms of the process's CPU each and as much of SecantusDB's,
# on the 2 cores the import saturates) were the fetcher's cost in the figures.
FETCH_POLL_S = 0.1
# Set to a file name: the fetch (start() returned to the last cursor) is profiled into it.
PROFILE_ENV = "MAILSYNC_BENCH_PROFILE"


def log(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def quiesce() -> None:
    """Write back what earlier runs left in the page cache, before a timed run.

    A fetch run leaves its records (62 MB at 2,000 messages), and a bound three times
    that, dirty in the broker's page cache; the kernel writes them back once they are 30
    s old (``vm.dirty_expire_centisecs``), that is in the middle of some later run, whose
    figure then carries the flusher's CPU and the disk's queue (seen: up to 455 MB dirty
    between fetch_ab rounds). Synced first, each run starts with nothing to write back.
    """
    os.sync()


# -- servers and settings -----------------------------------------------------------------


@contextlib.contextmanager
def servers(work: Path) -> Iterator[tuple[KafkaBroker, SecantusServer, DovecotServer]]:
    with (
        KafkaBroker(work) as kafka,
        SecantusServer(work / "secantus" / "data") as secantus,  # durable: --sync-on-commit
        DovecotServer() as dovecot,
    ):
        yield kafka, secantus, dovecot


def service_environ(overrides: dict[str, Any]) -> dict[str, str]:
    """Settings as the environment a ``mailsync`` process reads."""
    out = {}
    for key, value in overrides.items():
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        out[f"MAILSYNC_{key.upper()}"] = text
    return out


def overrides_for(
    kafka: KafkaBroker, secantus: SecantusServer, data: Path, dovecot: DovecotServer | None = None
) -> dict[str, Any]:
    """Settings overrides as tests/fixtures/pipeline.py's ``env``, production defaults else;
    with ``dovecot``, the fetcher trusts its certificate."""
    out: dict[str, Any] = {
        "kafka_bootstrap": kafka.bootstrap,
        "mongo_uri": SecretStr(secantus.uri),
        "mongo_database": "bench",
        "secret_key": SecretStr(SecretBox.new_key()),
        "topic_prefix": "bench.",
        "data_dir": data,
        "log_level": "WARNING",
    }
    if dovecot is not None:
        assert dovecot.cert is not None
        out["fetcher_ca_file"] = dovecot.cert.cert
    return out


async def publish_account(settings: CommonSettings, imaps_port: int = 993) -> None:
    """The account record of the bench user (the corpus's recipient), as
    Env.account/publish_accounts build it; ``imaps_port`` is Dovecot's when a fetcher
    logs in (dedup and the writer never use it)."""
    box = SecretBox(settings.secret_key)
    record = AccountRecord(
        account_id=ACCOUNT_ID,
        address=USER.address,
        display_name="Bench Účet",
        ownership=PersonalOwnership(owner="owner-bench"),
        imap=Endpoint(
            host="127.0.0.1", port=imaps_port, security=Security.TLS, username=USER.address
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


# -- the corpus ---------------------------------------------------------------------------


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
        # As services.fetcher.new_mail publishes: each batch's records sent while the
        # broker acknowledges the batch before it.
        acks: list[asyncio.Task[None]] = []
        records = await publisher.records(
            ACCOUNT_ID, FOLDER, FolderRole.INBOX, UIDVALIDITY, len(fetched)
        )
        for i in range(0, len(fetched), step):
            batch = fetched[i : i + step]
            for m in batch:
                await records.add(m)
            await records.flush()
            sent = records.take_sent()
            acks.append(
                asyncio.create_task(publisher.acknowledged(ACCOUNT_ID, FOLDER, sent, len(batch)))
            )
            if len(acks) > 1:
                await acks.pop(0)
        await asyncio.gather(*acks)
        out.seconds = time.perf_counter() - began
    finally:
        await prod.stop()
        await mongo.close()
    return out


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


# -- timing services ----------------------------------------------------------------------


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


class Started:
    """A service already started: run_services only runs and cleans it up."""

    def __init__(self, service: Any):
        self.service, self.name = service, service.name

    async def start(self) -> None:
        return None

    async def run(self, stop: asyncio.Event) -> None:
        await self.service.run(stop)

    async def cleanup(self, failed: bool) -> None:
        await self.service.cleanup(failed)


async def run_as_production(
    services: Sequence[Service], stop: asyncio.Event, shutdown_timeout_s: float
) -> None:
    """``run_services`` with the process as ``mailsync <service>`` sets it
    (``services.common.process``): the collector's and malloc's thresholds first, then
    what the start built frozen once every service started."""
    configure_runtime()
    await run_services(services, stop, shutdown_timeout_s, on_started=garbage.freeze_started)


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
        return (await self.fetched_cursor())[0]

    async def fetched_cursor(self) -> tuple[int, float]:
        """The INBOX cursor's last UID and when the fetcher wrote it (epoch seconds, to
        the millisecond BSON keeps: ``FolderCursor.updated_at``); (0, 0.0) before any."""
        doc = await self._db["folder_cursors"].find_one({"_id": f"{ACCOUNT_ID}/INBOX"})
        if not doc:
            return 0, 0.0
        written: dt.datetime = doc["updated_at"]
        return int(doc["last_uid"]), written.replace(tzinfo=dt.UTC).timestamp()

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

    async def first_record_at(self, spec: TopicSpec) -> float | None:
        """When the topic's first record was produced (its CreateTime, as ``time.time()``),
        the earliest over its partitions; None when it is empty."""
        tps = [TopicPartition(self.settings.topic(spec), p) for p in range(spec.partitions)]
        ends = await self._consumer.end_offsets(tps)
        todo = {tp for tp in tps if ends[tp] > 0}
        self._consumer.assign(list(todo))
        await self._consumer.seek_to_beginning(*todo)
        first: float | None = None
        while todo:
            batches = await self._consumer.getmany(*todo, timeout_ms=200)
            for tp, records in batches.items():
                if records and tp in todo:
                    todo.discard(tp)
                    at = records[0].timestamp / 1000
                    first = at if first is None else min(first, at)
        return first


def _profiler() -> cProfile.Profile | None:
    """A running profiler when ``MAILSYNC_BENCH_PROFILE`` names a file to write it to."""
    if not os.environ.get(PROFILE_ENV):
        return None
    profile = cProfile.Profile()
    profile.enable()
    return profile


def _dump(profile: cProfile.Profile | None) -> None:
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ[PROFILE_ENV])
        log(f"profile of the fetch written to {os.environ[PROFILE_ENV]}")


@dataclass
class FetchRun:
    start_s: float = 0.0
    fetch_s: float | None = None  # from start() until the last cursor was written
    # From the first record's timestamp (the producer's clock, when the first message
    # was handed to it) until then: without logging in, listing and searching, as
    # bench.fetch_bound times its legs.
    transfer_s: float | None = None
    # From its first UID FETCH being sent until then: the span bench.fetch_bound times
    # its legs over (the first UID FETCH and the first send, after login), so the one
    # figure of the fetcher that compares with the bound like for like.
    from_fetch_s: float | None = None
    first_s: float | None = None
    at_first: int = 0
    records: int = 0
    error: str | None = None


def _watch_first_fetch(at: list[float]) -> Callable[[], None]:
    """Note in ``at`` when the process's first ``UID FETCH`` of bodies is sent (wall
    clock); returns what undoes the watch. The bench's hook into the fetcher's IMAP client,
    for this measurement only: nothing of the product reports that moment."""
    real = ImapSession.uid_fetch_each

    async def watched(
        self: ImapSession, uids: list[int], each: Callable[[FetchedMessage], None]
    ) -> None:
        if not at:
            at.append(time.time())
        await real(self, uids, each)

    ImapSession.uid_fetch_each = watched  # type: ignore[method-assign]

    def unwatch() -> None:
        ImapSession.uid_fetch_each = real  # type: ignore[method-assign]

    return unwatch


async def fetcher_alone(
    overrides: dict[str, Any], dovecot: DovecotServer, last_uid: int, timeout_s: float
) -> FetchRun:
    """Run the fetcher until the INBOX cursor reaches ``last_uid``."""
    out = FetchRun()
    await publish_account(CommonSettings(**overrides), dovecot.imaps_port)
    probe = Probe(overrides)
    await probe.start()
    configure_runtime()  # the collector and malloc as services.common.process sets them
    service: Any = SERVICES["fetcher"](dict(overrides))
    began = time.perf_counter()
    await service.start()
    started, started_at = time.perf_counter(), time.time()
    garbage.freeze_started()
    out.start_s = started - began
    stop = asyncio.Event()
    profile = _profiler()
    ended_at = 0.0
    first_fetch_at: list[float] = []
    unwatch = _watch_first_fetch(first_fetch_at)
    runner = asyncio.create_task(run_services([Started(service)], stop, SHUTDOWN_TIMEOUT_S))
    try:
        while True:
            if runner.done():
                runner.result()
                raise RuntimeError("the fetcher stopped unexpectedly")
            uid, written_at = await probe.fetched_cursor()
            now = time.perf_counter() - started
            if uid and out.first_s is None:
                out.first_s, out.at_first = written_at - started_at, uid
            if uid >= last_uid:
                out.fetch_s, ended_at = written_at - started_at, written_at
                _dump(profile)
                break
            if now > timeout_s:
                raise TimeoutError(f"the fetcher's cursor at UID {uid} of {last_uid}")
            await asyncio.sleep(FETCH_POLL_S)
        out.records = await probe.records(RAW_MESSAGES)
        first = await probe.first_record_at(RAW_MESSAGES)
        if first is not None:
            out.transfer_s = ended_at - first
        if first_fetch_at:
            out.from_fetch_s = ended_at - first_fetch_at[0]
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        log(f"fetcher failed: {out.error}")
    finally:
        unwatch()
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner, 60)
        await probe.stop()
    return out


# -- Dovecot's own IDLE delay ---------------------------------------------------------


def bare_idle(dovecot: DovecotServer, user: MailUser, messages: Sequence[bytes]) -> list[float]:
    """Dovecot's own IDLE delay: milliseconds from ``deliver()`` returning to ``EXISTS``,
    seen by a bare client (one IMAPS connection, EXAMINE INBOX, IDLE), one message a
    second so that no delivery falls in the previous one's notification delay."""
    assert dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(dovecot.cert.cert))
    raw = socket.create_connection(("127.0.0.1", dovecot.imaps_port), timeout=10)
    with tls.wrap_socket(raw, server_hostname="127.0.0.1") as conn, conn.makefile("rb") as f:

        def command(tag: str, text: str) -> None:
            conn.sendall(f"{tag} {text}\r\n".encode())
            while not (line := f.readline()).startswith((tag.encode(), b"+")):
                if not line:
                    raise ConnectionError("IMAP server closed the connection")

        f.readline()  # greeting
        command("a", f"LOGIN {user.address} {user.password}")
        command("b", "EXAMINE INBOX")
        command("c", "IDLE")
        time.sleep(1.0)
        out = []
        for message in messages:
            dovecot.deliver(user.address, message)
            returned = time.perf_counter()
            while b"EXISTS" not in f.readline():
                pass
            out.append((time.perf_counter() - returned) * 1000)
            time.sleep(1.0)
        conn.sendall(b"DONE\r\nd LOGOUT\r\n")
    return out


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
        pid: server_name(pid, comm) for pid, comm, ppid, sid, _ in rows if ppid == me and sid == pid
    }
    out: dict[str, float] = {}
    for _, _, _, sid, ticks in rows:
        if sid in leaders:
            out[leaders[sid]] = out.get(leaders[sid], 0.0) + ticks / tick
    return out


KAFKA_CPU_NAME = "kafka (JVM)"


def server_name(pid: int, comm: str) -> str:
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
