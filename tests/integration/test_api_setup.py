"""The two-step account setup over HTTP, against Dovecot and the SMTP server."""

from __future__ import annotations

import datetime as dt
import random
import socket
from typing import Any

import pytest

from devservers._process import free_port
from devservers.corpus import CUSTOMERS, build
from tests.fixtures.api import Api, running_api
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def deliver(env: Env, address: str, count: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    ids = []
    for i in range(count):
        mail = build(
            rng,
            CUSTOMERS[i % len(CUSTOMERS)],
            [("Owner", address)],
            date=dt.datetime(2026, 5, 1 + i, 9, tzinfo=dt.UTC),
        )
        env.dovecot.deliver(address, mail.message)
        ids.append(mail.message_id)
    return ids


def endpoints(env: Env, username: str) -> dict[str, Any]:
    return {
        "imap": {
            "host": "127.0.0.1",
            "port": env.dovecot.imaps_port,
            "security": "tls",
            "username": username,
        },
        "smtp": {
            "host": "127.0.0.1",
            "port": env.smtp.port,
            "security": "starttls",
            "username": username,
        },
    }


async def test_verify_then_save_then_sync_and_change_live(
    env: Env, api: Api, pipeline: Pipeline
) -> None:
    jana = env.mail_user("jana")
    deliver(env, jana.address, 3)
    client = api.client("u-jana")

    verified = await client.post(
        "/v1/accounts/verify", json={**endpoints(env, jana.address), "password": jana.password}
    )
    assert verified.status_code == 200, verified.text
    preview = verified.json()
    folders = {f["name"]: f for f in preview["imap"]["folders"]}
    assert folders["INBOX"]["role"] == "inbox" and folders["INBOX"]["messages"] == 3
    assert folders["INBOX"]["size"] > 1000  # RFC 8438 STATUS=SIZE from Dovecot
    assert folders["Sent"]["role"] == "sent" and folders["Sent"]["messages"] == 0
    assert folders["Trash"]["role"] == "trash" and folders["Archive"]["role"] == "archive"
    assert preview["imap"]["sent_folder"] == "Sent"
    assert preview["imap"]["total_messages"] == 3
    assert "IMAP4REV1" in {c.upper() for c in preview["imap"]["capabilities"]}
    assert "AUTH" in {e.upper() for e in preview["smtp"]["extensions"]}
    # Step 1 saves nothing.
    assert (await client.get("/v1/accounts")).json() == []

    saved = await client.post(
        "/v1/accounts",
        json={
            "address": jana.address,
            "display_name": "Jana",
            "aliases": [f"sales-{jana.address}"],
            **endpoints(env, jana.address),
            "password": jana.password,
            "folders": ["INBOX", "Sent"],
            "sent_folder": "Sent",
            "import_window": {"kind": "since", "since": "2026-01-01"},
        },
    )
    assert saved.status_code == 201, saved.text
    account = saved.json()
    assert account["ownership"] == {"kind": "personal", "owner": "u-jana"}
    assert account["credentials"] == "password" and not account["pending_credentials"]
    assert "secret" not in account and jana.password not in saved.text
    account_id = account["account_id"]

    async with pipeline():

        async def synced() -> Any:
            boxes = (await client.get("/v1/mailboxes")).json()
            state = boxes[0]["state"] if boxes else None
            return boxes if state and state["status"] == "idle" and state["done"] == 3 else None

        boxes = await eventually(synced, timeout=90, what="the mailbox synced")
        assert boxes[0]["address"] == jana.address
        assert boxes[0]["aliases"] == [f"sales-{jana.address}"]
        assert boxes[0]["can_send"] is True and boxes[0]["state"]["total"] == 3
        assert boxes[0]["state"]["last_sync"] is not None

        async def three_activities() -> Any:
            found = (await client.get("/v1/activities", params={"account_id": account_id})).json()
            return found if len(found) == 3 else None

        await eventually(three_activities, timeout=60, what="three activities")

        # A change takes effect without restarting anything.
        paused = await client.post(f"/v1/accounts/{account_id}/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True

        async def state_is(status: str) -> bool:
            view = (await client.get(f"/v1/accounts/{account_id}")).json()
            return bool(view["state"]) and view["state"]["status"] == status

        await eventually(lambda: state_is("paused"), timeout=30, what="paused")
        assert (await client.post(f"/v1/accounts/{account_id}/resume")).status_code == 200
        await eventually(lambda: state_is("idle"), timeout=60, what="idle again")


async def test_each_failure_has_its_own_code(env: Env) -> None:
    jana = env.mail_user("jana")
    silent = socket.socket()  # accepts connections (the kernel does) and never greets
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    # Longer than the delay Dovecot puts before answering a failed login (2 s, then 4 s).
    async with running_api(env, api_verify_timeout_s=8) as api:
        client = api.client("u-jana")

        async def failure(imap: dict[str, Any], password: str = jana.password) -> dict[str, Any]:
            imap = {"username": jana.address, **imap}
            r = await client.post("/v1/accounts/verify", json={"imap": imap, "password": password})
            assert r.status_code == 422, r.text
            assert password not in r.text
            return dict(r.json()["failure"])

        tls = {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "security": "tls"}
        assert (await failure({**tls, "host": "no-such-host.invalid"}))["code"] == "dns_failed"
        assert (await failure({**tls, "port": free_port()}))["code"] == "connection_refused"
        plain_port = {**tls, "port": env.dovecot.imap_port}
        assert (await failure(plain_port))["code"] == "tls_failed"
        hung = {**tls, "port": silent.getsockname()[1]}
        timed_out = await failure(hung)
        assert timed_out["code"] == "timeout" and timed_out["retriable"] is True
        remote_plain = {**tls, "host": "192.0.2.1", "security": "plain"}
        assert (await failure(remote_plain))["code"] == "insecure_connection"

        smtp_refused = await client.post(
            "/v1/accounts/verify",
            json={
                **endpoints(env, jana.address),
                "smtp": {**endpoints(env, jana.address)["smtp"], "port": free_port()},
                "password": jana.password,
            },
        )
        failure_smtp = smtp_refused.json()["failure"]
        assert (failure_smtp["stage"], failure_smtp["code"]) == ("smtp", "connection_refused")

        unknown = await client.post(
            "/v1/accounts/verify",
            json={"preset": "nope", "imap": {"username": "x"}, "password": "x"},
        )
        assert unknown.status_code == 422 and "gmail" in unknown.json()["detail"]

        missing = await client.post(
            "/v1/accounts",
            json={
                "address": jana.address,
                **endpoints(env, jana.address),
                "password": jana.password,
                "folders": ["INBOX", "No such folder"],
            },
        )
        assert missing.status_code == 422 and "No such folder" in missing.text

        # Wrong passwords last: Dovecot slows down the logins from an address that failed.
        wrong = await failure(tls, "not-the-password")
        assert wrong["code"] == "auth_failed" and "refused" in wrong["hint"]
        refused = await client.post(
            "/v1/accounts",
            json={"address": jana.address, **endpoints(env, jana.address), "password": "bad"},
        )
        assert refused.json()["failure"]["code"] == "auth_failed"
        # Nothing was saved by the failed attempts.
        assert (await client.get("/v1/accounts")).json() == []
    silent.close()
