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
- :func:`ensure_internal_topics`: creates a service's own topics outside the registry
  (faust's changelog), before its consumer joins.
- :func:`connected_admin`, :func:`connect_error`: what a failed connection means, as
  one clear error raised at once (a wrong password is not retried).
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
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from schemas.topics import Durability, TopicSpec
from services.common.errors import ConfigurationError, TransientError
from services.common.kafka_oauth import ClientCredentialsTokens
from services.common.kafka_settings import KafkaSettings
from services.common.oauth2.errors import OAuth2Rejected, OAuth2Revoked, OAuth2Unavailable
from services.common.settings import CommonSettings

log = logging.getLogger("mailsync.kafka")

# Raw messages are inlined up to the inline limit (1 MiB by default); leave room for
# headers and batching overhead.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
TOPIC_WAIT_LOG_S = 30.0
DIAGNOSE_TIMEOUT_S = 5.0


class KafkaUnavailable(TransientError):
    """The broker did not answer. Check MAILSYNC_KAFKA_BOOTSTRAP and the network."""


class KafkaAuthFailed(ConfigurationError):
    """The broker refused our credentials or certificate: fix the settings it names."""


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL: the CA file (else the system's trust store),
    and the client certificate for mutual TLS. A file that cannot be loaded is a
    ConfigurationError naming its setting."""
    if not settings.kafka_tls:
        return None
    ca = settings.kafka_ca_file
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise ConfigurationError(f"MAILSYNC_KAFKA_CA_FILE {ca}: cannot load it: {exc}") from None
    if settings.kafka_cert_file is not None and settings.kafka_key_file is not None:
        password = settings.kafka_key_password
        try:
            context.load_cert_chain(
                str(settings.kafka_cert_file),
                str(settings.kafka_key_file),
                password.get_secret_value() if password else None,
            )
        except OSError as exc:
            raise ConfigurationError(
                f"MAILSYNC_KAFKA_CERT_FILE {settings.kafka_cert_file} and MAILSYNC_KAFKA_KEY_FILE "
                f"{settings.kafka_key_file}: cannot load them (MAILSYNC_KAFKA_KEY_PASSWORD?): "
                f"{exc}"
            ) from None
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
            try:
                options["sasl_oauth_token_provider"] = ClientCredentialsTokens(
                    settings.kafka_oauth_token_url,
                    settings.kafka_oauth_client_id,
                    settings.kafka_oauth_client_secret,
                    settings.kafka_oauth_scope,
                )
            except OAuth2Rejected as exc:  # a plain-http token endpoint off loopback
                raise ConfigurationError(f"MAILSYNC_KAFKA_OAUTH_TOKEN_URL: {exc}") from None
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
        compression_type=compression(settings),
        **extra,
    )


def compression(settings: CommonSettings) -> str | None:
    """The producers' ``compression_type`` (aiokafka's and faust's): None for none."""
    return None if settings.kafka_compression == "none" else settings.kafka_compression


def consumer(
    settings: CommonSettings,
    *topics: str,
    group_id: str | None,
    client_id: str,
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int | None = None,
    **extra: object,
) -> AIOKafkaConsumer:
    """A consumer with our defaults; its heartbeat a fifth of the session unless given."""
    return AIOKafkaConsumer(
        *topics,
        **client_options(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms or max(session_timeout_ms // 5, 250),
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


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (aiokafka wraps a TLS alert in a KafkaConnectionError)."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 5 and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def _describe(exc: BaseException) -> str:
    # aiokafka's errors already start with their class name ("[Error 58] Sasl...").
    text = str(exc)
    name = type(exc).__name__
    return text if name in text else f"{name}: {text}" if text else name


def connect_error(settings: KafkaSettings, exc: BaseException) -> Exception:
    """One clear error for a client that could not connect: a refused login, token or
    certificate, or an untrusted broker, is a setting to fix (:class:`KafkaAuthFailed`,
    not retried, naming the settings); anything else is :class:`KafkaUnavailable`."""
    chain = _chain(exc)
    detail = "; ".join(dict.fromkeys(_describe(c) for c in chain))
    where = f"Kafka at {settings.kafka_bootstrap} ({settings.kafka_security_protocol}"
    where += f", {settings.kafka_sasl_mechanism})" if settings.kafka_sasl else ")"
    oauth = (
        "MAILSYNC_KAFKA_OAUTH_TOKEN_URL, MAILSYNC_KAFKA_OAUTH_CLIENT_ID, "
        "MAILSYNC_KAFKA_OAUTH_CLIENT_SECRET and MAILSYNC_KAFKA_OAUTH_SCOPE"
    )

    def found(kind: type[BaseException]) -> BaseException | None:
        return next((c for c in chain if isinstance(c, kind)), None)

    if found(OAuth2Rejected) or found(OAuth2Revoked):
        # ClientCredentialsTokens' message names the settings already.
        return KafkaAuthFailed(f"{where}: no access token: {detail}")
    if found(OAuth2Unavailable):
        return KafkaUnavailable(f"{where}: no access token: {detail}")
    if found(SaslAuthenticationFailed):
        if settings.kafka_sasl_mechanism == "OAUTHBEARER":
            return KafkaAuthFailed(
                f"{where} refused the access token of client "
                f"{settings.kafka_oauth_client_id!r}: check {oauth} ({detail})"
            )
        return KafkaAuthFailed(
            f"{where} refused the login of {settings.kafka_sasl_username!r}: check "
            "MAILSYNC_KAFKA_SASL_USERNAME, MAILSYNC_KAFKA_SASL_PASSWORD and "
            f"MAILSYNC_KAFKA_SASL_MECHANISM ({detail})"
        )
    if found(UnsupportedSaslMechanismError):
        return KafkaAuthFailed(
            f"{where}: this listener does not offer {settings.kafka_sasl_mechanism}: check "
            f"MAILSYNC_KAFKA_SASL_MECHANISM and the port in MAILSYNC_KAFKA_BOOTSTRAP ({detail})"
        )
    unverified = found(ssl.SSLCertVerificationError)
    if isinstance(unverified, ssl.SSLCertVerificationError):
        return KafkaAuthFailed(
            f"{where}: the broker's certificate is not trusted "
            f"({unverified.verify_message}): check MAILSYNC_KAFKA_CA_FILE, and that "
            f"MAILSYNC_KAFKA_BOOTSTRAP names a host of the certificate ({detail})"
        )
    refused = found(ssl.SSLError)
    if isinstance(refused, ssl.SSLError):
        if "ALERT" in (refused.reason or ""):
            # The broker ended the handshake with an alert (RFC 8446 section 6.2): with
            # ssl.client.auth=required, bad_certificate or certificate_required when
            # the client sent none or one it does not trust.
            certificate = (
                "check MAILSYNC_KAFKA_CERT_FILE and MAILSYNC_KAFKA_KEY_FILE (signed by a CA "
                "the broker trusts?)"
                if settings.kafka_cert_file is not None
                else "it may require a client certificate: set MAILSYNC_KAFKA_CERT_FILE and "
                "MAILSYNC_KAFKA_KEY_FILE"
            )
            return KafkaAuthFailed(f"{where} refused the TLS handshake: {certificate} ({detail})")
        return KafkaAuthFailed(
            f"{where}: the TLS handshake failed: check that MAILSYNC_KAFKA_BOOTSTRAP is a TLS "
            f"listener and MAILSYNC_KAFKA_SECURITY_PROTOCOL ({detail})"
        )
    return KafkaUnavailable(
        f"{where} did not answer: {detail}; check MAILSYNC_KAFKA_BOOTSTRAP and "
        "MAILSYNC_KAFKA_SECURITY_PROTOCOL"
    )


async def why_not_connected(
    settings: KafkaSettings, exc: BaseException, timeout_s: float = DIAGNOSE_TIMEOUT_S
) -> BaseException:
    """The reason behind aiokafka's bare "Unable to bootstrap".

    aiokafka's bootstrap logs why each server failed (a SASL refusal, a TLS alert) and
    then raises a KafkaConnectionError that no longer carries it. One more connection,
    made the way aiokafka makes it (``create_conn``: TLS, ApiVersions, SASL, then a
    Metadata request as the bootstrap sends), returns the error itself.
    """
    bare = isinstance(exc, KafkaConnectionError)
    if not bare or not settings.kafka_bootstrap:
        return exc
    options = client_options(settings)
    del options["bootstrap_servers"]
    for host, port, _ in collect_hosts(settings.kafka_bootstrap, randomize=False):
        try:
            async with asyncio.timeout(timeout_s):
                conn = await create_conn(
                    host,
                    port,
                    client_id="mailsync-diagnose",
                    request_timeout_ms=int(timeout_s * 1000),
                    **options,
                )
                try:
                    await conn.send(MetadataRequest([]))
                finally:
                    conn.close()
        except Exception as reason:
            return reason
    return exc


async def connected_admin(
    settings: KafkaSettings, *, client_id: str, timeout_s: float | None = None, **extra: Any
) -> AIOKafkaAdminClient:
    """An admin client that reached the cluster, or the one clear error of why not
    (:func:`connect_error`): raised at once, never retried here."""
    client = admin(settings, client_id=client_id, **extra)
    try:
        async with asyncio.timeout(timeout_s):
            await client.start()
        return client
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await client.close()
        if not isinstance(exc, Exception):
            raise  # cancelled: the caller is stopping
        failure = exc
    # Outside the except block: the reason found is not chained to aiokafka's bare error.
    reason = await why_not_connected(settings, failure, timeout_s or DIAGNOSE_TIMEOUT_S)
    raise connect_error(settings, reason) from failure


async def ensure_topics(settings: CommonSettings, specs: Iterable[TopicSpec]) -> None:
    """Create the registry's missing topics, or wait for them where creating is off."""
    specs = list(specs)
    client = await connected_admin(settings, client_id="mailsync-admin")
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
    await _create_new(
        client,
        [
            NewTopic(
                settings.topic(s),
                s.partitions,
                durability.replicas,
                topic_configs=s.config(durability),
            )
            for s in specs
        ],
    )


async def _create_new(client: AIOKafkaAdminClient, new: list[NewTopic]) -> None:
    # Another replica may create one between list and create.
    with contextlib.suppress(TopicAlreadyExistsError):
        await client.create_topics(new)
    await _until_led(client, [t.name for t in new])
    log.info("created topics %s", [t.name for t in new])


async def ensure_internal_topics(settings: CommonSettings, new: list[NewTopic]) -> None:
    """Create a service's own internal topics (faust's table changelog) if missing, and
    wait until every partition has a leader, whatever ``MAILSYNC_KAFKA_CREATE_TOPICS``
    says: they are not in the registry, so no operator creates them (Strimzi's KafkaUser
    of the service may create its prefix).

    Before the service's consumer joins its group: a topic created after the group's
    leader read the metadata is left out of the assignment, and faust's table then
    takes it for a topic of 0 partitions until the next metadata refresh (5 min).
    """
    client = await connected_admin(settings, client_id="mailsync-admin")
    try:
        existing = set(await client.list_topics())
        missing = [t for t in new if t.name not in existing]
        if missing:
            await _create_new(client, missing)
        else:
            # Just after a broker restart a partition may have no leader yet.
            await _until_led(client, [t.name for t in new])
    finally:
        await client.close()


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
