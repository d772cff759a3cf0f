"""Kafka clients, configured the same way for every service (and for faust, in dedup).

- :func:`client_options`: how to reach the cluster (security protocol, TLS, SASL), the
  one place every aiokafka client and faust take it from.
- :func:`producer`: idempotent (``enable_idempotence``, KIP-98) with ``acks=all``, so a
  retried produce request never writes a record twice.
- :func:`consumer`: never auto-commits; offsets are committed after the side effect is
  durable.
- :func:`ensure_topics`: creates the registry's missing topics, or, where
  ``MAILSYNC_KAFKA_CREATE_TOPICS`` is off (Strimzi owns them), waits for them, naming
  the missing ones in the log and in readiness.
- :func:`connect_error`: what a failed connection means, as one clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import Durability, TopicSpec
from services.common.errors import ConfigurationError, TransientError
from services.common.kafka_oauth import ClientCredentialsTokens
from services.common.kafka_settings import KafkaSettings
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.kafka")

# Raw messages are inlined up to the inline limit (1 MiB by default); leave room for
# headers and batching overhead.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
TOPIC_WAIT_LOG_S = 30.0


class KafkaUnavailable(TransientError):
    """The broker did not answer. Check MAILSYNC_KAFKA_BOOTSTRAP and the network."""


class KafkaAuthFailed(ConfigurationError):
    """The broker refused our credentials or certificate: fix the settings it names."""


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL: the CA file (else the system's trust store),
    and the client certificate for mutual TLS."""
    if not settings.kafka_tls:
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ca_file) if settings.kafka_ca_file else None
    )
    if settings.kafka_cert_file is not None and settings.kafka_key_file is not None:
        password = settings.kafka_key_password
        context.load_cert_chain(
            str(settings.kafka_cert_file),
            str(settings.kafka_key_file),
            password.get_secret_value() if password else None,
        )
    return context


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client (producer, consumer, admin) gets."""
    if not settings.kafka_bootstrap:
        raise ConfigurationError("MAILSYNC_KAFKA_BOOTSTRAP is not set")
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_sasl:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        if settings.kafka_sasl_mechanism == "OAUTHBEARER":
            assert settings.kafka_oauth_token_url and settings.kafka_oauth_client_id
            assert settings.kafka_oauth_client_secret is not None
            options["sasl_oauth_token_provider"] = ClientCredentialsTokens(
                settings.kafka_oauth_token_url,
                settings.kafka_oauth_client_id,
                settings.kafka_oauth_client_secret,
                settings.kafka_oauth_scope,
            )
        else:
            assert settings.kafka_sasl_password is not None
            options["sasl_plain_username"] = settings.kafka_sasl_username
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def producer(settings: CommonSettings, *, client_id: str, **extra: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        request_timeout_ms=30_000,
        **extra,
    )


def consumer(
    settings: CommonSettings,
    *topics: str,
    group_id: str | None,
    client_id: str,
    session_timeout_ms: int = 10_000,
    **extra: object,
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        **client_options(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 5, 250),
        max_partition_fetch_bytes=MAX_REQUEST_BYTES,
        fetch_max_bytes=4 * MAX_REQUEST_BYTES,
        **extra,
    )


async def partitions_of(client: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, for a consumer that assigns them by hand.

    aiokafka's ``partitions_for_topic`` answers from the metadata of the topics the
    consumer tracks, and one without a subscription tracks none (``topics()`` fetches
    a separate copy); ``add_topic`` makes the client track it and refreshes. aiokafka
    0.14 has no public call for this.
    """
    await client._client.add_topic(topic)
    partitions = client.partitions_for_topic(topic) or set()
    if not partitions:
        raise KafkaUnavailable(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(partitions)]


def admin(settings: KafkaSettings, *, client_id: str, **extra: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), client_id=client_id, **extra)


def connect_error(settings: KafkaSettings, exc: BaseException) -> Exception:
    """One clear error for a client that could not connect: a refused login or an
    untrusted certificate is a setting to fix (not retried); anything else is transient."""
    text = f"{type(exc).__name__}: {exc}"
    where = f"Kafka at {settings.kafka_bootstrap} ({settings.kafka_security_protocol}"
    where += f", {settings.kafka_sasl_mechanism})" if settings.kafka_sasl else ")"
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    names = " ".join(type(c).__name__ for c in chain) + " " + " ".join(map(str, chain))
    if "SaslAuthenticationFailed" in names or "Authentication failed" in names:
        return KafkaAuthFailed(
            f"{where} refused the login of {settings.kafka_sasl_username or 'the client'!r}: "
            "check MAILSYNC_KAFKA_SASL_USERNAME, MAILSYNC_KAFKA_SASL_PASSWORD and "
            f"MAILSYNC_KAFKA_SASL_MECHANISM ({text})"
        )
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in chain) or (
        "CERTIFICATE_VERIFY_FAILED" in names
    ):
        return KafkaAuthFailed(
            f"{where}: the broker's certificate is not trusted: check MAILSYNC_KAFKA_CA_FILE "
            f"({text})"
        )
    if any(isinstance(c, ssl.SSLError) for c in chain) or "TLSV13_ALERT" in names:
        return KafkaAuthFailed(
            f"{where}: the TLS handshake failed (a client certificate missing or refused?): "
            f"check MAILSYNC_KAFKA_CERT_FILE and MAILSYNC_KAFKA_KEY_FILE ({text})"
        )
    return KafkaUnavailable(f"{where} did not answer: {text}")


async def ensure_topics(settings: CommonSettings, specs: Iterable[TopicSpec]) -> None:
    """Create the registry's missing topics, or wait for them where creating is off."""
    specs = list(specs)
    client = admin(settings, client_id="mailsync-admin")
    try:
        await client.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            await client.close()
        raise connect_error(settings, exc) from exc
    try:
        waited = 0.0
        while True:
            existing = set(await client.list_topics())
            missing = [s for s in specs if settings.topic(s) not in existing]
            if not missing:
                return
            if settings.kafka_create_topics:
                await _create(client, settings, missing)
                return
            if waited % TOPIC_WAIT_LOG_S == 0:
                log.warning(
                    "waiting for topics %s (MAILSYNC_KAFKA_CREATE_TOPICS is off: they are "
                    "created by the cluster's operator, e.g. Strimzi KafkaTopics)",
                    ", ".join(settings.topic(s) for s in missing),
                )
            await asyncio.sleep(1.0)
            waited += 1.0
    finally:
        await client.close()


async def _create(
    client: AIOKafkaAdminClient, settings: CommonSettings, specs: list[TopicSpec]
) -> None:
    durability = Durability(settings.kafka_replication_factor, settings.kafka_min_insync_replicas)
    new = [
        NewTopic(
            settings.topic(s),
            s.partitions,
            durability.replicas,
            topic_configs=s.config(durability),
        )
        for s in specs
    ]
    # Another replica may create one between list and create.
    with contextlib.suppress(TopicAlreadyExistsError):
        await client.create_topics(new)
    await _until_led(client, [t.name for t in new])
    log.info("created topics %s", [t.name for t in new])


async def _until_led(client: AIOKafkaAdminClient, names: list[str], timeout: float = 30) -> None:
    """Wait until every partition of ``names`` has a leader. CreateTopics answers once the
    controller has the topic; the broker's metadata follows a moment later, and a client
    that asks before then is told the topic does not exist."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await client.describe_topics(names)
        if all(
            t.get("error_code", 0) == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise KafkaUnavailable(f"topics {names} have no leader {timeout:.0f}s after creation")
        await asyncio.sleep(0.05)


async def missing_topics(
    client: AIOKafkaAdminClient, settings: CommonSettings, specs: Iterable[TopicSpec]
) -> list[str]:
    """Which of ``specs`` the cluster lacks (for readiness where creating is off).

    Only the process's own topics: with ACLs (the prod overlay's KafkaUsers), the
    broker's metadata lists only the topics this principal may describe.
    """
    existing = set(await client.list_topics())
    return [settings.topic(s) for s in specs if settings.topic(s) not in existing]
