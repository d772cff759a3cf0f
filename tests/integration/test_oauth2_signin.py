"""The OAuth2 sign-in, end to end: the accounts API, the dev authorization server's login
and consent page in headless Chromium, Dovecot and the SMTP server checking the new
tokens, and the pipeline syncing the connected mailbox into MongoDB."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import random
import re
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from bson import json_util
from pydantic import SecretStr

from devservers import MailUser, OAuthServer
from devservers._process import free_port
from devservers.corpus import build
from schemas.account import OAuth2Secret
from schemas.account_document import AccountDocument
from schemas.topics import ACCOUNTS, RAW_MESSAGES
from services.api.store import AccountStore
from services.common.kafka import ensure_topics, producer
from services.topic_reader import read_topic
from tests.fixtures.api import TOKEN_OF, Api, running_api
from tests.fixtures.browser import Browser
from tests.fixtures.pipeline import Env, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMER = ("Ingrid Berg", "ingrid@fjord-handel.no")
CALLBACK = "/v1/accounts/oauth2/callback"


def signin_settings(oauth: OAuthServer, client_id: str) -> dict[str, Any]:
    """The API's settings for the dev server as provider ``custom``."""
    return {
        "oauth2_custom_authorize_url": oauth.authorize_url,
        "oauth2_custom_token_url": oauth.token_url,
        "oauth2_custom_userinfo_url": oauth.userinfo_url,
        "oauth2_custom_client_id": client_id,
        "oauth2_custom_client_secret": SecretStr(f"secret-{client_id}"),
    }


def register(oauth: OAuthServer, api: Api, client_id: str) -> None:
    oauth.client(client_id, f"secret-{client_id}", redirect_uris=(f"{api.url}{CALLBACK}",))


def servers(env: Env) -> dict[str, Any]:
    return {
        "imap": {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "security": "tls"},
        "smtp": {"host": "127.0.0.1", "port": env.smtp.port, "security": "starttls"},
    }


def deliver(env: Env, address: str, seed: int, subject: str) -> str:
    when = dt.datetime(2026, 9, 1 + seed, 8, 0, tzinfo=dt.UTC)
    mail = build(random.Random(seed), CUSTOMER, [("Me", address)], date=when, subject=subject)
    env.dovecot.deliver(address, mail.message, mail_from=CUSTOMER[1])
    return mail.message_id


async def sign_in(browser: Browser, url: str, user: MailUser) -> str:
    """The user signs in on the provider's page and allows access; the final page's text."""
    await browser.goto(url)
    await browser.wait_for("!!document.querySelector('#allow')", what="the consent page")
    scopes = await browser.text()
    assert "openid" in scopes and "Allow" in scopes
    await browser.type("#username", user.address)
    await browser.type("#password", user.password)
    await browser.click("#allow")
    await browser.wait_for("location.pathname.endsWith('/callback')", what="the callback")
    await browser.wait_for("!!document.querySelector('#title')", what="the callback's page")
    return await browser.text()


async def activities(api: Api, account_id: str) -> list[dict[str, Any]]:
    answer = await api.client("u-jana").get("/v1/activities", params={"account_id": account_id})
    assert answer.status_code == 200, answer.text
    result: list[dict[str, Any]] = answer.json()
    return result


async def state_of(db: Any, account_id: str) -> str | None:
    doc = await db.account_states.find_one({"_id": account_id}) or {}
    return doc.get("status")


async def test_sign_in_with_consent_connects_the_mailbox_and_its_mail_becomes_activities(
    env: Env, oauth: OAuthServer, pipeline: Any, unique: str, tmp_path: Any
) -> None:
    user = env.mail_user("signin")
    oauth.user(user.address, user.password)
    client_id = f"crm-{unique}"
    deliver(env, user.address, 1, "Angebot Fjordblick")
    async with (
        running_api(env, **signin_settings(oauth, client_id)) as api,
        env.mongo() as db,
        pipeline() as running,
    ):
        register(oauth, api, client_id)
        jana = api.client("u-jana")
        started = await jana.post(
            "/v1/accounts/oauth2/start",
            json={"provider": "custom", "account": {**servers(env), "sent_folder": None}},
        )
        assert started.status_code == 200, started.text
        body = started.json()
        query = parse_qs(urlsplit(body["authorization_url"]).query)
        assert query["code_challenge_method"] == ["S256"] and query["state"][0]
        assert body["redirect_uri"] == f"{api.url}{CALLBACK}"

        async with Browser(tmp_path / "profile") as browser:
            page = await sign_in(browser, body["authorization_url"], user)
            assert "Mailbox connected" in page and user.address in page
            assert "IMAP and SMTP" in page and "oauth2" in page

            listed = (await jana.get("/v1/accounts")).json()
            assert [a["account_id"] for a in listed] == [body["account_id"]]
            account = listed[0]
            assert account["credentials"] == "oauth2" and account["address"] == user.address
            assert account["ownership"] == {"kind": "personal", "owner": "u-jana"}
            assert account["imap"]["username"] == account["smtp"]["username"] == user.address

            async def synced() -> Any:
                running.check()
                idle = await state_of(db, body["account_id"]) == "idle"
                return idle and await activities(api, body["account_id"])

            found = await eventually(synced, timeout=90, what="the mailbox synced")
            assert [a["subject"] for a in found] == ["Angebot Fjordblick"]

            # The status page shows how the mailbox signs in.
            await browser.goto(f"{api.url}/status#token={TOKEN_OF['u-jana']}")
            await browser.wait_for(
                "!!document.querySelector('#accounts td.credentials')", what="status rows"
            )
            status = await browser.text()
            assert user.address in status and "OAuth2" in status

        doc = await db.accounts.find_one({"_id": body["account_id"]})
        secret = AccountDocument.model_validate(doc).record.secret
        assert isinstance(secret, OAuth2Secret)
        refresh = env.box.decrypt(secret.refresh_token_ciphertext)
        assert refresh.startswith("rt-") and oauth.refreshes(refresh) >= 1
        stored = json_util.dumps([d async for d in db.accounts.find()])
        assert refresh not in stored and f"secret-{client_id}" not in stored
        assert await db.oauth2_pending.count_documents({}) == 0  # the state was used up


async def test_refused_consent_saves_nothing_and_the_state_works_once(
    env: Env, oauth: OAuthServer, unique: str, tmp_path: Any
) -> None:
    user = env.mail_user("refuse")
    oauth.user(user.address, user.password)
    client_id = f"crm-{unique}"
    async with running_api(env, **signin_settings(oauth, client_id)) as api, env.mongo() as db:
        register(oauth, api, client_id)
        jana = api.client("u-jana")
        started = (
            await jana.post(
                "/v1/accounts/oauth2/start", json={"provider": "custom", "account": servers(env)}
            )
        ).json()
        async with Browser(tmp_path / "profile") as browser:
            await browser.goto(started["authorization_url"])
            await browser.click("#deny")
            await browser.wait_for("!!document.querySelector('#title')", what="the callback page")
            page = await browser.text()
            back = await browser.url()
        assert "Access was refused" in page and "Nothing was saved" in page
        assert "error=access_denied" in back

        # The same callback again: the state was used up.
        again = await api.client(None).get(back, headers={"Accept": "application/json"})
        assert again.status_code == 400
        assert again.headers["content-type"].startswith("application/problem+json")
        assert again.json()["code"] == "invalid_state"

        # A program gets the refusal itself as an RFC 9457 problem.
        second = (
            await jana.post(
                "/v1/accounts/oauth2/start", json={"provider": "custom", "account": servers(env)}
            )
        ).json()
        state = parse_qs(urlsplit(second["authorization_url"]).query)["state"][0]
        refused = await api.client(None).get(
            CALLBACK,
            params={"error": "access_denied", "state": state},
            headers={"Accept": "application/problem+json"},
        )
        assert refused.status_code == 403 and refused.json()["code"] == "access_denied"
        assert refused.json()["title"] == "Access was refused"

        assert (await jana.get("/v1/accounts")).json() == []
        assert await db.accounts.count_documents({}) == 0
        on_topic = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(ACCOUNTS))
        assert on_topic == []


async def test_an_auth_failed_account_signs_in_again_and_keeps_its_cursors(
    env: Env, oauth: OAuthServer, pipeline: Any, unique: str, tmp_path: Any
) -> None:
    user = env.mail_user("again")
    oauth.user(user.address, user.password)
    client_id = f"crm-{unique}"
    settings = signin_settings(oauth, client_id)
    first_refresh = oauth.grant(user.address, client_id, f"secret-{client_id}")
    account_id = f"again-{unique}"
    record = env.account(
        user,
        account_id=account_id,
        ownership={"kind": "personal", "owner": "u-jana"},
        secret=OAuth2Secret(
            token_url=oauth.token_url,
            client_id=client_id,
            client_secret_ciphertext=env.box.encrypt(f"secret-{client_id}"),
            refresh_token_ciphertext=env.box.encrypt(first_refresh),
        ),
    )
    await ensure_topics(env.settings, [ACCOUNTS])
    prod = producer(env.settings, client_id="test")
    await prod.start()
    try:
        async with env.mongo() as db:
            await AccountStore(db, prod, env.settings).save(record)
    finally:
        await prod.stop()
    first = deliver(env, user.address, 1, "Erste Bestellung")

    async with (
        running_api(env, **settings) as api,
        env.mongo() as db,
        pipeline("fetcher", "dedup", "activity-writer", fetcher_imap_timeout_s=5.0) as running,
    ):
        register(oauth, api, client_id)

        async def subjects(n: int) -> Any:
            running.check()
            found = await activities(api, account_id)
            return len(found) == n and sorted(a["subject"] for a in found)

        await eventually(lambda: subjects(1), timeout=90, what="the first message")
        cursors = await db.folder_cursors.find({"account_id": account_id}).to_list(None)
        assert cursors

        # The user withdraws consent: the account stops as auth_failed.
        oauth.revoke(first_refresh)
        env.dovecot.doveadm("kick", user.address)

        async def failed() -> bool:
            running.check()
            return await state_of(db, account_id) == "auth_failed"

        await eventually(failed, timeout=90, what="auth_failed")
        started = await api.client("u-jana").post(
            "/v1/accounts/oauth2/start", json={"provider": "custom", "account_id": account_id}
        )
        assert started.status_code == 200, started.text
        assert started.json()["account_id"] == account_id
        async with Browser(tmp_path / "profile") as browser:
            page = await sign_in(browser, started.json()["authorization_url"], user)
        assert "signed in again" in page and user.address in page

        deliver(env, user.address, 2, "Zweite Bestellung")

        async def idle_with_both() -> Any:
            return await state_of(db, account_id) == "idle" and await subjects(2)

        assert await eventually(idle_with_both, timeout=90, what="the next message") == [
            "Erste Bestellung",
            "Zweite Bestellung",
        ]
        kept = await db.folder_cursors.find({"account_id": account_id}).to_list(None)
    # Same folders and UIDVALIDITY: the cursors were kept, and the first message was
    # not fetched again.
    assert {(c["folder"], c["uidvalidity"]) for c in kept} == {
        (c["folder"], c["uidvalidity"]) for c in cursors
    }
    raw = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(RAW_MESSAGES))
    assert sum(first.encode() in (r.value or b"") for r in raw) == 1
    async with env.mongo() as db:
        doc = await db.accounts.find_one({"_id": account_id})
    saved = AccountDocument.model_validate(doc).record
    assert isinstance(saved.secret, OAuth2Secret)
    assert env.box.decrypt(saved.secret.refresh_token_ciphertext) != first_refresh
    assert saved.folders == record.folders and saved.imap == record.imap


async def test_the_cli_prints_the_url_and_connects_the_mailbox_on_the_callback(
    env: Env, oauth: OAuthServer, unique: str, tmp_path: Any
) -> None:
    user = env.mail_user("cli")
    oauth.user(user.address, user.password)
    client_id = f"crm-{unique}"
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    oauth.client(client_id, f"secret-{client_id}", redirect_uris=(redirect,))
    spec = tmp_path / "account.json"
    spec.write_text(json.dumps({**servers(env), "account_id": f"cli-{unique}"}))
    extra = {f"mailsync_{k}".upper(): v for k, v in signin_settings(oauth, client_id).items()}
    environ = env.environ()
    environ.update(
        {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in extra.items()}
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        "accounts",
        "oauth2-start",
        "--provider",
        "custom",
        "--account",
        str(spec),
        "--redirect-uri",
        redirect,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        url = ""
        while not url.startswith("http"):
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, "the CLI exited without printing a URL"
            url = line.decode().strip()
        assert url.startswith(oauth.authorize_url)
        # The operator's browser: the consent page, then the form with "Allow".
        async with httpx.AsyncClient(follow_redirects=True, timeout=60) as browser:
            page = await browser.get(url)
            fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
            fields = {k: html.unescape(v) for k, v in fields.items()}
            fields |= {"username": user.address, "password": user.password}
            done = await browser.post(
                f"{oauth.base}/authorize", data={**fields, "decision": "allow"}
            )
        assert done.status_code == 200 and "Mailbox connected" in done.text
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    account = json.loads(out)
    assert account["account_id"] == f"cli-{unique}" and account["credentials"] == "oauth2"
    assert account["address"] == user.address
