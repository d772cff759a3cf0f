"""The sender's sessions per account, against the real SMTP server and Dovecot: a burst
is sent over a few logged-in sessions, and sessions dropped under it lose nothing and
send nothing twice."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from devservers import OAuthServer
from schemas.send_request import SendState
from tests.fixtures.mail_client import mbsync_folder
from tests.fixtures.pipeline import Env, Pipeline, eventually
from tests.integration.test_oauth2 import oauth_secret
from tests.integration.test_sender import (
    final_states,
    message_count,
    publish,
    request,
    results,
    senv,  # noqa: F401 (the fixture)
    shared_info,
    waiter,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_a_burst_logs_in_a_few_times_not_once_per_message(
    senv: Env,  # noqa: F811
    pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    burst = [request(account, customer, subject=f"Dodací list {n:02d}") for n in range(40)]
    async with pipeline("sender") as running:
        await publish(env, *burst)
        await waiter(env, running)({r.request_id for r in burst}, {SendState.FILED}, timeout=180)
    # One login per message before sessions were kept; now a few for the whole burst.
    assert 1 <= env.smtp.logins(info.address) <= 10
    inbox = mbsync_folder(env.dovecot, customer, "INBOX", tmp_path / "customer")
    assert sorted(m.message["Subject"] for m in inbox) == [
        f"Dodací list {n:02d}" for n in range(40)
    ]
    assert message_count(env, info, "Sent") == 40


async def test_sessions_dropped_mid_burst_lose_nothing_and_send_nothing_twice(
    senv: Env,  # noqa: F811
    pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    """The SMTP server cuts its idle sessions and Dovecot kicks the IMAP ones while a
    burst is under way: every message still arrives once and is filed once."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    burst = [request(account, customer, subject=f"Faktura {n:03d}") for n in range(100)]
    ids = {r.request_id for r in burst}
    async with pipeline("sender") as running:
        await publish(env, *burst)

        async def filed(at_least: int) -> bool:
            running.check()
            done = final_states(await results(env))
            return sum(done.get(i) is SendState.FILED for i in ids) >= at_least

        await eventually(lambda: filed(10), timeout=120, interval=0.2, what="10 filed")
        logins = env.smtp.logins(info.address)

        async def dropped() -> bool:
            env.smtp.drop_idle_connections()
            with contextlib.suppress(RuntimeError):  # no IMAP session open just now
                env.dovecot.doveadm("kick", info.address)
            return env.smtp.logins(info.address) > logins

        # Sessions busy in a transaction are spared: drop until one that was kept for
        # the next message is gone and has been replaced by a new login.
        await eventually(dropped, timeout=60, interval=0.2, what="a session dropped")
        found = await waiter(env, running)(ids, {SendState.FILED, SendState.FAILED}, timeout=180)
    assert {final_states(found)[i] for i in ids} == {SendState.FILED}
    inbox = mbsync_folder(env.dovecot, customer, "INBOX", tmp_path / "customer")
    assert sorted(m.message["Subject"] for m in inbox) == [f"Faktura {n:03d}" for n in range(100)]
    assert len({m.message["Message-ID"] for m in inbox}) == 100
    sent = mbsync_folder(env.dovecot, info, "Sent", tmp_path / "info")
    assert sorted(m.message["Subject"] for m in sent) == [f"Faktura {n:03d}" for n in range(100)]


async def test_an_oauth2_burst_shares_sessions_logged_in_with_tokens(
    senv: Env,  # noqa: F811
    pipeline: Pipeline,
    oauth: OAuthServer,
) -> None:
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    secret, _ = oauth_secret(env, oauth, info)
    oauth_account = account.model_copy(update={"secret": secret})
    await env.publish_accounts(oauth_account)
    burst = [request(oauth_account, customer, subject=f"Objednávka {n}") for n in range(20)]
    async with pipeline("sender") as running:
        await publish(env, *burst)
        await waiter(env, running)({r.request_id for r in burst}, {SendState.FILED})
    assert 1 <= env.smtp.logins(info.address) <= 8
    assert message_count(env, customer, "INBOX") == 20
    assert message_count(env, info, "Sent") == 20


async def test_a_session_whose_login_expired_gets_a_fresh_login_not_a_failure(
    senv: Env,  # noqa: F811
    pipeline: Pipeline,
) -> None:
    """The server answers 535 on a session kept from an earlier message (its token ran
    out): the message goes over a new session with a new login, and nothing fails."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    env.smtp.expire_sessions(info.address, "535 5.7.8 Authentication credentials expired", 3)
    burst = [request(account, customer, subject=f"Upomínka {n}") for n in range(30)]
    async with pipeline("sender") as running:
        await publish(env, *burst)
        found = await waiter(env, running)(
            {r.request_id for r in burst}, {SendState.FILED, SendState.FAILED}, timeout=180
        )
    assert set(final_states(found).values()) == {SendState.FILED}
    assert message_count(env, customer, "INBOX") == 30
    assert message_count(env, info, "Sent") == 30
    # The server did refuse kept sessions, and each refusal cost one new login.
    faults = json.loads(env.smtp.faults_file.read_text())
    assert faults[f"again:{info.address.lower()}"]["times"] == 0
