"""OAuth2 accounts against real servers: Dovecot and the dev SMTP server check access
tokens by introspection at the dev OAuth2 server, which issues and revokes them."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import re
import ssl
from functools import partial
from typing import Any

import aiosmtplib
import pytest
from bson import json_util

from devservers import MailUser, OAuthServer
from devservers.corpus import build
from schemas.account import AccountRecord, OAuth2Mechanism, OAuth2Secret
from schemas.account_document import AccountDocument
from schemas.topics import ACCOUNTS, MAILBOX_EVENTS, RAW_MESSAGES
from services.api.store import AccountStore
from services.common.kafka import ensure_topics, producer
from services.common.oauth2 import OAuth2Revoked, TokenProvider
from services.common.smtp_auth import smtp_login
from services.topic_reader import read_topic
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CUSTOMER = ("Ingrid Berg", "ingrid@fjord-handel.no")
CLIENT_ID = "mailsync-test"
# What the dev server's tokens look like: nothing like them may be stored or logged.
TOKEN = re.compile(r"\b[ar]t-[A-Za-z0-9_-]{32}")
# Only the fetcher: what it publishes and records is what these tests are about. A
# connection the server drops during IDLE is noticed when the IMAP timeout expires.
FETCHER = {"oauth2_refresh_margin_s": 0.5, "fetcher_imap_timeout_s": 5.0}


def oauth_secret(
    env: Env,
    oauth: OAuthServer,
    user: MailUser,
    *,
    lifetime_s: float = 3600,
    mechanism: OAuth2Mechanism = OAuth2Mechanism.XOAUTH2,
    rotate: bool = False,
) -> tuple[OAuth2Secret, str]:
    """The user consents: a grant at the OAuth2 server, stored encrypted in a secret."""
    client_secret = f"cs-{user.address}"
    refresh = oauth.grant(
        user.address, CLIENT_ID, client_secret, lifetime_s=lifetime_s, rotate=rotate
    )
    secret = OAuth2Secret(
        token_url=oauth.token_url,
        client_id=CLIENT_ID,
        client_secret_ciphertext=env.box.encrypt(client_secret),
        refresh_token_ciphertext=env.box.encrypt(refresh),
        mechanism=mechanism,
    )
    return secret, refresh


def deliver(env: Env, address: str, seed: int) -> str:
    when = dt.datetime(2026, 9, 1 + seed, 8, 0, tzinfo=dt.UTC)
    mail = build(random.Random(seed), CUSTOMER, [("Me", address)], date=when)
    env.dovecot.deliver(address, mail.message, mail_from=CUSTOMER[1])
    return mail.message_id


async def published(env: Env, account: AccountRecord, message_id: str) -> bool:
    """The fetcher published the message with this Message-ID for this account."""
    records = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    return any(
        r.meta["location"]["account_id"] == account.account_id
        and message_id.encode() in (r.value or b"")
        for r in records
        if r.meta
    )


async def state(db: Any, account: AccountRecord) -> dict[str, Any]:
    return await db.account_states.find_one({"_id": account.account_id}) or {}


async def written_status(db: Any, account: AccountRecord) -> str:
    """The account's status once the fetcher wrote one: a state is written up to a flush
    and a settling time after it is set (services.fetcher.state), so a message can be
    published before the account's first state is."""

    async def status() -> str | None:
        return (await state(db, account)).get("status")

    found: str = await eventually(status, timeout=10, what=f"{account.account_id}'s state")
    return found


async def test_oauth2_account_syncs_and_refreshes_an_expired_token_without_leaking_it(
    env: Env, pipeline: Pipeline, oauth: OAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("mailsync", "aioimaplib", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    user = env.mail_user("oauth")
    # Access tokens live 2 s: any reconnect after that needs a refresh.
    secret, refresh = oauth_secret(env, oauth, user, lifetime_s=2.0)
    account = env.account(
        user, account_id=f"oauth-{env.overrides['mongo_database']}", secret=secret
    )
    await env.publish_accounts(account)
    first = deliver(env, user.address, 1)

    async with env.mongo() as db, pipeline("fetcher", **FETCHER) as running:

        async def synced(mid: str) -> bool:
            running.check()
            return await published(env, account, mid)

        await eventually(lambda: synced(first), timeout=60, what="the first message")
        assert await written_status(db, account) in ("idle", "syncing")
        assert oauth.refreshes(refresh) == 1

        # The token expires; the server drops the connection; the fetcher reconnects
        # and must refresh to log in again.
        await asyncio.sleep(2.5)
        env.dovecot.doveadm("kick", user.address)
        second = deliver(env, user.address, 2)
        await eventually(lambda: synced(second), timeout=60, what="the message after expiry")
        assert oauth.refreshes(refresh) >= 2
        assert "XOAUTH2" in (env.dovecot.root / "dovecot.log").read_text()

        documents = []
        for name in await db.list_collection_names():
            documents += await db[name].find().to_list(None)
    stored = json_util.dumps(documents)
    bootstrap = env.overrides["kafka_bootstrap"]
    on_kafka = b""
    for topic in (ACCOUNTS, RAW_MESSAGES, MAILBOX_EVENTS):
        for r in await read_topic(bootstrap, env.settings.topic(topic)):
            on_kafka += (r.value or b"") + b"".join(r.headers.values())
    assert f'"refresh_token_ciphertext":"{secret.refresh_token_ciphertext}"'.encode() in on_kafka
    assert refresh not in stored and not TOKEN.search(stored)
    assert refresh.encode() not in on_kafka and not TOKEN.search(on_kafka.decode(errors="replace"))
    assert caplog.text and "access token refreshed" in caplog.text
    assert refresh not in caplog.text and not TOKEN.search(caplog.text)
    assert f"cs-{user.address}" not in caplog.text + stored


async def test_revoked_refresh_token_is_auth_failed_and_other_accounts_keep_syncing(
    env: Env, pipeline: Pipeline, oauth: OAuthServer
) -> None:
    suffix = env.overrides["mongo_database"]
    revoked_user, live_user, password_user = (
        env.mail_user(n) for n in ("revoked", "live", "password")
    )
    revoked_secret, revoked_refresh = oauth_secret(env, oauth, revoked_user)
    oauth.revoke(revoked_refresh)  # consent withdrawn before the fetcher ever starts
    live_secret, live_refresh = oauth_secret(
        env, oauth, live_user, mechanism=OAuth2Mechanism.OAUTHBEARER
    )
    revoked = env.account(revoked_user, account_id=f"revoked-{suffix}", secret=revoked_secret)
    live = env.account(live_user, account_id=f"live-{suffix}", secret=live_secret)
    password = env.account(password_user, account_id=f"password-{suffix}")
    await env.publish_accounts(revoked, live, password)
    firsts = {acc.account_id: deliver(env, acc.address, 3) for acc in (live, password)}

    async with env.mongo() as db, pipeline("fetcher", **FETCHER) as running:

        async def synced(acc: AccountRecord, mid: str) -> bool:
            running.check()
            return await published(env, acc, mid)

        for acc in (live, password):
            await eventually(
                partial(synced, acc, firsts[acc.account_id]),
                timeout=60,
                what=f"{acc.account_id} to sync",
            )

        async def auth_failed(acc: AccountRecord) -> dict[str, Any] | None:
            running.check()
            doc = await state(db, acc)
            return doc if doc.get("status") == "auth_failed" else None

        doc = await eventually(lambda: auth_failed(revoked), timeout=30, what="auth_failed")
        assert "invalid_grant" in doc["reason"] and "sign in again" in doc["reason"]

        # The live account's user withdraws consent too: its access tokens die at once.
        oauth.revoke(live_refresh)
        env.dovecot.doveadm("kick", live_user.address)
        doc = await eventually(lambda: auth_failed(live), timeout=60, what="live auth_failed")
        assert "invalid_grant" in doc["reason"]

        later = deliver(env, password_user.address, 4)
        await eventually(lambda: synced(password, later), timeout=60, what="other account")
        assert await written_status(db, password) in ("idle", "syncing")


def _tls(env: Env) -> ssl.SSLContext:
    assert env.dovecot.cert is not None
    return ssl.create_default_context(cafile=str(env.dovecot.cert.cert))


@pytest.mark.parametrize("mechanism", list(OAuth2Mechanism))
async def test_smtp_oauth2_login_succeeds_then_fails_clearly_once_revoked(
    env: Env, oauth: OAuthServer, mechanism: OAuth2Mechanism
) -> None:
    user = env.mail_user(f"smtp-{mechanism.value.lower()}")
    secret, refresh = oauth_secret(env, oauth, user, mechanism=mechanism)
    async with TokenProvider(env.box) as tokens:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=env.smtp.port, start_tls=True, tls_context=_tls(env)
        )
        async with client:
            await smtp_login(client, user.address, secret, env.box, tokens, account_id="a")
            # Authenticated: the server relays as this user.
            mail = build(
                random.Random(5),
                ("Me", user.address),
                [("Me", user.address)],
                date=dt.datetime(2026, 9, 9, tzinfo=dt.UTC),
            )
            await client.sendmail(user.address, [user.address], mail.message)
        assert env.dovecot.status(user.address, "INBOX")["messages"] == "1"

        oauth.revoke(refresh)
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=env.smtp.port, start_tls=True, tls_context=_tls(env)
        )
        async with client:
            # The cached token is refused (535), the refresh says invalid_grant.
            with pytest.raises(OAuth2Revoked, match="invalid_grant"):
                await smtp_login(client, user.address, secret, env.box, tokens, account_id="a")


async def test_smtp_password_login_and_a_bad_token(env: Env, oauth: OAuthServer) -> None:
    user = env.mail_user("smtp-password")
    async with TokenProvider(env.box) as tokens:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=env.smtp.port, start_tls=True, tls_context=_tls(env)
        )
        async with client:
            password = env.account(user).secret
            assert password is not None
            assert (
                await smtp_login(client, user.address, password, env.box, tokens, account_id="p")
                is None
            )
        # A token granted for someone else is refused with the server's 535.
        other = env.mail_user("smtp-other")
        secret, _ = oauth_secret(env, oauth, other)
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=env.smtp.port, start_tls=True, tls_context=_tls(env)
        )
        async with client:
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                await smtp_login(client, user.address, secret, env.box, tokens, account_id="x")
            assert refused.value.code == 535


async def test_rotated_refresh_token_is_used_and_handed_back(env: Env, oauth: OAuthServer) -> None:
    user = env.mail_user("rotate")
    secret, first_refresh = oauth_secret(env, oauth, user, lifetime_s=1.0, rotate=True)
    async with TokenProvider(env.box, margin_s=0.0) as tokens:
        token = await tokens.access_token("r", secret)
        rotated = token.rotated_secret
        assert rotated is not None
        new_refresh = env.box.decrypt(rotated.refresh_token_ciphertext)
        assert new_refresh != first_refresh and TOKEN.fullmatch(new_refresh)
        # The old refresh token is dead at the server; the provider uses the new one.
        await asyncio.sleep(1.1)
        again = await tokens.access_token("r", secret)
        assert again.token != token.token and again.rotated_secret is not None
        assert oauth.refreshes(first_refresh) == 2
        # Once the owner republished the record with the rotated secret, nothing is pending.
        persisted = await tokens.access_token("r", again.rotated_secret)
        assert persisted.rotated_secret is None and persisted.token == again.token


async def _latest_record(env: Env, account_id: str) -> AccountRecord | None:
    records = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(ACCOUNTS))
    mine = [r for r in records if r.key == account_id.encode() and r.value]
    return AccountRecord.model_validate_json(mine[-1].value or b"") if mine else None


async def test_a_rotated_refresh_token_is_persisted_so_a_restarted_fetcher_still_logs_in(
    env: Env, pipeline: Pipeline, oauth: OAuthServer
) -> None:
    suffix = env.overrides["mongo_database"]
    # One account saved through the API (its MongoDB copy and the topic), one published
    # on the topic alone; both grants rotate their refresh token at every refresh.
    api_user, topic_user = env.mail_user("rot-api"), env.mail_user("rot-topic")
    api_secret, api_refresh = oauth_secret(env, oauth, api_user, rotate=True)
    topic_secret, topic_refresh = oauth_secret(env, oauth, topic_user, rotate=True)
    api_acc = env.account(api_user, account_id=f"rot-api-{suffix}", secret=api_secret)
    topic_acc = env.account(topic_user, account_id=f"rot-topic-{suffix}", secret=topic_secret)
    await ensure_topics(env.settings, [ACCOUNTS])
    prod = producer(env.settings, client_id="test")
    await prod.start()
    try:
        async with env.mongo() as db:
            await AccountStore(db, prod, env.settings).save(api_acc)
    finally:
        await prod.stop()
    await env.publish_accounts(topic_acc)
    accounts = {api_acc.account_id: api_refresh, topic_acc.account_id: topic_refresh}

    async with env.mongo() as db:
        for run, seed in ((1, 10), (2, 20)):
            # Run 2 is a new process: it knows only what run 1 persisted, and the
            # first refresh tokens are dead at the server since they were rotated.
            mids = {acc.account_id: deliver(env, acc.address, seed) for acc in (api_acc, topic_acc)}
            async with pipeline("fetcher", **FETCHER) as running:
                for acc in (api_acc, topic_acc):

                    async def synced(
                        acc: AccountRecord = acc, mid: str = mids[acc.account_id]
                    ) -> bool:
                        running.check()
                        return await published(env, acc, mid)

                    await eventually(synced, timeout=60, what=f"run {run}: {acc.account_id}")
                    # Logged in; the republished record may be restarting the worker.
                    assert await written_status(db, acc) not in ("auth_failed", "error")

                    async def rotated(acc: AccountRecord = acc) -> str | None:
                        record = await _latest_record(env, acc.account_id)
                        assert record is not None and isinstance(record.secret, OAuth2Secret)
                        token = env.box.decrypt(record.secret.refresh_token_ciphertext)
                        return token if token != accounts[acc.account_id] else None

                    # The topic carries the newest refresh token, encrypted.
                    accounts[acc.account_id] = await eventually(
                        rotated, timeout=30, what=f"run {run}: {acc.account_id} republished"
                    )
            # The API's copy has it too, so a later edit through the API keeps it.
            doc = await db.accounts.find_one({"_id": api_acc.account_id})
            saved = AccountDocument.model_validate(doc).record.secret
            assert isinstance(saved, OAuth2Secret)
            assert env.box.decrypt(saved.refresh_token_ciphertext) == accounts[api_acc.account_id]
            assert await db.accounts.count_documents({"_id": topic_acc.account_id}) == 0
