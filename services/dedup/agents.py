"""dedup's two faust agents, defined on an app with its streams (:mod:`.faust_config`).

``tag``:   raw-messages -> (parse headers once, tag) -> dedup-by-fingerprint, keyed by fingerprint
``dedup``: dedup-by-fingerprint -> (sightings table) -> tagged-messages, keyed by activity id

Neither agent waits for its sends one by one: an event is acked when its output is in
the broker (:mod:`.acks`), so aiokafka gathers many events' records in one request.
Both hand their records straight to the app's aiokafka producer (idempotent, acks=all;
with ``exactly_once`` the transaction manager, as faust would:
:class:`~.faust_config.Output`), ``dedup`` the table's changelog records too
(:class:`~.faust_config.SightingsTable`):
faust's ``Topic.send`` wraps each record in a FutureMessage with sensor calls, and
awaits ``App.maybe_start_producer``, whose mode ``stampede`` wrapper yields to the event
loop three times per record (20,000 yields for 2,000 messages, cProfile).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

import faust

from schemas.dead_letter import DeadLetterMeta
from schemas.envelope import encode_headers, meta_header
from schemas.tagged_message import MessageTags, Sighting
from services.common import metrics
from services.common.retry import is_retriable
from services.dedup.acks import ack_when_sent
from services.dedup.errors import Untaggable
from services.dedup.faust_config import Output, Streams
from services.dedup.sighting_rules import record_sighting, tagged_meta
from services.dedup.tagger import Tagger

log = logging.getLogger("mailsync.dedup")


def _headers(event: Any) -> list[tuple[str, bytes]]:
    raw = event.message.headers
    if isinstance(raw, Mapping):
        return list(raw.items())
    return list(raw or [])


def define_agents(app: faust.App, streams: Streams, tagger: Tagger) -> None:
    """Add the ``tag`` and ``dedup`` agents to ``app``."""
    crashing: set[asyncio.Task[None]] = set()

    def crash(exc: BaseException) -> None:
        task = asyncio.ensure_future(app.crash(exc))
        crashing.add(task)  # a reference, so the task is not collected before it ran
        task.add_done_callback(crashing.discard)

    def acked_when_sent(event: Any, sent: Any) -> None:
        ack_when_sent(event, cast("asyncio.Future[Any] | list[asyncio.Future[Any]]", sent), crash)

    by_fp, tagged, dead, table = (
        streams.by_fingerprint,
        streams.tagged,
        streams.dead,
        streams.sightings,
    )
    by_fp_topic, tagged_topic = by_fp.get_topic_name(), tagged.get_topic_name()
    output = Output(app)
    send = output.send

    async def dead_letter(
        stage: str, reason: str, event: Any, headers: list[tuple[str, bytes]]
    ) -> Any:
        meta = DeadLetterMeta.for_record(
            stage=stage,
            reason=reason,
            topic=event.message.topic,
            partition=event.message.partition,
            offset=event.message.offset,
            headers=headers,
        )
        log.warning(
            "dead-lettered %s[%d]@%d: %s",
            meta.source_topic,
            meta.source_partition,
            meta.source_offset,
            reason,
        )
        sent = await dead.send(
            key=event.key, value=event.value or b"", headers=encode_headers(meta, in_blob=False)
        )
        metrics.dead_lettered(stage)
        return sent

    @app.agent(streams.raw, name="tag")
    async def tag(stream: Any) -> None:
        async for event in stream.noack().events():
            headers = _headers(event)
            value: bytes = event.value or b""
            try:
                tags = await tagger.tag(headers, value)
            except Untaggable as exc:
                metrics.error("dedup", exc)
                sent = await dead_letter("dedup.tag", str(exc), event, headers)
            except Exception as exc:
                metrics.error("dedup", exc)
                if is_retriable(exc):
                    # Infrastructure away (the blob store, say): the event stays unacked,
                    # so the committed offset stops before it; the worker restarts and
                    # reads it again.
                    crash(exc)
                    raise
                sent = await dead_letter(
                    "dedup.tag", f"{type(exc).__name__}: {exc}", event, headers
                )
            else:
                sent = await send(
                    by_fp_topic,
                    tags.fingerprint.encode("utf-8", "surrogateescape"),
                    value,
                    encode_headers(tags, in_blob=tags.raw.blob is not None),
                )
            acked_when_sent(event, sent)

    @app.agent(by_fp, name="dedup")
    async def dedup(stream: Any) -> None:
        async for event in stream.noack().events():
            headers = _headers(event)
            tags = MessageTags.model_validate_json(meta_header(headers))
            # Keyed by activity: the copies of one Message-ID that are different messages
            # (services.mail.identity) share the partition but not the sightings.
            # The changelog record goes to this event's partition, as the key's would.
            key = tags.activity_id.encode()
            known = [Sighting.model_validate(d) for d in table[key]]
            verdict = record_sighting(known, tags.sighting)
            if len(verdict.sightings) > len(known):
                if not verdict.canonical:
                    metrics.duplicate_linked(tags.sighting.account_id)  # a new sighting, linked
                table[key] = [v.model_dump(mode="json") for v in verdict.sightings]
            logged = await table.publish_changelog(output)  # acked with the output (SightingsTable)
            out = tagged_meta(tags, verdict)
            sent = await send(
                tagged_topic,
                tags.activity_id.encode(),
                event.value or b"",
                encode_headers(out, in_blob=tags.raw.blob is not None),
            )
            acked_when_sent(event, [sent, *logged])

    del tag, dedup  # registered on the app, which runs them
