"""Other systems read our public topics with their own Kafka clients and our JSON Schemas.

The records come from the real services: mail delivered over SMTP to Dovecot, fetched,
tagged and written (``mailsync.tagged-messages``, ``mailsync.activity-events``), and a
send request sent and filed by the sender (``mailsync.send-results``). They are then
read as a team without Python would: kcat (Debian's, librdkafka) from the beginning,
and confluent-kafka in a consumer group of its own, each record checked against the
schema file ``schemas/json/topics.json`` names for its topic.
"""

from __future__ import annotations

import collections
import datetime as dt
import email
import hashlib
import json
import random
import subprocess
import uuid
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from devservers import KafkaBroker
from devservers.corpus import build
from schemas.account import SharedOwnership
from schemas.export import JSON_DIR
from schemas.topics import ACTIVITY_EVENTS, RAW_MESSAGES, SEND_RESULTS, TAGGED_MESSAGES
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually
from tests.integration.test_end_to_end import smtp_send
from tests.integration.test_sender import FAST, publish, request, smtp_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PUBLIC = (TAGGED_MESSAGES.name, ACTIVITY_EVENTS.name, SEND_RESULTS.name)
CUSTOMER = ("Łucja Wójcik", "lucja.wojcik@drukarnia.pl")
WHEN = dt.datetime(2026, 11, 24, 10, 15, tzinfo=dt.UTC)


class Record:
    """One record as a non-Python consumer sees it: bytes and a header list."""

    def __init__(self, topic: str, key: bytes | None, value: bytes | None, headers: Any):
        self.topic = topic
        self.key = key
        self.value = value
        self.headers: dict[str, bytes] = dict(headers or [])


def registry() -> dict[str, dict[str, Any]]:
    """The published topic registry: name -> encoding and schema file."""
    return {t["name"]: t for t in json.loads((JSON_DIR / "topics.json").read_text())}


def validator(spec: dict[str, Any]) -> Validator:
    schema = json.loads((JSON_DIR / spec["schema"]).read_text())
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def checked(spec: dict[str, Any], record: Record) -> dict[str, Any]:
    """The record's payload (JSON value, or the meta header), validated against its schema."""
    assert record.value is not None, f"{record.topic}: a null value"
    if spec["encoding"] == "json":
        payload: dict[str, Any] = json.loads(record.value)
    else:
        assert spec["encoding"] == "rfc822+meta-header"
        assert record.headers["content-type"] == b"message/rfc822"
        payload = json.loads(record.headers["mailsync-meta"])
        # The value is the message itself, byte for byte as fetched.
        assert hashlib.sha256(record.value).hexdigest() == payload["raw"]["sha256"]
        assert email.message_from_bytes(record.value)["Message-ID"]
    validator(spec).validate(payload)
    return payload


def kcat(bootstrap: str, topic: str) -> list[Record]:
    """``kcat -C -o beginning -e -J``: every record now in the topic, as JSON lines."""
    done = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    out = []
    for line in done.stdout.splitlines():
        got = json.loads(line)
        assert got["topic"] == topic
        # -J prints headers as a flat list: name, value, name, value...
        pairs = got.get("headers") or []
        headers = [(n, v.encode()) for n, v in zip(pairs[::2], pairs[1::2], strict=True)]
        key = got["key"].encode() if got["key"] is not None else None
        value = got["payload"].encode() if got["payload"] is not None else None
        out.append(Record(topic, key, value, headers))
    return out


def confluent(bootstrap: str, topics: list[str]) -> list[Record]:
    """A confluent-kafka consumer in a group of its own, subscribed to ``topics``, read
    from the beginning until every assigned partition reported its end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"other-system-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    assigned: set[tuple[str, int]] = set()
    at_end: set[tuple[str, int]] = set()
    out: list[Record] = []
    try:
        consumer.subscribe(topics, on_assign=lambda _c, ps: assigned.update(_names(ps)))
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
        while not assigned or at_end < assigned:
            assert dt.datetime.now(dt.UTC) < deadline, f"ends seen {at_end} of {assigned}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                # An end-of-partition event names its partition, as a record does.
                at_end.add((cast(str, msg.topic()), cast(int, msg.partition())))
                continue
            out.append(Record(cast(str, msg.topic()), msg.key(), msg.value(), msg.headers()))
        assert {t for t, _ in assigned} == set(topics)
    finally:
        consumer.close()
    return out


def _names(partitions: Any) -> set[tuple[str, int]]:
    return {(p.topic, p.partition) for p in partitions}


async def test_kcat_and_confluent_kafka_read_our_topics_and_every_record_fits_its_schema(
    env: Env, pipeline: Pipeline, kafka: KafkaBroker
) -> None:
    """With compressed batches (``MAILSYNC_KAFKA_COMPRESSION``): librdkafka reads them."""
    assert env.dovecot.cert is not None
    env.overrides.update(sender_ca_file=env.dovecot.cert.cert, kafka_compression="zstd", **FAST)
    suffix = env.overrides["mongo_database"]
    jana, info, customer = env.mail_user("jana"), env.mail_user("info"), env.mail_user("cust")
    orders = info.address.replace("info-", "orders-")
    env.smtp.add_alias(orders, info.address)
    personal = env.account(jana, account_id=f"jana-{suffix}")
    shared = env.account(
        info,
        account_id=f"info-{suffix}",
        ownership=SharedOwnership(group="sales"),
        aliases=(orders,),
        smtp=smtp_of(env, info),
    )
    await env.publish_accounts(personal, shared)
    # One message to the shared mailbox, one to both mailboxes (a linked duplicate), and
    # one the shared mailbox sends: three messages, four sightings.
    rng = random.Random(11)
    one = build(rng, CUSTOMER, [("Info", info.address)], date=WHEN)
    both = build(rng, CUSTOMER, [("Jana", jana.address), ("Orders", orders)], date=WHEN)
    smtp_send(env, CUSTOMER[1], [info.address], one.message)
    smtp_send(env, CUSTOMER[1], [jana.address, orders], both.message)
    req = request(shared, customer)

    topics = {name: f"{env.overrides['topic_prefix']}{name}" for name in PUBLIC}
    bootstrap = env.overrides["kafka_bootstrap"]
    async with pipeline("fetcher", "dedup", "activity-writer", "sender") as running:
        await publish(env, req)

        async def everything() -> bool:
            running.check()
            events = await read_topic(bootstrap, topics[ACTIVITY_EVENTS.name])
            results = await read_topic(bootstrap, topics[SEND_RESULTS.name])
            return len(events) >= 4 and len(results) >= 2

        await eventually(everything, timeout=90, what="4 activity events and 2 send results")

    specs = registry()
    by_reader = {
        "kcat": [r for name in PUBLIC for r in kcat(bootstrap, topics[name])],
        "confluent-kafka": confluent(bootstrap, list(topics.values())),
    }
    for reader, records in by_reader.items():
        payloads: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for record in records:
            name = record.topic.removeprefix(env.overrides["topic_prefix"])
            payloads[name].append(checked(specs[name], record))
        tagged = payloads[TAGGED_MESSAGES.name]
        events = payloads[ACTIVITY_EVENTS.name]
        results = payloads[SEND_RESULTS.name]
        # Four sightings of three messages: three canonical, one linked duplicate.
        assert len(tagged) == 4, reader
        activities = {t["activity_id"] for t in tagged}
        assert len(activities) == 3, reader
        assert sorted(t["canonical"] for t in tagged) == [False, True, True, True], reader
        # One `created` per message, one `updated` for the second sighting.
        created = collections.Counter(e["activity_id"] for e in events if e["kind"] == "created")
        assert created == dict.fromkeys(activities, 1), reader
        assert [e["kind"] for e in events].count("updated") == 1, reader
        assert len(events) == 4, reader
        # The send request: sent, then filed in Sent.
        assert sorted((r["request_id"], r["state"]) for r in results) == [
            (req.request_id, "filed"),
            (req.request_id, "sent"),
        ], reader
    assert [len(r) for r in by_reader.values()] == [10, 10]
    # What the broker stored: every batch of ours compressed as configured (raw-messages
    # from the fetcher and the sender, the rest from dedup, the writer and the sender).
    for name in (RAW_MESSAGES.name, *PUBLIC):
        codecs = kafka.batch_codecs(f"{env.overrides['topic_prefix']}{name}")
        assert codecs and set(codecs) == {"zstd"}, (name, codecs)
