"""Send requests from Kafka into the ledger; offsets committed once the ledger holds them.

A request that is not a valid :class:`SendRequest` goes to the dead-letter topic with
its reason (and, when its id and account can be read, a ``failed`` result, so the CRM
learns why); the stream goes on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError

from schemas.dead_letter import DeadLetterMeta
from schemas.envelope import encode_headers
from schemas.send_request import SendRequest, SendResult, SendState
from services.common import metrics
from services.sender.compose import message_id_for
from services.sender.ledger import SendLedger

log = logging.getLogger("mailsync.sender.intake")
Record: TypeAlias = ConsumerRecord  # ConsumerRecord[bytes, bytes]; aiokafka ships no types


class Intake:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        ledger: SendLedger,
        producer: AIOKafkaProducer,
        *,
        results_topic: str,
        dead_letter_topic: str,
        on_accepted: Callable[[], None],
    ):
        self._consumer = consumer
        self._ledger = ledger
        self._producer = producer
        self._results_topic = results_topic
        self._dead_topic = dead_letter_topic
        self._on_accepted = on_accepted  # the pump claims new requests at once

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                await self._take(records)
            if batches:
                # The ledger holds every request of the batch: now they may be forgotten.
                await self._consumer.commit(
                    {tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs}
                )
                self._on_accepted()

    async def _take(self, records: list[Record]) -> None:
        valid: list[tuple[Record, SendRequest]] = []
        for record in records:
            try:
                valid.append((record, SendRequest.model_validate_json(record.value or b"")))
            except ValidationError as exc:
                await self._reject(record, f"invalid send request: {exc}")
        stored = await self._ledger.accept(
            [(req, message_id_for(req.request_id, req.sender.address)) for _, req in valid]
        )
        for (record, request), (existing, new) in zip(valid, stored, strict=True):
            if new:
                continue
            if existing.request.model_dump(exclude={"requested_at"}) != request.model_dump(
                exclude={"requested_at"}
            ):
                await self._reject(record, f"request id {request.request_id!r} was already used")
            else:
                log.info("request %s seen again (state %s)", request.request_id, existing.state)

    async def _reject(self, record: Record, reason: str) -> None:
        log.warning(
            "send request @%s[%d]%d rejected: %s",
            record.topic,
            record.partition,
            record.offset,
            reason.splitlines()[0],
        )
        meta = DeadLetterMeta.for_record(
            stage="sender",
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            headers=record.headers,
        )
        await self._producer.send_and_wait(
            self._dead_topic,
            value=record.value or b"",
            key=record.key,
            headers=encode_headers(meta, in_blob=False),
        )
        metrics.dead_lettered("sender")
        ids = _readable_ids(record.value)
        if ids is not None and "already used" not in reason:
            request_id, account_id = ids
            result = SendResult(
                request_id=request_id,
                account_id=account_id,
                state=SendState.FAILED,
                message_id="",
                reason=reason.splitlines()[0],
                at=dt.datetime.now(dt.UTC),
            )
            await self._producer.send_and_wait(
                self._results_topic, result.model_dump_json().encode(), key=request_id.encode()
            )


def _readable_ids(value: bytes | None) -> tuple[str, str] | None:
    try:
        data: Any = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    rid, acc = data.get("request_id"), data.get("account_id")
    return (rid, acc) if isinstance(rid, str) and isinstance(acc, str) else None
