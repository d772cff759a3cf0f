"""What one dedup worker could reach here at best: the same hops without faust.

The dedup benchmark (``bench.dedup``) times faust. This asks the same question of the
simplest relay that moves the same records the same way, so its figure bounds what any
dedup worker can reach on this machine with the broker on the same cores:

- stage 1 consumes raw-messages and produces each record to dedup-by-fingerprint,
  keyed by its fingerprint; stage 2 consumes that and produces, per record, a
  changelog record (as faust's table does) and the tagged record; each stage commits
  its offsets after the acks of what it produced (as dedup must); one event loop, the
  services' own aiokafka producer and consumers (``services.common.kafka``);
- mode ``copy`` does no work at all (the key is a hash of the record's head, headers
  pass through); mode ``work`` does dedup's real work without faust: ``Tagger.tag``,
  ``record_sighting`` on an in-memory table, ``tagged_meta`` and the JSON headers.

Same prefill, servers, clock and counting as ``bench.dedup`` (its ``run`` is reused).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from bench import dedup
from bench._harness import MB, rate
from schemas.envelope import encode_headers, meta_header
from schemas.tagged_message import MessageTags, Sighting
from schemas.topics import ACCOUNTS, BY_FINGERPRINT, RAW_MESSAGES, TAGGED_MESSAGES
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.kafka import consumer, ensure_topics, producer
from services.common.mongo import database, mongo_client
from services.common.settings import CommonSettings
from services.dedup.sighting_rules import record_sighting, tagged_meta
from services.dedup.tagger import Tagger

HEADING = "## Dedup upper bound"
Mode = Literal["copy", "work"]
CHANGELOG = dataclasses.replace(BY_FINGERPRINT, name=f"{BY_FINGERPRINT.name}-bound-changelog")
Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[list[Any]]]


class Relay:
    """A :class:`~services.common.lifecycle.Service` that relays like dedup, no faust."""

    name = "dedup"

    def __init__(self, overrides: dict[str, Any], *, mode: Mode):
        self.settings = CommonSettings(**overrides)
        self.mode = mode
        self.table: dict[bytes, list[Sighting]] = {}
        self.clients: list[Any] = []
        self.tagger: Tagger | None = None

    async def start(self) -> None:
        s = self.settings
        await ensure_topics(s, [CHANGELOG])
        self.producer: AIOKafkaProducer = producer(s, client_id="bound")
        raw = consumer(s, s.topic(RAW_MESSAGES), group_id="bound-1", client_id="bound")
        by_fp = consumer(s, s.topic(BY_FINGERPRINT), group_id="bound-2", client_id="bound")
        self.stages = [(raw, self._tag), (by_fp, self._dedup)]
        self.clients = [self.producer, raw, by_fp]
        if self.mode == "work":
            self.mongo = mongo_client(s, app_name="bound")
            directory = AccountDirectory(
                consumer(s, group_id=None, client_id="bound-accounts"), s.topic(ACCOUNTS)
            )
            self.clients.append(directory)
            await directory.start()
            await directory.wait_ready(timeout=60)
            self.tagger = Tagger(directory, BlobStore(database(self.mongo, s)))
        for kafka_client in (self.producer, raw, by_fp):
            await kafka_client.start()

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._stage(c, handle, stop) for c, handle in self.stages))

    async def cleanup(self, failed: bool) -> None:
        for client in reversed(self.clients):
            await client.stop()
        if self.tagger is not None:
            await self.mongo.close()

    async def _stage(self, source: AIOKafkaConsumer, handle: Handler, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await source.getmany(timeout_ms=100)
            sent = [f for records in batches.values() for r in records for f in await handle(r)]
            if sent:
                await asyncio.gather(*sent)
                await source.commit()  # after the acks: nothing is lost on a crash

    async def _tag(self, r: ConsumerRecord[bytes, bytes]) -> list[Any]:
        value = r.value or b""
        headers = list(r.headers)
        if self.tagger is None:
            key = hashlib.sha256(value[:300]).hexdigest().encode()
        else:
            tags = await self.tagger.tag(headers, value)
            key, headers = tags.fingerprint.encode(), encode_headers(tags, in_blob=False)
        topic = self.settings.topic(BY_FINGERPRINT)
        return [await self.producer.send(topic, key=key, value=value, headers=headers)]

    async def _dedup(self, r: ConsumerRecord[bytes, bytes]) -> list[Any]:
        key, headers, entry = r.key or b"", list(r.headers), b"[]"
        if self.tagger is not None:
            tags = MessageTags.model_validate_json(meta_header(headers))
            verdict = record_sighting(self.table.get(key, []), tags.sighting)
            self.table[key] = list(verdict.sightings)
            entry = json.dumps([v.model_dump(mode="json") for v in verdict.sightings]).encode()
            headers = encode_headers(tagged_meta(tags, verdict), in_blob=False)
            key = tags.activity_id.encode()
        s, send = self.settings, self.producer.send
        return [
            await send(s.topic(CHANGELOG), key=r.key, value=entry, partition=r.partition),
            await send(s.topic(TAGGED_MESSAGES), key=key, value=r.value, headers=headers),
        ]


def main(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    """Both modes on fresh servers each; return (markdown body, complete)."""
    modes: tuple[Mode, ...] = ("copy", "work")
    reports = {m: dedup.run(messages, seed, timeout_s, partial(Relay, mode=m)) for m in modes}
    corpus = reports["copy"].corpus
    n, total = len(corpus.messages), corpus.total_bytes
    lines = [
        f"The dedup benchmark's input ({n} messages, {total / MB:.1f} MB, one partition) and "
        "clock, through a plain aiokafka relay instead of faust (`bench/dedup_bound.py`): "
        "raw-messages → dedup-by-fingerprint → a changelog record and tagged-messages, "
        "each stage committing after its acks, one event loop. The bench process's CPU "
        "includes the consumer counting tagged-messages, as in the dedup section.",
        "",
        "| Relay | Seconds | Messages/s | Steady msgs/s | Bench process CPU ms/msg "
        "| Kafka broker CPU ms/msg |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, report in reports.items():
        r = report.run
        if r is None:
            lines.append(f"| {mode} | not run | | | | |")
            continue
        sec, mps, _ = rate(n, total, r.done_s)
        steady = "—"
        if (
            r.first_s is not None
            and r.done_s is not None
            and r.done_s > r.first_s
            and r.at_first < n  # not all read in the first poll
        ):
            steady = f"{(n - r.at_first) / (r.done_s - r.first_s):.0f}"
        cpu = {name.split(" ")[0]: secs / n * 1000 for name, secs in r.cpu_s.items()}
        worker = f"{cpu.get('bench', 0.0):.2f}"
        kafka = next((f"{v:.2f}" for k, v in cpu.items() if k.startswith("kafka")), "—")
        what = "no work" if mode == "copy" else "dedup's real work (tag, verdict, headers)"
        lines.append(f"| {mode}: {what} | {sec} | **{mps}** | {steady} | {worker} | {kafka} |")
    notes = [f"{mode}: {note}" for mode, report in reports.items() for note in report.notes]
    lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n", all(r.complete for r in reports.values())
