"""dedup's sightings table at a million fingerprints (issue #16): how long a restarted
worker takes to recover it, and how much memory it holds then, per table store.

``python -m bench.run --only dedup-table [--fingerprints N]`` (run only when named).

For each store (``MAILSYNC_DEDUP_TABLE_STORE``: ``rocksdb``, the default, and
``memory``), on real servers (Apache Kafka, one KRaft node; SecantusDB):

- the table's changelog topic (``<app id>-sightings-changelog``) is filled with N
  records as the ``dedup`` agent writes them: key the activity id, value its sightings
  as JSON (faust's key and value serialization of the table), spread over the
  by-fingerprint partitions; one sighting each, the common case;
- dedup is started (``python -m bench.dedup_table --child``: the service's own
  ``DedupApp``, production settings) on an empty data directory, as a new pod: the
  whole changelog is read (**cold**);
- then again on the same directory, as a restarted container (**warm**): with RocksDB
  the table and the changelog offsets it read up to are on disk, so only what was
  written since is read; in memory everything is read again.

Measured in the child: seconds from its start until faust's table recovery completed
(``App.tables.recovery.completed``), its RSS then, and five keys read back from the
table (a recovery that lost them does not count). Target (#16): under 60 s at 1,000,000.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench._harness import log, overrides_for, servers, service_environ
from devservers._process import ChildProcess
from schemas.topics import BY_FINGERPRINT
from services.common.kafka import producer
from services.dedup.settings import DedupSettings

HEADING = "## Dedup table"
DEFAULT_FINGERPRINTS = 1_000_000
STORES = ("rocksdb", "memory")
GOAL_S = 60.0
CHILD_TIMEOUT_S = 900.0
SAMPLES = 5

_STARTED = time.monotonic()  # the child's clock starts with the interpreter's imports


def activity_id(i: int) -> str:
    return f"act-{i:012d}"


def sightings(i: int) -> list[dict[str, Any]]:
    return [
        {
            "account_id": f"acc-{i % 5000:05d}",
            "folder": "INBOX",
            "uidvalidity": 1_700_000_000,
            "uid": i + 1,
            "folder_role": "inbox",
            "alias": None,
        }
    ]


async def fill_changelog(settings: DedupSettings, n: int) -> float:
    """N changelog records as the agent writes them; seconds it took."""
    topic = f"{settings.topic_prefix}{settings.dedup_app_id}-sightings-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.require_kafka())
    await admin.start()
    try:  # as faust creates it: compacted, the by-fingerprint partitions
        await admin.create_topics(
            [
                NewTopic(
                    topic,
                    BY_FINGERPRINT.partitions,
                    1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        await admin.close()
    began = time.perf_counter()
    prod = producer(settings, client_id="bench-dedup-table")
    await prod.start()
    try:
        pending = []
        for i in range(n):
            value = json.dumps(sightings(i)).encode()
            part = i % BY_FINGERPRINT.partitions
            pending.append(
                await prod.send(topic, value, key=activity_id(i).encode(), partition=part)
            )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return time.perf_counter() - began


@dataclass
class Start:
    seconds: float | None = None
    rss_mib: float | None = None
    keys_ok: bool = False
    error: str | None = None


@dataclass
class StoreRun:
    store: str
    cold: Start = field(default_factory=Start)
    warm: Start = field(default_factory=Start)
    disk_mib: float | None = None


def start_child(overrides: dict[str, Any], work: Path, name: str, n: int) -> Start:
    """dedup in a process of its own, until its table is recovered; what it reported."""
    out = work / f"{name}.json"
    env = service_environ(overrides)
    env["BENCH_DEDUP_TABLE_OUT"] = str(out)
    env["BENCH_DEDUP_TABLE_N"] = str(n)
    child = ChildProcess(
        name, [sys.executable, "-m", "bench.dedup_table", "--child"], work / f"{name}.log", env
    )
    child.start()
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    try:
        while not out.exists():
            if time.monotonic() > deadline:
                return Start(error=f"no recovery in {CHILD_TIMEOUT_S:.0f} s")
            if child.pid is None:
                return Start(error=f"dedup exited; its log: {work / f'{name}.log'}")
            time.sleep(0.2)
        return Start(**json.loads(out.read_text()))
    finally:
        child.stop(30)


def _disk_mib(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total / 2**20


def run_store(store: str, n: int, work: Path) -> StoreRun:
    result = StoreRun(store)
    with servers(work / store) as (kafka, secantus, _dovecot):
        data = work / store / "data"
        overrides = {
            **overrides_for(kafka, secantus, data),
            "topic_prefix": f"bench-{store}.",
            "dedup_table_store": store,
        }
        took = asyncio.run(fill_changelog(DedupSettings(**overrides), n))
        log(f"{store}: {n:,} changelog records in {took:.1f}s")
        result.cold = start_child(overrides, work, f"{store}-cold", n)
        log(f"{store}: cold {result.cold}")
        result.warm = start_child(overrides, work, f"{store}-warm", n)
        log(f"{store}: warm {result.warm}")
        if store == "rocksdb":
            result.disk_mib = _disk_mib(data)
    return result


def render(n: int, runs: Sequence[StoreRun]) -> str:
    def cell(s: Start) -> str:
        if s.error is not None or s.seconds is None:
            return f"**failed** ({s.error})"
        lost = "" if s.keys_ok else " (**keys missing**)"
        return f"{s.seconds:.1f} s, RSS {s.rss_mib:,.0f} MiB{lost}"

    lines = [
        f"The sightings table's changelog holds {n:,} records (one sighting each); dedup "
        "(the service's `DedupApp`, production settings) starts in a process of its own, "
        "first on an empty data directory (a new pod: **cold**), then on the same one (a "
        "restarted container: **warm**). Time from the process's start until faust's "
        "table recovery completed, RSS then; five keys read back from the table. "
        f"Target (#16): under {GOAL_S:.0f} s.",
        "",
        "| Store | Cold start | Warm start | On disk |",
        "|---|---|---|---:|",
    ]
    for r in runs:
        disk = f"{r.disk_mib:,.0f} MiB" if r.disk_mib is not None else "—"
        lines.append(f"| {r.store} | {cell(r.cold)} | {cell(r.warm)} | {disk} |")
    return "\n".join(lines) + "\n"


def main(n: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    del seed, timeout_s  # the records are deterministic; each start has its own limit
    runs = []
    with tempfile.TemporaryDirectory(prefix="mailsync-bench-dedup-table-") as tmp:
        for store in STORES:
            runs.append(run_store(store, n, Path(tmp)))
    ok = all(s.error is None and s.keys_ok for r in runs for s in (r.cold, r.warm))
    return render(n, runs), ok


# -- the child: dedup until its table is recovered --------------------------------------


async def _child() -> None:
    from services.dedup.app import DedupApp

    out = Path(os.environ["BENCH_DEDUP_TABLE_OUT"])
    n = int(os.environ["BENCH_DEDUP_TABLE_N"])
    app = DedupApp(DedupSettings())
    await app.start()
    try:
        assert app.faust is not None
        tables: Any = app.faust.tables  # faust's TableManager (its type stub has no recovery)
        await asyncio.wait_for(tables.recovery.completed.wait(), CHILD_TIMEOUT_S)
        took = time.monotonic() - _STARTED
        rss = _rss_mib()
        table: Any = tables["sightings"]
        picks = random.Random(n).sample(range(n), SAMPLES)
        keys_ok = all(table[activity_id(i).encode()] == sightings(i) for i in picks)
        aside = out.with_suffix(".tmp")
        aside.write_text(json.dumps({"seconds": took, "rss_mib": rss, "keys_ok": keys_ok}))
        aside.rename(out)
    finally:
        await app.cleanup(False)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    asyncio.run(_child())
