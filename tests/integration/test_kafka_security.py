"""mailsync on a Kafka cluster as production runs it: TLS, SASL and client certificates.

One broker for the module with the listeners a Strimzi cluster offers: ``SASL_SSL``
(PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) and ``SSL`` requiring a client certificate
(mutual TLS). Every service connects through each of them and does its work; a wrong
setting is one clear error at start and a failed readiness, never a retry loop.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import SecretStr

from devservers import CertificateAuthority, KafkaBroker, OAuthServer, SecureListeners
from devservers._tls import SelfSignedCert
from devservers.corpus import build
from schemas.account import AccountRecord, Endpoint, PersonalOwnership, Security
from schemas.topics import ACCOUNTS, TAGGED_MESSAGES, TOPICS
from services.api.app import ApiApp
from services.api.store import AccountStore
from services.cli import SERVICES
from services.common.dependencies import DependencyProbe
from services.common.errors import ConfigurationError
from services.common.kafka import KafkaAuthFailed, ensure_topics, producer
from services.common.kafka_oauth import ClientCredentialsTokens
from services.common.oauth2.errors import OAuth2Rejected
from services.common.settings import CommonSettings
from services.topic_reader import read_topic
from tests.fixtures.api import api_settings, running_api
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# A user per mechanism (every user may use every mechanism: the broker knows the SCRAM
# users from its storage format, the PLAIN users from its JAAS configuration).
USERS = {"svc-scram512": "s512-Zq8!pw", "svc-scram256": "s256-Xr4?pw", "svc-plain": "pl-Wk2#pw"}
USER_OF = {"SCRAM-SHA-512": "svc-scram512", "SCRAM-SHA-256": "svc-scram256", "PLAIN": "svc-plain"}
# The service account of OAUTHBEARER, at the dev token endpoint.
OAUTH_CLIENT, OAUTH_SECRET = "mailsync-kafka", "oauth-Tn6%secret"
MECHANISMS = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "mTLS", "OAUTHBEARER"]
CUSTOMER = ("Ingrid Berg", "ingrid@fjord-handel.no")
FAST_SENDER = {"sender_backoff_base_s": 0.3, "sender_poll_interval_s": 0.3}


@dataclass(frozen=True)
class SecureKafka:
    broker: KafkaBroker
    ca: CertificateAuthority
    client: SelfSignedCert  # the client certificate of mutual TLS
    stranger: CertificateAuthority  # a CA the broker's certificate is not signed by


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    root = tmp_path_factory.mktemp("secure-kafka")
    ca = CertificateAuthority.create(root / "ca")
    client = ca.issue(root / "client", "mailsync", client=True)
    stranger = CertificateAuthority.create(root / "stranger", "someone else's CA")
    with KafkaBroker(root, secure=SecureListeners(ca, USERS)) as broker:
        yield SecureKafka(broker, ca, client, stranger)


@pytest.fixture(scope="module")
def kafka(secure_kafka: SecureKafka) -> KafkaBroker:
    """The ``env`` fixture's broker is this one: its PLAINTEXT listener deletes each
    test's topics afterwards, and no second broker starts for this module."""
    return secure_kafka.broker


@pytest.fixture(scope="module")
def oauth_client(oauth: OAuthServer) -> OAuthServer:
    oauth.client(OAUTH_CLIENT, OAUTH_SECRET, scope="kafka")
    return oauth


def connection(sk: SecureKafka, oauth: OAuthServer, how: str) -> dict[str, Any]:
    """The ``MAILSYNC_KAFKA_*`` settings of one way in, as an operator would set them."""
    if how == "mTLS":
        return {
            "kafka_bootstrap": sk.broker.mtls_bootstrap,
            "kafka_security_protocol": "SSL",
            "kafka_ca_file": sk.ca.cert,
            "kafka_cert_file": sk.client.cert,
            "kafka_key_file": sk.client.key,
        }
    sasl: dict[str, Any] = {
        "kafka_bootstrap": sk.broker.sasl_ssl_bootstrap,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": how,
        "kafka_ca_file": sk.ca.cert,
    }
    if how == "OAUTHBEARER":
        return sasl | {
            "kafka_oauth_token_url": oauth.token_url,
            "kafka_oauth_client_id": OAUTH_CLIENT,
            "kafka_oauth_client_secret": SecretStr(OAUTH_SECRET),
            "kafka_oauth_scope": "kafka",
        }
    user = USER_OF[how]
    return sasl | {"kafka_sasl_username": user, "kafka_sasl_password": SecretStr(USERS[user])}


@pytest.fixture
def secure_env(env: Env, secure_kafka: SecureKafka, oauth_client: OAuthServer) -> Env:
    """``env`` on the SASL_SSL listener as svc-scram512 (tests change what they test)."""
    env.overrides.update(connection(secure_kafka, oauth_client, "SCRAM-SHA-512"))
    return env


# -- every service, every way in --------------------------------------------------------


async def save_account(env: Env, db: Any, record: AccountRecord) -> None:
    """Save the account as the API does: MongoDB for the API, the topic for the others."""
    await ensure_topics(env.settings, [ACCOUNTS])
    prod = producer(env.settings, client_id="test-admin")
    await prod.start()
    try:
        await AccountStore(db, prod, env.settings).save(record)
    finally:
        await prod.stop()


@pytest.mark.parametrize("how", MECHANISMS)
async def test_every_service_works_through_the_secure_listener(
    how: str, env: Env, secure_kafka: SecureKafka, oauth_client: OAuthServer, pipeline: Pipeline
) -> None:
    assert env.dovecot.cert is not None
    env.overrides.update(
        connection(secure_kafka, oauth_client, how),
        sender_ca_file=env.dovecot.cert.cert,
        **FAST_SENDER,
    )
    jana = env.mail_user("jana")
    customer = env.mail_user("customer")
    account = env.account(
        jana,
        account_id=f"jana-{env.overrides['mongo_database']}",
        ownership=PersonalOwnership(owner="u-jana"),
        smtp=Endpoint(
            host="127.0.0.1", port=env.smtp.port, security=Security.STARTTLS, username=jana.address
        ),
    )
    inbound = build(
        random.Random(7),
        CUSTOMER,
        [("Jana", jana.address)],
        date=dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC),
    )
    env.dovecot.deliver(jana.address, inbound.message, mail_from=CUSTOMER[1])

    every = ("fetcher", "dedup", "activity-writer", "sender")
    tokens_before = oauth_client.issued(OAUTH_CLIENT)
    async with env.mongo() as db:
        await save_account(env, db, account)
    async with env.mongo() as db, pipeline(*every) as running, running_api(env) as api:
        # Readiness of a service on this listener: Kafka and MongoDB answer.
        probe = DependencyProbe(env.settings, TOPICS)
        try:
            assert await probe.check() == {"kafka": None, "mongodb": None}
        finally:
            await probe.close()

        # In: Dovecot -> fetcher -> dedup (faust) -> activity writer -> MongoDB.
        async def arrived() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None",
                await db.activities.find_one({"message_id": inbound.message_id}),
            )

        doc = await eventually(arrived, timeout=60, what="the inbound activity")
        assert doc["direction"] == "inbound"
        assert doc["account_ids"] == [account.account_id]
        # What other systems read from our public topic (`mailsync topic`), here too.
        tagged = await read_topic(env.settings, env.settings.topic(TAGGED_MESSAGES))
        assert [r.meta["activity_id"] for r in tagged if r.meta] == [doc["_id"]]

        # Out: API -> send-requests -> sender -> SMTP, and the CRM shows what was sent.
        reply = await api.client("u-jana").post(
            "/v1/send",
            json={
                "account_id": account.account_id,
                "to": [{"address": customer.address}],
                "subject": "Re: " + doc["subject"],
                "text_body": "Thank you, the order is on its way.",
                "in_reply_to_activity": doc["_id"],
            },
        )
        assert reply.status_code == 202, reply.text

        async def sent() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None", await db.activities.find_one({"direction": "outbound"})
            )

        out = await eventually(sent, timeout=60, what="the outbound activity")
        assert out["subject"] == "Re: " + doc["subject"]
        assert out["to"][0]["address"] == customer.address
        assert env.dovecot.status(customer.address, "INBOX")["messages"] == "1"
    if how == "OAUTHBEARER":  # the tokens came from the token endpoint
        assert oauth_client.issued(OAUTH_CLIENT) > tokens_before


# -- a wrong setting: one clear error at start, and readiness says so --------------------

FAILURES: dict[str, tuple[str, dict[str, Any] | str, list[str]]] = {
    # case: (service, what to change, the settings the message must name)
    "wrong SCRAM password": (
        "fetcher",
        {"kafka_sasl_password": SecretStr("not-the-password")},
        ["MAILSYNC_KAFKA_SASL_PASSWORD", "MAILSYNC_KAFKA_SASL_USERNAME"],
    ),
    "unknown user": (
        "dedup",
        {"kafka_sasl_username": "nobody"},
        ["MAILSYNC_KAFKA_SASL_USERNAME", "MAILSYNC_KAFKA_SASL_PASSWORD"],
    ),
    "untrusted broker certificate": ("activity-writer", "stranger", ["MAILSYNC_KAFKA_CA_FILE"]),
    "mTLS without a client certificate": (
        "sender",
        "no client certificate",
        ["MAILSYNC_KAFKA_CERT_FILE", "MAILSYNC_KAFKA_KEY_FILE"],
    ),
    "wrong OAuth client secret": (
        "api",
        "wrong client secret",
        ["MAILSYNC_KAFKA_OAUTH_CLIENT_SECRET", "MAILSYNC_KAFKA_OAUTH_CLIENT_ID"],
    ),
}


def broken(sk: SecureKafka, oauth: OAuthServer, change: dict[str, Any] | str) -> dict[str, Any]:
    if change == "stranger":
        return connection(sk, oauth, "SCRAM-SHA-512") | {"kafka_ca_file": sk.stranger.cert}
    if change == "no client certificate":
        return connection(sk, oauth, "mTLS") | {"kafka_cert_file": None, "kafka_key_file": None}
    if change == "wrong client secret":
        return connection(sk, oauth, "OAUTHBEARER") | {
            "kafka_oauth_client_secret": SecretStr("guessed")
        }
    assert isinstance(change, dict)
    return connection(sk, oauth, "SCRAM-SHA-512") | change


@pytest.mark.parametrize("case", list(FAILURES))
async def test_a_wrong_setting_fails_the_start_at_once_and_readiness_names_it(
    case: str, env: Env, secure_kafka: SecureKafka, oauth_client: OAuthServer
) -> None:
    service, change, named = FAILURES[case]
    env.overrides.update(broken(secure_kafka, oauth_client, change))
    app = ApiApp(api_settings(env)) if service == "api" else SERVICES[service](env.overrides)
    began = time.monotonic()
    try:
        with pytest.raises(KafkaAuthFailed) as failed:
            await asyncio.wait_for(app.start(), 30)
    finally:
        await app.cleanup(True)
    assert time.monotonic() - began < 5, "the start retried instead of failing"
    message = str(failed.value)
    for setting in named:
        assert setting in message
    assert isinstance(failed.value, ConfigurationError) and not failed.value.retriable
    # No secret in the message an operator reads in the log.
    for secret in [*USERS.values(), OAUTH_SECRET, "not-the-password", "guessed"]:
        assert secret not in message

    probe = DependencyProbe(env.settings, TOPICS)
    try:
        assert await probe.check() == {
            "kafka": "authentication failed (see the log)",
            "mongodb": None,
        }
    finally:
        await probe.close()


def test_the_command_exits_with_one_clear_line_on_a_wrong_password(secure_env: Env) -> None:
    env = secure_env
    environ = env.environ(kafka_sasl_password="not-the-password")
    began = time.monotonic()
    done = subprocess.run(
        # The console script, as the pod's command runs it.
        [str(Path(sys.executable).with_name("mailsync")), "fetcher"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - began
    assert done.returncode == 2, done.stderr
    assert took < 20
    lines = done.stderr.strip().splitlines()
    # The JSON log of the start, then the one line saying what to fix.
    assert all(line.startswith('{"time": ') for line in lines[:-1]), done.stderr
    assert lines[-1].startswith("mailsync: Kafka at ")
    assert "refused the login of 'svc-scram512'" in lines[-1]
    assert "MAILSYNC_KAFKA_SASL_PASSWORD" in lines[-1]
    assert "Traceback" not in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout


# -- OAUTHBEARER tokens -----------------------------------------------------------------


def unpadded_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def test_client_credentials_tokens_are_fetched_once_and_reused(oauth: OAuthServer) -> None:
    oauth.client("svc-cache", "cache-secret", lifetime_s=600, scope="kafka")
    tokens = ClientCredentialsTokens(oauth.token_url, "svc-cache", SecretStr("cache-secret"))
    first = await tokens.token()
    assert await tokens.token() == first
    assert oauth.issued("svc-cache") == 1
    # An unsecured JWS: {"alg": "none"}, the client as subject, an empty signature.
    header, payload, signature = first.split(".")
    assert signature == "" and "=" not in first  # base64url without padding
    claims = unpadded_json(payload)
    assert unpadded_json(header) == {"alg": "none"}
    assert claims["sub"] == "svc-cache" and claims["scope"] == "kafka"
    assert claims["exp"] - claims["iat"] == 600

    # A token within the refresh margin of its end is replaced before use.
    oauth.client("svc-short", "short-secret", lifetime_s=30)
    short = ClientCredentialsTokens(oauth.token_url, "svc-short", SecretStr("short-secret"))
    await short.token()
    await short.token()
    assert oauth.issued("svc-short") == 2


async def test_a_wrong_client_secret_is_a_clear_error(oauth_client: OAuthServer) -> None:
    tokens = ClientCredentialsTokens(oauth_client.token_url, OAUTH_CLIENT, SecretStr("guessed"))
    with pytest.raises(OAuth2Rejected) as refused:
        await tokens.token()
    message = str(refused.value)
    assert "invalid_client" in message
    assert "MAILSYNC_KAFKA_OAUTH_CLIENT_SECRET" in message and "guessed" not in message
    assert not refused.value.retriable


# -- secrets from mounted files ----------------------------------------------------------


async def test_the_password_from_a_mounted_file_connects(
    secure_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = secure_env
    password = env.overrides.pop("kafka_sasl_password").get_secret_value()
    mounted = tmp_path / "kafka-user" / "password"
    mounted.parent.mkdir()
    mounted.write_text(password + "\n")  # as `kubectl create secret --from-file` leaves it
    monkeypatch.setenv("MAILSYNC_KAFKA_SASL_PASSWORD_FILE", str(mounted))
    settings = CommonSettings(**env.overrides)
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == password

    await ensure_topics(settings, [ACCOUNTS])
    writer = SERVICES["activity-writer"](dict(env.overrides))
    try:
        await asyncio.wait_for(writer.start(), 60)
    finally:
        await writer.cleanup(False)
