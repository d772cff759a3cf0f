"""Scale: one fetcher replica holding N accounts idle (issue #16).

``python -m bench.run --only scale --accounts 1000 2000`` (one run of servers per N).

What is measured, and why
-------------------------
Issue #16 sets the goal: **10,000 idle accounts on one fetcher replica in under 1 GiB of
RSS (at most 100 KiB each), under 5% of a core at idle for the replica and for the
database, delivery to activity p99 at most 1 s, and every account back idle within 2
minutes of an IMAP server restart.** This benchmark measures how far today's code is
from it, at the N this machine can hold, on real servers on loopback: Apache Kafka (one
KRaft node), SecantusDB (``--sync-on-commit``), and Dovecot configured for many
connections (``DovecotServer(max_connections=...)``: login processes in high-performance
mode, 50 sessions per imap process, Dovecot's 2-minute IDLE keepalive).

- **Accounts**: N Dovecot users, each saved as an account through the API's own code
  (``Accounts.create`` of :mod:`services.api.account_management`: MongoDB, then the
  accounts topic), 50 at a time, without the API's login check (``verify: false``: the
  fetcher's first login is the check). Each syncs INBOX and Sent, as a CRM account does
  (mail received and sent). Dovecot offers NOTIFY (RFC 5465): an idle account holds
  one session, IDLE on INBOX with Sent's changes pushed; the first import opens a
  second for Sent and closes it after, so Dovecot must hold up to 2N at once.
- **Processes**: the fetcher, dedup and the activity writer each in its own process
  (``python -m bench._service NAME``, which is ``mailsync NAME``), production settings
  (per-account metric series off, the default), so that each one's RSS and CPU are its
  own. The fetcher starts with no account; then the N accounts are saved.
- **Time to idle**: from the first save until the fetcher's ``mailsync_accounts{state=
  "idle"}`` (read from its ``/metrics`` every second) counts N.
- **RSS per account**: the fetcher's RSS (``VmRSS``) once all are idle and
  ``SETTLE_S`` later, minus its RSS before the first save, over N.
- **CPU at idle**: CPU seconds of each process (user + system, ``/proc``) over
  ``IDLE_WINDOW_S`` once all accounts are idle, as a share of one core: the fetcher,
  dedup, the writer, SecantusDB, the Kafka broker, Dovecot (all its processes).
- **Delivery to activity**: ``DELIVERIES`` messages delivered over LMTP to random
  accounts, one every ``SPACING_S`` (every ``SENT_EVERY``-th filed into the account's
  Sent instead, as a mail client's APPEND would, ``doveadm save``: with NOTIFY its
  change is pushed on the INBOX connection, RFC 5465); latency from ``deliver()`` returning to the
  activity found by a reader polling MongoDB every ``ACTIVITY_POLL_S`` (an upper bound
  by that much), and to its raw record read from raw-messages (the fetcher's part).
  The floor, measured in the same run with the N sessions open: a bare IDLE client
  (``bench._harness.bare_idle``) on a user that is no account.
- **Reconnect storm**: Dovecot restarted (every session dropped, as an upgrade does);
  the time until ``idle`` counts N again and every account has logged in again
  (Dovecot's log), and the peak of logins per second (that log, by second).
- **Rebalance**: a second fetcher replica joins the group, then is stopped (SIGTERM):
  how many accounts moved, the time until all N are idle again each way (goal: 30 s),
  and Dovecot's sessions per user sampled meanwhile (``doveadm who``): an idle account
  holds one, so a user with two means an account synced by two replicas at once. Each
  way's phases from the same polls: the new replica ready, the losing replica's accounts
  stopped, the first moved account running on the gaining one, the moved idle (50, 90,
  100%); Dovecot's logins by second; CPU per moved account of each process.
- **The bound** (after the rebalance, our services stopped): a bare asyncio client
  (:mod:`bench.session_bound`, no mailsync code) opens as many sessions as moved and as
  the storm brought back (TLS, LOGIN, SELECT INBOX, IDLE) to the same Dovecot at its best
  concurrency; the rebalance and the storm are given over it.
- **Where the memory goes** (first N only): a second fetcher process, on its own topics
  and database, starts ``tracemalloc`` (``MAILSYNC_BENCH_TRACEMALLOC``) just before its
  N accounts are saved and takes a snapshot once they are idle: what was allocated in
  between and is still held, by traceback (top 15), by innermost mailsync frame and by
  allocating package. tracemalloc sees Python's allocations only: what RSS has beyond
  it is native (OpenSSL's per-connection state and buffers, the allocator's arenas).

Dovecot falls back to polling every 30 s when ``fs.inotify.max_user_instances`` (per
mail uid; one instance per imap process) runs out: the bench raises it when it may
(root) and says what it needs otherwise. ``--timeout`` bounds each wait (all idle,
back idle, the last activity). Other processes on the machine skew every figure; the
load average is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from bench import session_bound as bare
from bench._harness import KAFKA_CPU_NAME, bare_idle, server_name, service_environ
from bench._service import TRACE_ENV, ours
from bench.session_bound import Opened
from devservers import DovecotServer, KafkaBroker, MailUser, SecantusServer
from devservers._dovecot import imap_processes
from devservers._process import ChildProcess, free_port
from schemas.account import Endpoint, Security
from schemas.topics import RAW_MESSAGES
from services.api.account_management import Accounts
from services.api.callers import Caller, Role, TokenTable
from services.api.models import AccountInput
from services.api.resources import open_resources
from services.api.settings import ApiSettings
from services.common.logs import setup_logging
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings

HEADING = "## Scale"
# Set to a directory: py-spy records the fetcher during the storm and each rebalance
# (collapsed stacks, ``py-spy record --format raw``); PYSPY_BIN_ENV names py-spy.
PYSPY_ENV = "MAILSYNC_BENCH_PYSPY"
PYSPY_BIN_ENV = "MAILSYNC_BENCH_PYSPY_BIN"
# Set (to anything): no idle window and no deliveries, for quicker rebalance work
# (the run then says it is incomplete).
QUICK_ENV = "MAILSYNC_BENCH_SCALE_QUICK"
# Set to a directory: the services' logs (at INFO) are copied there at the end, and
# py-spy records both replicas through the join as speedscope timelines (idle included:
# where the wall time goes, not only the CPU).
KEEP_ENV = "MAILSYNC_BENCH_SCALE_KEEP"
DEFAULT_ACCOUNTS = (1000, 2000)

# Issue #16's goal.
GOAL_ACCOUNTS = 10_000
GOAL_RSS_KIB = 1024 * 1024  # 1 GiB for the replica
GOAL_KIB_PER_ACCOUNT = 100
GOAL_CPU_PCT = 5.0
GOAL_P99_MS = 1000.0
GOAL_BACK_S = 120.0
GOAL_REBALANCE_S = 30.0
TRACE_AT_MOST = 2000  # accounts: the tracemalloc run is skipped beyond

FOLDERS = ("INBOX", "Sent")
SESSIONS_PER_ACCOUNT = 2  # at most: the first import's second connection (then one)
SAVE_CONCURRENCY = 50
POLL_S = 1.0
STORM_POLL_S = 0.5
SETTLE_S = 15.0
IDLE_WINDOW_S = 60.0
DELIVERIES = 100
SPACING_S = 0.5
SENT_EVERY = 4  # every fourth probe filed into Sent: 25 of the 100
ACTIVITY_POLL_S = 0.1
# After the last delivery, how long the missing activities are waited for at most: a
# message the fetcher missed would otherwise hold the run until --timeout.
LAST_ACTIVITY_WAIT_S = 300.0
BARE_IDLE = 5
READY_TIMEOUT_S = 180.0
SNAPSHOT_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 60.0
# inotify instances beyond the imap processes' own: the mail uid's other processes,
# and other Dovecot instances on the machine (tests running beside the bench).
INOTIFY_SPARE = 512
INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")
ADMIN = Caller(user_id="bench-admin", role=Role.ADMIN)
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
TICK = os.sysconf("SC_CLK_TCK")
LOGIN = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) imap-login: Info: Login: user=<([^>]+)>")
PROBE = re.compile(rb"scale-probe-[0-9a-f]+-\d{3}")


def log(text: str) -> None:
    print(f"[bench.scale] {text}", flush=True)


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


# -- processes: ours and the servers' ------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    rss_kib: int  # summed over the session's processes
    private_kib: int  # RSS minus shared pages, summed: what the session itself holds
    processes: int
    cpu_by_pid: dict[int, float] = field(default_factory=dict)


def _read_proc(pid: int) -> tuple[str, int, int, int, int, int] | None:
    """(comm, ppid, session, CPU ticks, RSS pages, shared pages) of a live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    comm = stat[stat.find("(") + 1 : stat.rfind(")")]
    f = stat[stat.rfind(")") + 2 :].split()
    return comm, int(f[1]), int(f[3]), int(f[11]) + int(f[12]), int(statm[1]), int(statm[2])


def sessions(names: dict[int, str]) -> dict[str, Usage]:
    """CPU seconds and memory of each process session we started (a server, or one of
    ``names``, our services by pid), summed over its processes (Dovecot's are many).
    Unlike ``server_cpu_seconds`` the exited children do not count: only what runs."""
    rows = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (row := _read_proc(int(entry.name))) is not None:
            rows[int(entry.name)] = row
    me = os.getpid()
    leaders = {
        pid: names.get(pid) or server_name(pid, comm)
        for pid, (comm, ppid, sid, *_) in rows.items()
        if ppid == me and sid == pid
    }
    cpu: Counter[str] = Counter()
    rss: Counter[str] = Counter()
    private: Counter[str] = Counter()
    count: Counter[str] = Counter()
    by_pid: dict[str, dict[int, float]] = {}
    for pid, (_, _, sid, ticks, resident, shared) in rows.items():
        if sid in leaders:
            name = leaders[sid]
            cpu[name] += ticks
            rss[name] += resident * PAGE_KIB
            private[name] += (resident - shared) * PAGE_KIB
            count[name] += 1
            by_pid.setdefault(name, {})[pid] = ticks / TICK
    return {
        n: Usage(cpu[n] / TICK, rss[n], private[n], count[n], by_pid.get(n, {}))
        for n in leaders.values()
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


Samples = list[tuple[str, dict[str, str], float]]


class ServiceProcess:
    """One mailsync service as its own process (``python -m bench._service NAME``)."""

    def __init__(
        self,
        name: str,
        overrides: dict[str, Any],
        work: Path,
        traced: Path | None,
        service: str | None = None,
    ):
        """``name`` the process's (its data directory and log); ``service`` the mailsync
        service it runs, when not its name (a second fetcher replica)."""
        self.name = name
        self.port = free_port()
        env = service_environ(
            {
                **overrides,
                "metrics_host": "127.0.0.1",
                "metrics_port": self.port,
                "data_dir": work / f"data-{name}",
                "log_format": "text",
            }
        )
        if traced is not None:
            env[TRACE_ENV] = str(traced)
        argv = [sys.executable, "-m", "bench._service", service or name]
        self.log = work / f"{name}{'-traced' if traced else ''}.log"
        self._proc = ChildProcess(name, argv, self.log, env)

    @property
    def pid(self) -> int:
        pid = self._proc.pid
        if pid is None:
            tail = (
                self.log.read_text(errors="replace").splitlines()[-5:] if self.log.exists() else []
            )
            raise RuntimeError(f"{self.name} is not running; its log ends: {' | '.join(tail)}")
        return pid

    def start(self) -> None:
        self._proc.start()

    def stop(self) -> None:
        self._proc.stop(STOP_TIMEOUT_S)

    def signal(self, sig: int) -> None:
        self._proc.send_signal(sig)

    async def samples(self, http: aiohttp.ClientSession) -> Samples:
        async with http.get(f"http://127.0.0.1:{self.port}/metrics") as resp:
            text = await resp.text()
        return [
            (s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        began = time.monotonic()
        while time.monotonic() - began < READY_TIMEOUT_S:
            self.pid  # noqa: B018  (raises, naming the log, once the process died)
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready after {READY_TIMEOUT_S:.0f}s ({self.log})")


def cpu_between(
    first: dict[str, Usage], last: dict[str, Usage], seconds: float
) -> dict[str, float]:
    """Each process's CPU between two :func:`sessions` readings, in % of one core: per
    process (Dovecot's come and go), what those alive at the end used since the first
    reading or since they started; what exited meanwhile is not seen (a lower bound)."""

    def used(a: Usage, b: Usage) -> float:
        return sum(cpu - a.cpu_by_pid.get(pid, 0.0) for pid, cpu in b.cpu_by_pid.items())

    return {
        name: used(first[name], last[name]) / seconds * 100
        for name in last
        if name in first and seconds > 0
    }


RETRY = re.compile(r"mailsync\.fetcher\.supervisor: \S+: (.*?); retry \d+ in")


def retries(path: Path, start: int) -> tuple[Counter[str], int]:
    """The fetcher's account retries logged from byte ``start`` on, by reason (numbers
    blanked, so that one reason is one line); and where the log ends now."""
    with path.open("rb") as f:
        f.seek(start)
        text = f.read()
    out: Counter[str] = Counter()
    for m in RETRY.finditer(text.decode(errors="replace")):
        out[re.sub(r"\d+(\.\d+)?", "N", m.group(1))] += 1
    return out, start + len(text)


def account_states(samples: Samples) -> dict[str, float]:
    return {lab["state"]: v for n, lab, v in samples if n == "mailsync_accounts" and v}


def gauge(samples: Samples, name: str) -> float | None:
    return next((v for n, _, v in samples if n == name), None)


# -- the accounts --------------------------------------------------------------------------


def users(n: int) -> list[MailUser]:
    return [MailUser(f"user{i:05d}@scale.example", f"pw-{i:05d}-scale") for i in range(n)]


def account_id(user: MailUser) -> str:
    return f"scale-{user.address.split('@')[0]}"


async def save_accounts(
    overrides: dict[str, Any], people: Sequence[MailUser], imaps_port: int
) -> float:
    """Every account through the API's own code, ``SAVE_CONCURRENCY`` at a time; seconds."""
    settings = ApiSettings(**overrides)
    began = time.monotonic()
    async with open_resources(settings, TokenTable({}), client_id="bench-scale") as res:
        accounts = Accounts(res)
        gate = asyncio.Semaphore(SAVE_CONCURRENCY)

        async def one(user: MailUser) -> None:
            data = AccountInput(
                account_id=account_id(user),
                address=user.address,
                display_name=user.address.split("@")[0],
                imap=Endpoint(
                    host="127.0.0.1",
                    port=imaps_port,
                    security=Security.TLS,
                    username=user.address,
                ),
                password=SecretStr(user.password),
                folders=FOLDERS,
                verify=False,
            )
            async with gate:
                await accounts.create(ADMIN, data)

        await asyncio.gather(*(one(u) for u in people))
    return time.monotonic() - began


@dataclass
class IdleUp:
    saved_s: float = 0.0
    idle_s: float | None = None  # from the first save until all were idle
    reached: dict[int, float] = field(default_factory=dict)  # percent -> seconds
    states: dict[str, float] = field(default_factory=dict)  # at the end
    connections: float | None = None
    max_lag_s: float = 0.0  # the fetcher's event loop lag gauge, the highest seen
    cpu_pct: dict[str, float] = field(default_factory=dict)  # from the first save to idle
    retries: Counter[str] = field(default_factory=Counter)  # the fetcher's, by reason


async def wait_idle(
    http: aiohttp.ClientSession,
    fetcher: ServiceProcess,
    n: int,
    began: float,
    timeout_s: float,
    out: IdleUp,
) -> None:
    """Until the fetcher counts ``n`` accounts idle (or ``timeout_s`` from ``began``)."""
    while True:
        samples = await fetcher.samples(http)
        out.states = account_states(samples)
        out.connections = gauge(samples, "mailsync_imap_connections")
        out.max_lag_s = max(out.max_lag_s, gauge(samples, "mailsync_event_loop_lag_seconds") or 0)
        idle = out.states.get("idle", 0)
        now = time.monotonic() - began
        for pct in (50, 90, 100):
            if pct not in out.reached and idle >= n * pct / 100:
                out.reached[pct] = now
        if idle >= n:
            out.idle_s = now
            return
        if now > timeout_s:
            raise TimeoutError(f"{idle:.0f} of {n} accounts idle after {now:.0f}s: {out.states}")
        await asyncio.sleep(POLL_S)


# -- delivery to activity ------------------------------------------------------------------


def probe_message(token: str, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Probe Customer <probe@customer.example>"
    msg["To"] = to
    msg["Subject"] = token
    msg["Message-ID"] = f"<{token}@customer.example>"
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg.set_content(f"A message to time, {token}.\n")
    return msg.as_bytes()


@dataclass
class Latency:
    bare_ms: list[float] = field(default_factory=list)
    delivered: dict[str, float] = field(default_factory=dict)  # token -> wall time
    to: dict[str, str] = field(default_factory=dict)  # token -> the account's address
    deliver_ms: list[float] = field(default_factory=list)
    raw: dict[str, float] = field(default_factory=dict)  # token -> record read
    activity: dict[str, float] = field(default_factory=dict)  # token -> activity found
    folder: dict[str, str] = field(default_factory=dict)  # token -> INBOX or Sent
    max_lag_s: float = 0.0  # the fetcher's event loop lag gauge meanwhile, the highest seen

    def ms(self, seen: dict[str, float], folder: str | None = None) -> list[float]:
        return [
            (seen[t] - at) * 1000
            for t, at in self.delivered.items()
            if t in seen and folder in (None, self.folder.get(t, "INBOX"))
        ]

    def late(self, over_ms: float) -> tuple[int, int]:
        """Deliveries whose activity took more than ``over_ms``, and how many of them
        followed another delivery to the same account that was not yet an activity."""
        late = followed = 0
        for token, at in self.delivered.items():
            if (self.activity.get(token, float("inf")) - at) * 1000 <= over_ms:
                continue
            late += 1
            followed += any(
                self.to[other] == self.to[token]
                and before < at
                and self.activity.get(other, float("inf")) > at
                for other, before in self.delivered.items()
                if other != token
            )
        return late, followed


async def _tail_raw(settings: CommonSettings, seen: dict[str, float], ready: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.require_kafka(), enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        topic = settings.topic(RAW_MESSAGES)
        tps = [TopicPartition(topic, p) for p in range(RAW_MESSAGES.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, not at the first getmany
            await consumer.position(tp)
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batches.values():
                for record in records:
                    for token in PROBE.findall(record.value or b""):
                        seen.setdefault(token.decode(), now)
    finally:
        await consumer.stop()


async def _poll_activities(
    settings: CommonSettings, pending: set[str], seen: dict[str, float]
) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.require_mongo())
    try:
        activities = mongo[settings.mongo_database]["activities"]
        while True:
            wanted = sorted(pending - seen.keys())
            if wanted:
                found = activities.find({"subject": {"$in": wanted}}, {"subject": 1})
                async for doc in found:
                    seen.setdefault(doc["subject"], time.time())
            await asyncio.sleep(ACTIVITY_POLL_S)
    finally:
        await mongo.close()


async def _lag(http: aiohttp.ClientSession, proc: ServiceProcess) -> float:
    return gauge(await proc.samples(http), "mailsync_event_loop_lag_seconds") or 0.0


async def deliveries(
    overrides: dict[str, Any],
    dovecot: DovecotServer,
    people: Sequence[MailUser],
    floor_user: MailUser,
    rng: random.Random,
    timeout_s: float,
    lag: Callable[[], Awaitable[float]],
) -> Latency:
    out = Latency()
    nonce = f"{rng.getrandbits(32):08x}"
    floor = [
        probe_message(f"scale-probe-{nonce}-{900 + i}", floor_user.address)
        for i in range(BARE_IDLE)
    ]
    out.bare_ms = await asyncio.to_thread(bare_idle, dovecot, floor_user, floor)
    log(f"bare IDLE client: EXISTS after {[round(x) for x in out.bare_ms]} ms")
    settings = CommonSettings(**overrides)
    ready = asyncio.Event()
    tail = asyncio.create_task(_tail_raw(settings, out.raw, ready))
    pending: set[str] = set()
    poller = asyncio.create_task(_poll_activities(settings, pending, out.activity))

    async def lagging() -> None:
        while True:
            out.max_lag_s = max(out.max_lag_s, await lag())
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(lagging())
    try:
        await asyncio.wait_for(ready.wait(), 60)
        began = time.monotonic()
        for i in range(DELIVERIES):
            delay = began + i * SPACING_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            token = f"scale-probe-{nonce}-{i:03d}"
            to = rng.choice(people).address
            took = time.perf_counter()
            if i % SENT_EVERY == SENT_EVERY - 1:
                await asyncio.to_thread(dovecot.save, to, "Sent", probe_message(token, to))
                out.folder[token] = "Sent"
            else:
                await asyncio.to_thread(dovecot.deliver, to, probe_message(token, to))
                out.folder[token] = "INBOX"
            out.delivered[token] = time.time()
            out.to[token] = to
            out.deliver_ms.append((time.perf_counter() - took) * 1000)
            pending.add(token)
        waited = time.monotonic()
        while pending - out.activity.keys() and time.monotonic() - waited < timeout_s:
            for task in (tail, poller):
                if task.done():
                    task.result()
            await asyncio.sleep(0.2)
    finally:
        for task in (tail, poller, watcher):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    return out


# -- the reconnect storm -------------------------------------------------------------------


@dataclass
class Storm:
    restart_s: float = 0.0  # Dovecot stopped, started, answering again
    back_s: float | None = None  # from the restart until all idle and all logged in again
    logins: int = 0
    users: int = 0
    per_second: list[int] = field(default_factory=list)  # logins, by second of the log
    lowest_idle: float | None = None
    most_errors: float = 0.0
    states: dict[str, float] = field(default_factory=dict)
    max_lag_s: float = 0.0
    cpu_pct: dict[str, float] = field(default_factory=dict)  # from the restart to back
    retries: Counter[str] = field(default_factory=Counter)

    @property
    def peak(self) -> int:
        return max(self.per_second, default=0)


async def storm(
    http: aiohttp.ClientSession,
    fetcher: ServiceProcess,
    dovecot: DovecotServer,
    n: int,
    timeout_s: float,
    names: dict[int, str],
) -> Storm:
    out = Storm()
    path = dovecot.root / "dovecot.log"
    logins: list[tuple[str, str]] = []
    _, fetcher_log = retries(fetcher.log, 0)
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        first = sessions(names)
        spy = _profile(fetcher, "storm")
        began = time.monotonic()
        await asyncio.to_thread(dovecot.restart)
        out.restart_s = time.monotonic() - began
        log(f"Dovecot restarted in {out.restart_s:.1f}s")
        carry = b""
        while True:
            chunk = carry + f.read()
            lines = chunk.split(b"\n")
            carry = lines.pop()
            for line in lines:
                if m := LOGIN.match(line.decode(errors="replace")):
                    logins.append((m.group(1), m.group(2)))
            samples = await fetcher.samples(http)
            out.states = account_states(samples)
            out.max_lag_s = max(
                out.max_lag_s, gauge(samples, "mailsync_event_loop_lag_seconds") or 0
            )
            idle = out.states.get("idle", 0)
            out.lowest_idle = idle if out.lowest_idle is None else min(out.lowest_idle, idle)
            out.most_errors = max(out.most_errors, out.states.get("error", 0))
            now = time.monotonic() - began
            if idle >= n and len({u for _, u in logins}) >= n:
                out.back_s = now
                break
            if now > timeout_s:
                log(f"not back after {now:.0f}s: {out.states}")
                break
            await asyncio.sleep(STORM_POLL_S)
        _stop_profile(spy)
        out.cpu_pct = cpu_between(first, sessions(names), time.monotonic() - began)
        # Not Dovecot: the restart replaced its processes, their CPU is not comparable.
        out.cpu_pct.pop("dovecot", None)
    out.retries, _ = retries(fetcher.log, fetcher_log)
    out.logins, out.users = len(logins), len({u for _, u in logins})
    by_second = Counter(stamp for stamp, _ in logins)
    out.per_second = [by_second[s] for s in sorted(by_second, key=_stamp_order)]
    return out


# -- rebalance: a second replica joins, then leaves -------------------------------------


@dataclass
class Move:
    """One way of a rebalance, from the bench's polls (every ``POLL_S``), in seconds
    from the second replica's start (join) or its SIGTERM (leave)."""

    ready_s: float | None = None  # join: the new replica answers /readyz
    drop_s: float | None = None  # the losing replica runs fewer accounts than before
    released_s: float | None = None  # ... as few as it will (leave: its process exited)
    gain_s: float | None = None  # the gaining replica runs a moved account
    idle_at: dict[int, float] = field(default_factory=dict)  # % of the moved idle -> s
    logins: list[int] = field(default_factory=list)  # Dovecot's logins, by second
    cpu_pct: dict[str, float] = field(default_factory=dict)  # over the move
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds over the move
    lag_s: float = 0.0  # the gaining replica's loop lag, the highest seen
    gc_s: float | None = None  # its garbage collector's pauses over the move


@dataclass
class Rebalance:
    """A second fetcher replica started, then stopped (SIGTERM), on the same accounts."""

    moved: int = 0  # accounts the second replica ran once the group settled
    joined_s: float | None = None  # its start until all N idle again, split over both
    left_s: float | None = None  # its stop until the first runs all N idle again
    most_sessions: int = 0  # the most IMAP sessions one user held at once (doveadm who)
    doubled: int = 0  # samples in which some user held two or more
    join: Move = field(default_factory=Move)
    leave: Move = field(default_factory=Move)


def _sessions_by_user(dovecot: DovecotServer) -> Counter[str]:
    """IMAP sessions per user now, as Dovecot counts them (``doveadm who -1``)."""
    out = dovecot.doveadm("who", "-1")
    return Counter(line.split()[0] for line in out.splitlines()[1:] if line.strip())


class _LoginLog:
    """Dovecot's ``Login:`` lines from now on, by second."""

    def __init__(self, dovecot: DovecotServer):
        self._f = (dovecot.root / "dovecot.log").open("rb")
        self._f.seek(0, os.SEEK_END)
        self._carry = b""
        self.stamps: list[str] = []

    def read(self) -> None:
        lines = (self._carry + self._f.read()).split(b"\n")
        self._carry = lines.pop()
        for line in lines:
            if m := LOGIN.match(line.decode(errors="replace")):
                self.stamps.append(m.group(1))

    def per_second(self) -> list[int]:
        self.read()
        self._f.close()
        by_second = Counter(self.stamps)
        return [by_second[s] for s in sorted(by_second, key=_stamp_order)]


def _secantus_pid() -> int | None:
    """The SecantusDB server's pid (our child of that name), to profile it too."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (row := _read_proc(int(entry.name))) is not None:
            comm, ppid, sid = row[0], row[1], row[2]
            if ppid == os.getpid() and sid == int(entry.name) and comm.startswith("secantusd"):
                return int(entry.name)
    return None


def _profile(proc: ServiceProcess, phase: str) -> list[subprocess.Popen[bytes]]:
    """py-spy recording ``proc`` (and SecantusDB) while ``phase`` runs, when ``PYSPY_ENV``
    names a directory (and ``PYSPY_BIN_ENV`` py-spy, if not on the PATH): collapsed
    stacks."""
    directory = os.environ.get(PYSPY_ENV)
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    targets = [(proc.pid, proc.name)]
    if (db := _secantus_pid()) is not None:
        targets.append((db, "secantus"))
    return [_spy(pid, Path(directory) / f"{phase}-{name}.txt") for pid, name in targets]


def _spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    argv = [
        os.environ.get(PYSPY_BIN_ENV, "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--rate",
        "50",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
    ]
    with out.with_suffix(".log").open("ab") as log_file:
        return subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)


def _timelines(*procs: ServiceProcess) -> list[subprocess.Popen[bytes]]:
    """Speedscope timelines of ``procs`` (idle stacks included) when ``KEEP_ENV`` names
    a directory."""
    directory = os.environ.get(KEEP_ENV)
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    out = []
    for proc in procs:
        argv = [
            os.environ.get(PYSPY_BIN_ENV, "py-spy"),
            "record",
            "--pid",
            str(proc.pid),
            "--rate",
            "100",
            "--idle",
            "--format",
            "speedscope",
            "--nonblocking",
            "--output",
            str(Path(directory) / f"join-{proc.name}.speedscope.json"),
        ]
        with (Path(directory) / f"join-{proc.name}.spy.log").open("ab") as log_file:
            out.append(subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT))
    return out


def _keep_logs(directory: Path, logs: list[Path]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for path in logs:
        if path.exists():
            shutil.copy(path, directory / path.name)


def _stop_profile(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for spy in spies:
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


async def rebalance(
    http: aiohttp.ClientSession,
    fetcher: ServiceProcess,
    second: ServiceProcess,
    dovecot: DovecotServer,
    n: int,
    timeout_s: float,
    names: dict[int, str],
) -> Rebalance:
    """Start ``second``: how long until the N accounts are idle split over both, how many
    moved; stop it: how long until the first runs all N idle again. Dovecot's sessions
    per user are sampled all along: an account synced by two replicas at once would show
    as a user with two (an idle account holds one; the moved ones are imported). Each
    way's phases (:class:`Move`) from the same polls."""
    out = Rebalance()

    async def sample() -> None:
        most = max(_sessions_by_user(dovecot).values(), default=0)
        out.most_sessions = max(out.most_sessions, most)
        out.doubled += most >= 2

    gc_s: dict[str, float] = {}  # each replica's garbage collector pauses so far, s

    async def states(proc: ServiceProcess) -> tuple[float, float, float]:
        """(accounts run, idle, loop lag); zeros once the process is gone."""
        try:
            samples = await proc.samples(http)
        except (aiohttp.ClientError, OSError):
            return 0.0, 0.0, 0.0
        by_state = account_states(samples)
        lag = gauge(samples, "mailsync_event_loop_lag_seconds") or 0.0
        gc_s[proc.name] = sum(v for n, _, v in samples if n == "mailsync_gc_pause_seconds_sum")
        return sum(by_state.values()), by_state.get("idle", 0.0), lag

    def track(move: Move, now: float, lost: float, gained: float, base: float) -> None:
        """The losing replica runs ``lost`` accounts (it ran ``base``), the gaining one
        ``gained`` of the moved."""
        if move.drop_s is None and lost < base:
            move.drop_s = now
        if move.gain_s is None and gained > 0:
            move.gain_s = now

    logins = _LoginLog(dovecot)
    first = sessions(names)
    began = time.monotonic()
    second.start()
    spy = _timelines(fetcher, second)
    await second.wait_ready(http)
    out.join.ready_s = time.monotonic() - began
    names[second.pid] = second.name
    first[second.name] = Usage(0.0, 0, 0, 0, {})
    spy += _profile(second, "join")
    settled = 0
    joining: list[tuple[float, float, float, float]] = []  # (s, replica 1 runs, 2 runs, 2 idle)
    while out.joined_s is None:
        await sample()
        (run1, one, _), (run2, two, lag) = await states(fetcher), await states(second)
        now = time.monotonic() - began
        out.join.lag_s = max(out.join.lag_s, lag)
        joining.append((now, run1, run2, two))
        track(out.join, now, run1, run2, n)
        settled = settled + 1 if one + two >= n and two > 0 else 0
        if settled >= 2:  # the same split two polls in a row
            out.joined_s, out.moved = now, int(two)
        elif now > timeout_s:
            raise TimeoutError(f"not settled after the join: {one:.0f} + {two:.0f} idle of {n}")
        else:
            await asyncio.sleep(POLL_S)
        logins.read()
    _stop_profile(spy)
    out.join.gc_s = gc_s.get(second.name)
    out.join.cpu_pct = cpu_between(first, last := sessions(names), out.joined_s)
    out.join.cpu_s = {k: v * out.joined_s / 100 for k, v in out.join.cpu_pct.items()}
    out.join.logins = logins.per_second()
    kept = n - out.moved
    out.join.released_s = next((t for t, r1, _, _ in joining if r1 <= kept), None)
    for pct in (50, 90, 100):
        out.join.idle_at[pct] = next(
            (t for t, _, _, i2 in joining if i2 >= out.moved * pct / 100), out.joined_s
        )
    log(f"replica 2 joined: {out.moved} accounts moved, all idle after {out.joined_s:.1f}s")

    logins = _LoginLog(dovecot)
    first = last
    gc_before = gc_s.get(fetcher.name, 0.0)
    spy = _profile(fetcher, "leave")
    began = time.monotonic()
    stopping = asyncio.create_task(asyncio.to_thread(second.stop))
    while out.left_s is None:
        await sample()
        (run2, _, _), (run1, one, lag) = await states(second), await states(fetcher)
        now = time.monotonic() - began
        out.leave.lag_s = max(out.leave.lag_s, lag)
        if out.leave.released_s is None and stopping.done():
            out.leave.released_s = now
        track(out.leave, now, run2, run1 - kept, out.moved)
        for pct in (50, 90, 100):
            if pct not in out.leave.idle_at and one - kept >= out.moved * pct / 100:
                out.leave.idle_at[pct] = now
        if one >= n:
            out.left_s = now
        elif now > timeout_s:
            raise TimeoutError(f"not back on one replica after {timeout_s:.0f}s")
        else:
            await asyncio.sleep(POLL_S)
        logins.read()
    _stop_profile(spy)
    out.leave.gc_s = gc_s.get(fetcher.name, 0.0) - gc_before
    out.leave.cpu_pct = cpu_between(first, sessions(names), out.left_s)
    out.leave.cpu_s = {k: v * out.left_s / 100 for k, v in out.leave.cpu_pct.items()}
    out.leave.logins = logins.per_second()
    await stopping
    log(f"replica 2 left: all idle on replica 1 after {out.left_s:.1f}s")
    return out


def _stamp_order(stamp: str) -> dt.datetime:
    # Dovecot's default log_timestamp has no year; within one run the order is right.
    return dt.datetime.strptime(f"2000 {stamp}", "%Y %b %d %H:%M:%S")


# -- the database at idle -------------------------------------------------------------------


@dataclass
class DbAtIdle:
    ops_per_s: dict[str, float] = field(default_factory=dict)  # serverStatus opcounters
    connections: int = 0
    read_ms: list[float] = field(default_factory=list)  # the bench's own find_one
    write_ms: list[float] = field(default_factory=list)  # the bench's own update_one


async def db_at_idle(settings: CommonSettings, seconds: float) -> DbAtIdle:
    """What the database serves while every account is idle, over ``seconds``: its
    operations per second (``serverStatus``), and how long one read and one write of
    ours take meanwhile (every ``seconds / 20``)."""
    out = DbAtIdle()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.require_mongo())
    try:
        db = mongo[settings.mongo_database]
        first = await mongo.admin.command("serverStatus")
        began = time.monotonic()
        for i in range(20):
            await asyncio.sleep(max(0.0, began + i * seconds / 20 - time.monotonic()))
            t = time.perf_counter()
            await db["account_states"].find_one({"_id": "scale-user00000"})
            out.read_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await db["bench_probe"].update_one({"_id": 1}, {"$inc": {"n": 1}}, upsert=True)
            out.write_ms.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))
        last = await mongo.admin.command("serverStatus")
        took = time.monotonic() - began
        out.ops_per_s = {
            k: (last["opcounters"][k] - first["opcounters"][k]) / took for k in last["opcounters"]
        }
        out.connections = int(last["connections"]["current"])
    finally:
        await mongo.close()
    return out


# -- Dovecot's side ------------------------------------------------------------------------


def ensure_inotify(needed: int) -> str:
    """fs.inotify.max_user_instances at least ``needed``: raised when we may."""
    try:
        current = int(INOTIFY.read_text())
    except OSError as exc:
        return f"fs.inotify.max_user_instances unreadable ({exc})"
    if current >= needed:
        return f"fs.inotify.max_user_instances {current} (needed {needed})"
    try:
        INOTIFY.write_text(f"{needed}\n")
    except OSError as exc:
        log(
            f"Dovecot needs fs.inotify.max_user_instances >= {needed} (it is {current}) or "
            f"falls back to 30 s polling; could not raise it ({exc}): run "
            f"`sysctl -w fs.inotify.max_user_instances={needed}` as root"
        )
        return f"fs.inotify.max_user_instances {current}, **below the {needed} needed**"
    log(f"raised fs.inotify.max_user_instances from {current} to {needed}")
    return f"fs.inotify.max_user_instances raised from {current} to {needed} by the bench"


def dovecot_processes() -> dict[str, int]:
    """imap and imap-login processes of our Dovecot (the session of the ``dovecot``
    master we started), and the inotify instances they hold."""
    me = os.getpid()
    rows = {
        int(e.name): row
        for e in Path("/proc").iterdir()
        if e.name.isdigit() and (row := _read_proc(int(e.name))) is not None
    }
    leaders = [p for p, (comm, ppid, sid, *_) in rows.items() if ppid == me and sid == p]
    master = next((p for p in leaders if rows[p][0] == "dovecot"), None)
    out: Counter[str] = Counter()
    for pid, (comm, _, sid, *_) in rows.items():
        if sid != master or comm not in ("imap", "imap-login"):
            continue
        out[comm] += 1
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == "anon_inode:inotify":
                        out["inotify"] += 1
    return dict(out)


def dovecot_warnings(dovecot: DovecotServer) -> list[str]:
    """Lines of Dovecot's log that mean it could not hold the load as configured."""
    wanted = ("inotify", "client_limit", "process_limit", "Too many", "lower than required")
    try:
        lines = (dovecot.root / "dovecot.log").read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = [line for line in lines if any(w in line for w in wanted)]
    return found[:5] + ([f"... and {len(found) - 5} more"] if len(found) > 5 else [])


# -- one N ---------------------------------------------------------------------------------


@dataclass
class Bound:
    """A bare client's sessions (:mod:`bench.session_bound`), and Dovecot's CPU for them."""

    opened: Opened
    dovecot_cpu_s: float


async def session_bound(
    dovecot: DovecotServer, people: list[MailUser], moved: int, names: dict[int, str]
) -> dict[str, Bound]:
    """The bare client's time to open as many sessions as the rebalance moved and as the
    storm brought back (all N), at its best concurrency, with Dovecot otherwise idle."""
    assert dovecot.cert is not None
    tls = bare.context(str(dovecot.cert.cert))
    host, port = "127.0.0.1", dovecot.imaps_port
    tried = await bare.best_concurrency(host, port, tls, people)
    level = max(tried, key=lambda c: tried[c])
    log(f"bare sessions per second by concurrency: {tried}")
    out = {}
    for name, count in (("moved", moved), ("all", len(people))):
        await asyncio.sleep(2)
        first = sessions(names)
        opened, held = await bare.open_sessions(host, port, tls, people[:count], level)
        cpu = cpu_between(first, sessions(names), opened.seconds).get("dovecot", 0.0)
        await bare.close_all(held)
        opened.tried = tried
        out[name] = Bound(opened, cpu * opened.seconds / 100)
        log(f"bare client: {opened.sessions} sessions in {opened.seconds:.1f}s ({name})")
    return out


@dataclass
class ScaleRun:
    n: int
    inotify: str = ""
    up: IdleUp = field(default_factory=IdleUp)
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    rss_window_end_kib: int = 0  # at the end of the idle window, IDLE_WINDOW_S later
    dovecot_kib: tuple[int, int] = (0, 0)  # private memory, before and after
    dovecot_procs: dict[str, int] = field(default_factory=dict)
    cpu_pct: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0
    db: DbAtIdle | None = None
    latency: Latency | None = None
    storm: Storm | None = None
    rebalance: Rebalance | None = None
    bound: dict[str, Bound] = field(default_factory=dict)  # "moved", "all"
    trace: dict[str, Any] | None = None
    trace_idle_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    load: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def kib_per_account(self) -> float | None:
        if not self.rss_after_kib:
            return None
        return (self.rss_after_kib - self.rss_before_kib) / self.n

    @property
    def complete(self) -> bool:
        lat = self.latency
        return (
            self.error is None
            and self.up.idle_s is not None
            and lat is not None
            and len(lat.activity.keys() & lat.delivered.keys()) == DELIVERIES
            and self.storm is not None
            and self.storm.back_s is not None
            and self.rebalance is not None
            and self.rebalance.left_s is not None
        )


def _overrides(
    kafka: KafkaBroker, secantus: SecantusServer, dovecot: DovecotServer, prefix: str
) -> dict[str, Any]:
    assert dovecot.cert is not None
    return {
        "kafka_bootstrap": kafka.bootstrap,
        "mongo_uri": SecretStr(secantus.uri),
        "mongo_database": prefix.replace("-", "_").rstrip("."),
        "secret_key": SecretStr(SecretBox.new_key()),
        "topic_prefix": prefix,
        "fetcher_group": f"{prefix}fetcher",
        "log_level": "WARNING",
        "fetcher_ca_file": dovecot.cert.cert,
    }


async def measure(
    run: ScaleRun,
    work: Path,
    servers: tuple[KafkaBroker, SecantusServer, DovecotServer],
    people: list[MailUser],
    floor_user: MailUser,
    seed: int,
    timeout_s: float,
    trace: bool,
) -> None:
    kafka, secantus, dovecot = servers
    n = run.n
    overrides = _overrides(kafka, secantus, dovecot, "scale.")
    if os.environ.get(KEEP_ENV):
        overrides["log_level"] = "INFO"
    fetcher = ServiceProcess("fetcher", overrides, work, None)
    others = [ServiceProcess(name, overrides, work, None) for name in ("dedup", "activity-writer")]
    ours = [fetcher, *others]
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            for proc in ours:
                proc.start()
            for proc in ours:
                await proc.wait_ready(http)
            await asyncio.sleep(5)  # past the consumer groups' first assignments
            run.rss_before_kib = rss_kib(fetcher.pid)
            run.dovecot_kib = (sessions({})["dovecot"].private_kib, 0)
            run.load.append(f"{_load()} before the saves")
            log(f"fetcher ready at {run.rss_before_kib / 1024:.0f} MiB RSS; saving {n} accounts")

            names = {p.pid: p.name for p in ours}
            first = sessions(names)
            began = time.monotonic()
            idle = asyncio.create_task(wait_idle(http, fetcher, n, began, timeout_s, run.up))
            try:
                run.up.saved_s = await save_accounts(overrides, people, dovecot.imaps_port)
                log(f"{n} accounts saved in {run.up.saved_s:.1f}s")
            finally:
                if not idle.done() and run.up.saved_s == 0.0:
                    idle.cancel()
            await idle
            run.up.cpu_pct = cpu_between(first, sessions(names), time.monotonic() - began)
            run.up.retries, _ = retries(fetcher.log, 0)
            log(f"all {n} idle {run.up.idle_s:.1f}s after the first save: {run.up.reached}")
            run.load.append(f"{_load()} when all were idle")
            await asyncio.sleep(SETTLE_S)
            run.rss_after_kib = rss_kib(fetcher.pid)
            run.dovecot_kib = (run.dovecot_kib[0], sessions({})["dovecot"].private_kib)
            run.dovecot_procs = dovecot_processes()
            log(f"RSS {run.rss_after_kib / 1024:.0f} MiB: {run.kib_per_account:.1f} KiB/account")

            if not os.environ.get(QUICK_ENV):
                first, t0 = sessions(names), time.monotonic()
                run.db = await db_at_idle(CommonSettings(**overrides), IDLE_WINDOW_S)
                run.window_s = time.monotonic() - t0
                run.cpu_pct = cpu_between(first, sessions(names), run.window_s)
                run.rss_window_end_kib = rss_kib(fetcher.pid)
                log(f"RSS {run.rss_window_end_kib / 1024:.0f} MiB at the end of the idle window")
                run.load.append(f"{_load()} after the idle window")
                cpu = {k: round(v, 1) for k, v in run.cpu_pct.items()}
                log(f"CPU at idle, % of a core: {cpu}")

                run.latency = await deliveries(
                    overrides,
                    dovecot,
                    people,
                    floor_user,
                    random.Random(seed),
                    min(timeout_s, LAST_ACTIVITY_WAIT_S),
                    lambda: _lag(http, fetcher),
                )
                lat = run.latency.ms(run.latency.activity)
                log(f"{len(lat)} of {DELIVERIES} activities; p50 {_pct(lat, 50):.0f} ms")

            run.load.append(f"{_load()} before the restart")
            run.storm = await storm(http, fetcher, dovecot, n, timeout_s, names)
            log(f"back idle after {run.storm.back_s}s; peak {run.storm.peak} logins/s")
            run.load.append(f"{_load()} after the storm")

            second = ServiceProcess("fetcher-2", overrides, work, None, service="fetcher")
            ours.append(second)
            run.rebalance = await rebalance(http, fetcher, second, dovecot, n, timeout_s, names)
            run.load.append(f"{_load()} after the rebalance")
            for proc in ours:  # the bound's sessions alone on Dovecot
                proc.stop()
            run.bound = await session_bound(dovecot, people, run.rebalance.moved, names)
            run.load.append(f"{_load()} after the bound")
        except Exception as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            log(f"failed: {run.error}")
        finally:
            for proc in ours:
                proc.stop()
        run.warnings = dovecot_warnings(dovecot)
        if keep := os.environ.get(KEEP_ENV):
            await asyncio.to_thread(_keep_logs, Path(keep), [p.log for p in ours])
        if trace and run.error is None:
            try:
                await traced(run, work, servers, people, http, timeout_s)
            except Exception as exc:
                run.error = f"tracemalloc: {type(exc).__name__}: {exc}"
                log(f"failed: {run.error}")


async def traced(
    run: ScaleRun,
    work: Path,
    servers: tuple[KafkaBroker, SecantusServer, DovecotServer],
    people: list[MailUser],
    http: aiohttp.ClientSession,
    timeout_s: float,
) -> None:
    """A fetcher under tracemalloc, on topics and a database of its own, snapshotted
    before its accounts are saved and once they are idle."""
    kafka, secantus, dovecot = servers
    overrides = _overrides(kafka, secantus, dovecot, "scale-tm.")
    directory = work / "tracemalloc"
    fetcher = ServiceProcess("fetcher", overrides, work, directory)
    fetcher.start()
    try:
        await fetcher.wait_ready(http)
        await asyncio.sleep(5)
        fetcher.signal(signal.SIGUSR1)
        await _appears(directory / "tracing", fetcher)
        log(f"tracemalloc: tracing; saving {run.n} accounts again")
        began = time.monotonic()
        up = IdleUp()
        waiting = asyncio.create_task(wait_idle(http, fetcher, run.n, began, timeout_s * 3, up))
        try:
            await save_accounts(overrides, people, dovecot.imaps_port)
        except BaseException:
            waiting.cancel()
            raise
        await waiting  # traced: slower, hence the longer wait
        run.trace_idle_s = up.idle_s
        await asyncio.sleep(SETTLE_S)
        fetcher.signal(signal.SIGUSR1)
        result = directory / "growth.json"
        await _appears(result, fetcher)
        run.trace = json.loads(result.read_text())
        log(f"tracemalloc: {run.trace['size'] / run.n / 1024:.1f} KiB/account traced")
    finally:
        fetcher.stop()


async def _appears(path: Path, proc: ServiceProcess) -> None:
    began = time.monotonic()
    while not await asyncio.to_thread(path.exists):
        proc.pid  # noqa: B018  (raises once the process died)
        if time.monotonic() - began > SNAPSHOT_TIMEOUT_S:
            raise TimeoutError(f"{path.name} not written after {SNAPSHOT_TIMEOUT_S:.0f}s")
        await asyncio.sleep(1)


def run_one(run: ScaleRun, seed: int, timeout_s: float, trace: bool) -> None:
    """Measure ``run.n`` accounts into ``run`` (filled as it goes: what was measured
    stays there when the run is stopped)."""
    n = run.n
    sessions_needed = n * SESSIONS_PER_ACCOUNT + 10  # and the bare IDLE client
    run.inotify = ensure_inotify(imap_processes(sessions_needed) + INOTIFY_SPARE)
    people = users(n)
    floor_user = MailUser("floor@scale.example", "floor-password")
    with tempfile.TemporaryDirectory(prefix="mailsync-bench-scale-") as tmp:
        work = Path(tmp)
        with (
            KafkaBroker(work) as kafka,
            SecantusServer(work / "secantus" / "data") as secantus,
            DovecotServer(max_connections=sessions_needed) as dovecot,
        ):
            dovecot.add_users([*people, floor_user])
            servers = (kafka, secantus, dovecot)
            asyncio.run(measure(run, work, servers, people, floor_user, seed, timeout_s, trace))


# -- rendering ---------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN without values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _s(value: float | None, digits: int = 0, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.{digits}f}{unit}"


CPU_COLUMNS = ("fetcher", "dedup", "activity-writer", "secantusd-py", KAFKA_CPU_NAME, "dovecot")
CPU_TITLES = ("fetcher", "dedup", "writer", "SecantusDB", "Kafka", "Dovecot")


def _cpu(run: ScaleRun, name: str) -> float | None:
    return run.cpu_pct.get(name)


def _fit(points: Sequence[tuple[int, float]], at: int) -> float | None:
    """The value at ``at`` on the line through the measured points (least squares); None
    with fewer than two."""
    if len(points) < 2:
        return None
    xs, ys = [float(p[0]) for p in points], [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    return my + slope * (at - mx)


def render(runs: Sequence[ScaleRun]) -> str:
    lines: list[str] = []
    broken = [r for r in runs if not r.complete]
    for r in broken:
        lines.append(
            f"**INCOMPLETE RUN at N = {r.n} ({r.error or 'not every figure measured'})**: "
            "its figures below are what it had."
        )
    if broken:
        lines.append("")
    lines += [
        "One fetcher replica, N accounts each syncing INBOX and Sent (one IMAP session per "
        "idle account: IDLE on INBOX, Sent pushed by NOTIFY; a second only for the first "
        "import), saved "
        "through the API's `Accounts.create` (50 at a time, `verify: false`); fetcher, dedup "
        "and writer each in its own process with production settings (per-account metric "
        "series off). Dovecot: high-performance login processes, 50 sessions per imap "
        "process. CPU in % of one core over "
        f"{IDLE_WINDOW_S:.0f} s once all accounts are idle.",
        "",
        "| N | Saved (s) | All idle after (s) | Fetcher RSS / account | Fetcher CPU idle "
        "| DB CPU idle | Broker CPU idle | Delivery → activity p50 / p99 | Back idle after "
        "an IMAP restart | Peak logins/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lat = r.latency.ms(r.latency.activity) if r.latency else []
        st = r.storm
        lines.append(
            f"| {r.n:,} | {_s(r.up.saved_s, 1)} | **{_s(r.up.idle_s, 1)}** | "
            f"**{_s(r.kib_per_account, 1, ' KiB')}** | **{_s(_cpu(r, 'fetcher'), 1, '%')}** | "
            f"**{_s(_cpu(r, 'secantusd-py'), 1, '%')}** | "
            f"{_s(_cpu(r, KAFKA_CPU_NAME), 1, '%')} | "
            f"**{_s(_pct(lat, 50) if lat else None)} / "
            f"{_s(_pct(lat, 99) if lat else None, 0, ' ms')}** | "
            f"**{_s(st.back_s if st else None, 1, ' s')}** | {st.peak if st else '—'} |"
        )
    lines += [
        "",
        "CPU at idle by process (% of one core):",
        "",
        "| N | " + " | ".join(CPU_TITLES) + " |",
        "|---:|" + "---:|" * len(CPU_TITLES),
    ]
    for r in runs:
        cells = " | ".join(_s(_cpu(r, c), 1) for c in CPU_COLUMNS)
        lines.append(f"| {r.n:,} | {cells} |")
    lines += ["", *_goal(runs), ""]
    for r in runs:
        lines += _details(r)
    traced = next((r for r in runs if r.trace), None)
    if traced is not None:
        lines += _memory(traced)
    return "\n".join(lines).rstrip("\n") + "\n"


def _goal(runs: Sequence[ScaleRun]) -> list[str]:
    done = [r for r in runs if r.kib_per_account is not None]
    if not done:
        return []
    top = max(done, key=lambda r: r.n)
    per = top.kib_per_account or 0.0
    at_goal_rss = top.rss_before_kib / 1024 + per * GOAL_ACCOUNTS / 1024
    cpu_f = [(r.n, c) for r in done if (c := _cpu(r, "fetcher")) is not None]
    cpu_db = [(r.n, c) for r in done if (c := _cpu(r, "secantusd-py")) is not None]
    backs = [(r.n, r.storm.back_s) for r in done if r.storm and r.storm.back_s is not None]
    idles = [(r.n, r.up.idle_s) for r in done if r.up.idle_s is not None]
    lat = top.latency.ms(top.latency.activity) if top.latency else []
    p99 = _pct(lat, 99) if lat else None
    f_cpu, db_cpu, back = (_fit(cpu_f, GOAL_ACCOUNTS), _fit(cpu_db, GOAL_ACCOUNTS), None)
    if backs:
        back = _fit(backs, GOAL_ACCOUNTS)

    def verdict(value: float | None, limit: float) -> str:
        if value is None:
            return "—"
        return "meets it" if value <= limit else f"**{value / limit:.1f}× over**"

    rows = [
        (
            f"RSS of the replica at {GOAL_ACCOUNTS:,} accounts",
            "< 1 GiB",
            f"{top.rss_after_kib / 1024:,.0f} MiB at {top.n:,}",
            f"{at_goal_rss:,.0f} MiB",
            verdict(at_goal_rss, GOAL_RSS_KIB / 1024),
        ),
        (
            "RSS per account",
            f"≤ {GOAL_KIB_PER_ACCOUNT} KiB",
            f"{per:.1f} KiB",
            "(the same)",
            verdict(per, GOAL_KIB_PER_ACCOUNT),
        ),
        (
            "Fetcher CPU at idle",
            f"< {GOAL_CPU_PCT:.0f}%",
            _s(_cpu(top, "fetcher"), 1, "%"),
            _s(f_cpu, 0, "%"),
            verdict(f_cpu, GOAL_CPU_PCT),
        ),
        (
            "Database CPU at idle",
            f"< {GOAL_CPU_PCT:.0f}%",
            _s(_cpu(top, "secantusd-py"), 1, "%"),
            _s(db_cpu, 0, "%"),
            verdict(db_cpu, GOAL_CPU_PCT),
        ),
        (
            "Delivery → activity p99",
            f"≤ {GOAL_P99_MS:.0f} ms",
            _s(p99, 0, " ms"),
            "not extrapolated",
            verdict(p99, GOAL_P99_MS),
        ),
        (
            "Back idle after an IMAP restart",
            f"< {GOAL_BACK_S:.0f} s",
            _s(backs[-1][1] if backs else None, 1, " s"),
            _s(back, 0, " s"),
            verdict(back, GOAL_BACK_S),
        ),
        (
            "Moved accounts idle again (a replica joins / leaves)",
            f"< {GOAL_REBALANCE_S:.0f} s",
            _rebalanced(top.rebalance),
            "not extrapolated",
            verdict(_slowest_move(top.rebalance), GOAL_REBALANCE_S),
        ),
        (
            "Accounts synced by two replicas at once",
            "none",
            _s(top.rebalance.doubled if top.rebalance else None, 0, " samples"),
            "not extrapolated",
            "—"
            if top.rebalance is None
            else ("meets it" if top.rebalance.doubled == 0 else "**some**"),
        ),
        (
            "All idle after the saves",
            "(no goal)",
            _s(idles[-1][1] if idles else None, 1, " s"),
            _s(_fit(idles, GOAL_ACCOUNTS), 0, " s"),
            "—",
        ),
    ]
    measured_at_goal = any(r.n == GOAL_ACCOUNTS for r in done)
    out = [
        f"**Against issue #16's goal** ({GOAL_ACCOUNTS:,} idle accounts on one replica). "
        + (
            f"Measured at N = {GOAL_ACCOUNTS:,} itself: the next column repeats the measurement."
            if measured_at_goal
            else f"Measured at the largest N; the {GOAL_ACCOUNTS:,} column is the straight "
            f"line through the measured points (N = {', '.join(f'{r.n:,}' for r in done)}), "
            "an extrapolation, not a measurement: it assumes nothing new breaks between."
        ),
        "",
        f"| Goal | Target | Measured | At {GOAL_ACCOUNTS:,} (extrapolated) | Today |",
        "|---|---|---:|---:|---|",
        *(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows),
    ]
    return out


def _slowest_move(rb: Rebalance | None) -> float | None:
    if rb is None or rb.joined_s is None or rb.left_s is None:
        return None
    return max(rb.joined_s, rb.left_s)


def _rebalanced(rb: Rebalance | None) -> str:
    if rb is None:
        return "—"
    return f"{_s(rb.joined_s, 1, ' s')} / {_s(rb.left_s, 1, ' s')}"


def _details(r: ScaleRun) -> list[str]:
    out = [f"### N = {r.n:,}", ""]
    up = r.up
    reached = ", ".join(f"{p}% at {s:.1f} s" for p, s in sorted(up.reached.items()))
    states = ", ".join(f"{k} {v:.0f}" for k, v in sorted(up.states.items())) or "—"
    out.append(
        f"- Idle: {reached or '—'} after the first save; states at the end: {states}; "
        f"{_s(up.connections)} IMAP sessions open (the fetcher's gauge)."
    )
    out.append(
        f"- From the first save until all were idle: {_busy(up.cpu_pct)}; the fetcher's "
        f"event loop up to {up.max_lag_s:.1f} s late (its lag gauge); "
        f"{_retried(up.retries)}."
    )
    out.append(
        f"- Fetcher RSS {r.rss_before_kib / 1024:,.0f} MiB with no account, "
        f"{r.rss_after_kib / 1024:,.0f} MiB with {r.n:,} idle ({SETTLE_S:.0f} s after the "
        f"last became idle), {r.rss_window_end_kib / 1024:,.0f} MiB at the end of the idle "
        f"window ({(r.rss_window_end_kib - r.rss_before_kib) / r.n:.1f} KiB an account). "
        f"Dovecot's own memory (RSS − shared, all its processes) "
        f"{r.dovecot_kib[0] / 1024:,.0f} → {r.dovecot_kib[1] / 1024:,.0f} MiB; processes: "
        f"{r.dovecot_procs.get('imap', 0)} imap, {r.dovecot_procs.get('imap-login', 0)} "
        f"imap-login, holding {r.dovecot_procs.get('inotify', 0)} inotify instances "
        f"({r.inotify})."
    )
    if r.db is not None:
        ops = ", ".join(f"{k} {v:.1f}" for k, v in r.db.ops_per_s.items() if v >= 0.05)
        out.append(
            f"- The database during the idle window: {ops or 'nothing'} operations/s "
            f"(`serverStatus`), {r.db.connections} connections; meanwhile a read of ours "
            f"took p50 {_pct(r.db.read_ms, 50):.0f} / max {max(r.db.read_ms, default=0):.0f} "
            f"ms, a write p50 {_pct(r.db.write_ms, 50):.0f} / max "
            f"{max(r.db.write_ms, default=0):.0f} ms (SecantusDB syncs every commit)."
        )
    lat = r.latency
    if lat is not None:
        act, raw = lat.ms(lat.activity), lat.ms(lat.raw)

        def cells(v: list[float]) -> str:
            if not v:
                return "—"
            return f"{_pct(v, 50):.0f} / {_pct(v, 90):.0f} / {_pct(v, 99):.0f} / {max(v):.0f}"

        by_folder = "; ".join(
            f"{f} {cells(lat.ms(lat.activity, f))} ({len(lat.ms(lat.activity, f))})"
            for f in FOLDERS
        )
        out.append(
            f"- Latency from `deliver()` (for Sent `doveadm save`) returning, ms "
            f"(p50 / p90 / p99 / max): to the "
            f"activity found in MongoDB (polled every {ACTIVITY_POLL_S * 1000:.0f} ms) "
            f"{cells(act)} ({len(act)} of {len(lat.delivered)} within "
            f"{LAST_ACTIVITY_WAIT_S:.0f} s of the last delivery; by folder: {by_folder}); "
            f"to the raw record read from "
            f"raw-messages (the fetcher's part) {cells(raw)}. Floor in the same run: a bare "
            f"IDLE client got `EXISTS` {', '.join(f'{v:.0f}' for v in lat.bare_ms)} ms after "
            f"`deliver()` (Dovecot's 500 ms notify delay). Each LMTP delivery took p50 "
            f"{_pct(lat.deliver_ms, 50):.0f} ms; the fetcher's event loop meanwhile up to "
            f"{lat.max_lag_s:.1f} s late (its lag gauge, read every 0.5 s)."
        )
        late, followed = lat.late(GOAL_P99_MS)
        if late:
            out.append(
                f"- {late} deliveries took over {GOAL_P99_MS:.0f} ms to become an activity; "
                f"{followed} of them arrived while an earlier delivery to the same account was "
                "not yet an activity (its INBOX connection may have been syncing, not IDLE)."
            )
    st = r.storm
    if st is not None:
        curve = ", ".join(str(x) for x in st.per_second[:30])
        more = " ..." if len(st.per_second) > 30 else ""
        out.append(
            f"- Reconnect storm: Dovecot down and up again in {st.restart_s:.1f} s; "
            f"{st.logins:,} logins by {st.users:,} users until all were back idle "
            f"({_s(st.back_s, 1)} s after the restart began); at most {st.most_errors:.0f} "
            f"accounts in `error` at once; logins per second: {curve}{more}. Meanwhile: "
            f"{_busy(st.cpu_pct)}; the fetcher's loop up to {st.max_lag_s:.1f} s late; "
            f"{_retried(st.retries)}."
        )
    rb = r.rebalance
    if rb is not None:
        out.append(
            f"- Rebalance: a second fetcher replica started took {rb.moved:,} accounts; all "
            f"{r.n:,} were idle again, split over both, {_s(rb.joined_s, 1)} s after it "
            f"started; stopped (SIGTERM), all idle on the first again after "
            f"{_s(rb.left_s, 1)} s. Dovecot's sessions per user, sampled every "
            f"{POLL_S:.0f} s meanwhile: at most {rb.most_sessions}; samples with a user "
            f"holding two: {rb.doubled}."
        )
        out += _moves(rb, r.storm)
    out += _bounds(r)
    if r.trace_idle_s is not None:
        out.append(
            f"- Under tracemalloc (the memory breakdown below) all {r.n:,} were idle after "
            f"{r.trace_idle_s:.1f} s."
        )
    if r.warnings:
        out.append("- Dovecot's log: " + "; ".join(f"`{w}`" for w in r.warnings))
    out.append(f"- Load average (1 min): {', '.join(r.load) or '—'}.")
    if r.error:
        out.append(f"- Error: `{r.error}`")
    return [*out, ""]


def _moves(rb: Rebalance, st: Storm | None) -> list[str]:
    """Each way's phases, and CPU per moved account."""
    out = []
    for way, move, gainer, total in (
        ("join", rb.join, "fetcher-2", rb.joined_s),
        ("leave", rb.leave, "fetcher", rb.left_s),
    ):
        idle = ", ".join(f"{p}% at {s:.1f}" for p, s in sorted(move.idle_at.items()))
        logins = sum(move.logins)
        per_login = {
            k: v / max(rb.moved, 1) * 1000
            for k, v in move.cpu_s.items()
            if k in ("fetcher", "fetcher-2", "dovecot", "secantusd-py")
        }
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in per_login.items())
        out.append(
            f"  - {way} (s from the {'start' if way == 'join' else 'SIGTERM'}): "
            + (f"ready {_s(move.ready_s, 1)}; " if way == "join" else "")
            + f"the losing replica stops accounts from {_s(move.drop_s, 1)}, done "
            f"{_s(move.released_s, 1)}; the gaining one runs a moved account from "
            f"{_s(move.gain_s, 1)}; the moved idle: {idle} (all: {_s(total, 1)}); "
            f"{logins:,} logins ({', '.join(str(x) for x in move.logins[:40])}); "
            f"{_busy(move.cpu_pct)}; CPU ms per moved account: {cpu}; {gainer}'s loop up "
            f"to {move.lag_s:.1f} s late"
            + (f", its garbage collector {move.gc_s:.2f} s." if move.gc_s is not None else ".")
        )
    if st is not None and st.back_s and st.logins:
        per = {
            k: v * st.back_s / 100 / st.logins * 1000
            for k, v in st.cpu_pct.items()
            if k in ("fetcher", "secantusd-py")
        }
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in per.items())
        out.append(f"  - the storm's CPU ms per login: {cpu}")
    return out


def _bounds(r: ScaleRun) -> list[str]:
    """The bare client's figures, and ours over them."""
    if not r.bound:
        return []
    any_bound = next(iter(r.bound.values()))
    tried = ", ".join(f"{c}: {v:.0f}/s" for c, v in any_bound.opened.tried.items())
    out = [
        f"- Bound (`bench/session_bound.py`, a bare asyncio client, after the rebalance with "
        f"our services stopped): TLS + LOGIN + SELECT INBOX + IDLE, sessions per second by "
        f"concurrency ({bare.SAMPLE} each): {tried}."
    ]
    rb, st = r.rebalance, r.storm
    for name, b in r.bound.items():
        o = b.opened
        ours_s: list[str] = []
        if name == "moved" and rb is not None:
            ours_s = [
                f"join {_s(rb.joined_s, 1)} s = {_ratio(rb.joined_s, o.seconds)}",
                f"leave {_s(rb.left_s, 1)} s = {_ratio(rb.left_s, o.seconds)}",
            ]
        if name == "all" and st is not None:
            ours_s = [f"storm {_s(st.back_s, 1)} s = {_ratio(st.back_s, o.seconds)}"]
        out.append(
            f"  - {o.sessions:,} sessions ({o.failed} failed) at concurrency {o.concurrency}: "
            f"**{o.seconds:.1f} s** ({o.per_s:.0f}/s); CPU ms per session: client "
            f"{o.client_cpu_s / max(o.sessions, 1) * 1000:.1f}, Dovecot "
            f"{b.dovecot_cpu_s / max(o.sessions, 1) * 1000:.1f}. Ours over it: "
            f"{'; '.join(ours_s) or '—'}."
        )
    moved = r.bound.get("moved")
    if moved is not None and moved.opened.seconds > GOAL_REBALANCE_S:
        out.append(
            f"  - The bare client alone needs {moved.opened.seconds:.1f} s for the moved "
            f"sessions: the {GOAL_REBALANCE_S:.0f} s goal is out of reach on this machine."
        )
    return out


def _ratio(ours_s: float | None, bound_s: float) -> str:
    if ours_s is None or not bound_s:
        return "—"
    return f"{ours_s / bound_s:.1f}× the bound"


def _busy(cpu: dict[str, float]) -> str:
    """CPU of the processes that matter, in % of one core."""
    named = zip(CPU_COLUMNS, CPU_TITLES, strict=True)
    shown = [f"{title} {cpu[col]:.0f}%" for col, title in named if col in cpu]
    return "CPU (% of one core) " + (", ".join(shown) or "—")


def _retried(counts: Counter[str]) -> str:
    if not counts:
        return "no account retried (the fetcher's log)"
    top = ", ".join(f"{v} × {k}" for k, v in counts.most_common(3))
    return f"{sum(counts.values())} account retries in the fetcher's log ({top})"


def _memory(r: ScaleRun) -> list[str]:
    assert r.trace is not None
    t, n = r.trace, r.n
    traced = t["size"] / n / 1024
    rss = r.kib_per_account or 0.0
    out = [
        "### Where the memory per account goes",
        "",
        f"A second fetcher process, on topics and a database of its own, started tracemalloc "
        f"(16 frames) just before its {n:,} accounts were saved and took a snapshot "
        f"{SETTLE_S:.0f} s after all were idle: what Python allocated in between and still "
        f"holds is **{traced:.1f} KiB per account** ({t['count'] / n:,.0f} blocks), of the "
        f"**{rss:.1f} KiB** RSS per account measured without tracing. The other "
        f"{max(rss - traced, 0):.1f} KiB are native, what tracemalloc cannot see: OpenSSL's "
        "per-connection state and buffers, the allocator's partly used arenas.",
        "",
        "Largest by traceback (top 15):",
        "",
        "| KiB / account | Blocks / account | Allocated at | Innermost mailsync frame |",
        "|---:|---:|---|---|",
    ]
    for row in t["top"]:
        frames = row["frames"]
        where = f"{frames[-1][0]}:{frames[-1][1]}" if frames else "?"
        mine = ours(frames)
        out.append(
            f"| {row['size'] / n / 1024:.2f} | {row['count'] / n:.1f} | `{where}` | `{mine}` |"
        )

    def summary(title: str, pairs: list[list[Any]]) -> list[str]:
        body = [f"| {k} | {v / n / 1024:.2f} |" for k, v in pairs[:10] if v > 0]
        return ["", title, "", "| | KiB / account |", "|---|---:|", *body]

    out += summary("By the innermost mailsync frame (top 10):", t["by_mailsync_frame"])
    out += summary("By the package that allocated (top 10):", t["by_package"])
    return [*out, ""]


def main(accounts: Sequence[int], seed: int, timeout_s: float) -> tuple[str, bool]:
    setup_logging("WARNING")
    runs = []
    for i, n in enumerate(accounts):
        log(f"N = {n}: starting the servers")
        run = ScaleRun(n)
        runs.append(run)
        try:
            # The memory breakdown once, at the first N: traced, a large N takes long.
            run_one(run, seed, timeout_s, trace=i == 0 and n <= TRACE_AT_MOST)
        except (KeyboardInterrupt, SystemExit) as exc:
            # Stopped (Ctrl+C, SIGTERM): the figures measured so far are still written.
            run.error = run.error or f"stopped by {type(exc).__name__} during this N"
            break
    return render(runs), all(r.complete for r in runs)
