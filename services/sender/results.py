"""Announcing what became of a request on ``mailsync.send-results`` (acks=all)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from schemas.send_request import SendRecord, SendResult, SendState


def result_of(record: SendRecord, state: SendState) -> SendResult:
    return SendResult(
        request_id=record.id,
        account_id=record.request.account_id,
        state=state,
        message_id=record.message_id,
        smtp_reply=record.smtp_reply,
        sent_folder=record.sent_folder if state is SendState.FILED else None,
        sent_uid=record.sent_uid if state is SendState.FILED else None,
        reason=record.reason if state in (SendState.FAILED, SendState.UNKNOWN) else None,
        last_step=record.last_step if state is SendState.UNKNOWN else None,
        activity_id=record.activity_id if state is not SendState.FAILED else None,
        at=dt.datetime.now(dt.UTC),
    )


class ResultPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str):
        self._producer = producer
        self._topic = topic

    async def publish(self, record: SendRecord, states: Sequence[SendState]) -> None:
        """Announce ``states`` of ``record``, in order (one key: one partition), all
        sent before waiting for their acknowledgements."""
        acks = [
            await self._producer.send(
                self._topic, result_of(record, s).model_dump_json().encode(), key=record.id.encode()
            )
            for s in states
        ]
        for ack in acks:
            await ack
