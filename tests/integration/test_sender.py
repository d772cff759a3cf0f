"""The sender against the real SMTP server and Dovecot: what the recipient and the user see."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import smtplib
import ssl
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from devservers import MailUser, OAuthServer
from devservers._process import free_port
from schemas.account import AccountRecord, Endpoint, PersonalOwnership, Security, SharedOwnership
from schemas.account_document import AccountDocument
from schemas.common import Address
from schemas.send_request import (
    OutboundAttachment,
    SendRecord,
    SendRequest,
    SendResult,
    SendState,
)
from schemas.topics import SEND_REQUESTS, SEND_RESULTS
from services.accounts.records import COLLECTION as ACCOUNTS_COLLECTION
from services.common.blobs import BlobStore
from services.common.kafka import ensure_topics, producer
from services.sender.compose import build_message, message_id_for
from services.topic_reader import read_topic
from tests.fixtures.api import running_api
from tests.fixtures.mail_client import mbsync_folder
from tests.fixtures.pipeline import Env, Pipeline, Running, eventually
from tests.integration.test_oauth2 import oauth_secret

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ALL = ("fetcher", "dedup", "activity-writer", "sender")
FAST = {
    "sender_backoff_base_s": 0.3,
    "sender_backoff_cap_s": 1.0,
    "sender_poll_interval_s": 0.3,
    "sender_timeout_s": 20.0,
}


@pytest.fixture
def senv(env: Env) -> Env:
    assert env.dovecot.cert is not None
    env.overrides.update(sender_ca_file=env.dovecot.cert.cert, **FAST)
    return env


def smtp_of(env: Env, user: MailUser) -> Endpoint:
    return Endpoint(
        host="127.0.0.1", port=env.smtp.port, security=Security.STARTTLS, username=user.address
    )


def shared_info(env: Env) -> tuple[MailUser, str, AccountRecord]:
    """info@ shared with the group "sales", with the alias orders@, synced INBOX and Sent."""
    info = env.mail_user("info")
    alias = info.address.replace("info-", "orders-")
    env.smtp.add_alias(alias, info.address)
    account = env.account(
        info,
        account_id=f"info-{env.overrides['mongo_database']}",
        ownership=SharedOwnership(group="sales"),
        aliases=(alias,),
        smtp=smtp_of(env, info),
        folders=("INBOX", "Sent"),
    )
    return info, alias, account


def request(
    account: AccountRecord, to: MailUser, *, sender: str | None = None, **fields: Any
) -> SendRequest:
    values: dict[str, Any] = {
        "request_id": f"req-{uuid.uuid4().hex[:16]}",
        "account_id": account.account_id,
        "sender": Address(address=sender or account.address),
        "requested_by": "petr",
        "groups": ("sales",),
        "to": (Address(name="Zuzana Černá", address=to.address),),
        "subject": "Nabídka č. 2026/118 – květiny na recepci",
        "text_body": "Dobrý den,\nv příloze posíláme nabídku.\n\nPetr",
        "requested_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
    }
    values.update(fields)
    return SendRequest.model_validate(values)


async def publish(env: Env, *requests: SendRequest) -> None:
    await ensure_topics(env.settings, [SEND_REQUESTS])
    prod = producer(env.settings, client_id="test-crm")
    await prod.start()
    try:
        for req in requests:
            await prod.send(
                env.settings.topic(SEND_REQUESTS),
                req.model_dump_json().encode(),
                key=req.account_id.encode(),
            )
        await prod.flush()
    finally:
        await prod.stop()


async def results(env: Env) -> list[SendResult]:
    await ensure_topics(env.settings, [SEND_RESULTS])
    records = await read_topic(env.overrides["kafka_bootstrap"], env.settings.topic(SEND_RESULTS))
    return [SendResult.model_validate_json(r.value or b"") for r in records]


def final_states(found: list[SendResult]) -> dict[str, SendState]:
    """The latest state of each request (filed and failed are final; unknown is, until
    a user resolves it)."""
    out: dict[str, SendState] = {}
    for r in found:
        if out.get(r.request_id) not in (SendState.FILED, SendState.FAILED):
            out[r.request_id] = r.state
    return out


def waiter(env: Env, running: Running | None = None) -> Callable[..., Any]:
    async def until(ids: set[str], states: set[SendState], timeout: float = 90) -> list[SendResult]:
        async def probe() -> list[SendResult] | None:
            if running is not None:
                running.check()
            found = await results(env)
            done = final_states(found)
            return found if all(done.get(i) in states for i in ids) else None

        got: list[SendResult] = await eventually(
            probe, timeout=timeout, interval=0.5, what=f"{len(ids)} requests to be {states}"
        )
        return got

    return until


async def save_for_api(env: Env, account: AccountRecord) -> None:
    """The account as the API saves it (its MongoDB copy, which the API reads)."""
    doc = AccountDocument(id=account.account_id, record=account, saved_at=dt.datetime.now(dt.UTC))
    async with env.mongo() as db:
        await db[ACCOUNTS_COLLECTION].replace_one(
            {"_id": account.account_id}, doc.model_dump(mode="json", by_alias=True), upsert=True
        )


def message_count(env: Env, user: MailUser, folder: str) -> int:
    return int(env.dovecot.status(user.address, folder)["messages"])


async def test_a_request_from_an_alias_arrives_and_is_filed_in_sent(
    senv: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    env = senv
    info, alias, account = shared_info(env)
    customer = env.mail_user("customer")
    archive = env.mail_user("archive")
    await env.publish_accounts(account)
    req = request(
        account,
        customer,
        sender=alias,
        bcc=(Address(address=archive.address),),
    ).model_copy(update={"sender": Address(name="Objednávky Květinářství", address=alias)})

    async with env.mongo() as db, pipeline(*ALL) as running:
        await publish(env, req)
        found = await waiter(env, running)({req.request_id}, {SendState.FILED})
        by_state = {r.state: r for r in found if r.request_id == req.request_id}
        assert set(by_state) == {SendState.SENT, SendState.FILED}
        assert by_state[SendState.SENT].smtp_reply and by_state[
            SendState.SENT
        ].smtp_reply.startswith("250")
        filed = by_state[SendState.FILED]
        assert filed.sent_folder == "Sent" and filed.sent_uid is not None

        # The recipient's mail client: the right headers, no Bcc.
        inbox = mbsync_folder(env.dovecot, customer, "INBOX", tmp_path / "customer")
        assert len(inbox) == 1
        got = inbox[0].message
        assert got["Subject"] == "Nabídka č. 2026/118 – květiny na recepci"
        assert got["From"].addresses[0].display_name == "Objednávky Květinářství"
        assert got["From"].addresses[0].addr_spec == alias
        assert got["To"].addresses[0].display_name == "Zuzana Černá"
        assert got["Message-ID"] == filed.message_id == message_id_for(req.request_id, alias)
        assert "Bcc" not in got and archive.address not in got.as_string()
        plain = got.get_body(("plain",))
        assert plain is not None and "v příloze posíláme nabídku" in plain.get_content()
        # The Bcc recipient got it too.
        assert message_count(env, archive, "INBOX") == 1

        # The sender's mail client: the same message in Sent, already read.
        sent = mbsync_folder(env.dovecot, info, "Sent", tmp_path / "info")
        assert [(m.message["Message-ID"], "S" in m.flags) for m in sent] == [
            (filed.message_id, True)
        ]

        # The CRM shows it at once; the fetcher's copy of Sent joins the same activity.
        async def activity() -> dict[str, Any] | None:
            return cast(
                "dict[str, Any] | None", await db.activities.find_one({"_id": filed.activity_id})
            )

        doc = await eventually(activity, timeout=90, what="the outbound activity")
        assert doc["direction"] == "outbound"
        assert doc["from"] == {"name": "Objednávky Květinářství", "address": alias}
        assert [
            (s["account_id"], s["folder"], s["alias"], s["duplicate"]) for s in doc["sightings"]
        ] == [(account.account_id, "Sent", alias, False)]
        assert doc["sightings"][0]["uid"] == filed.sent_uid

        async def fetched_back() -> bool:
            cursor = await db.folder_cursors.find_one(
                {"account_id": account.account_id, "folder": "Sent"}
            )
            return bool(cursor and str(filed.sent_uid) in str(cursor.get("uids", "")))

        await eventually(fetched_back, timeout=60, what="the fetcher to fetch Sent")
        again = await db.activities.find({"message_id": doc["message_id"]}).to_list(None)
        assert len(again) == 1 and len(again[0]["sightings"]) == 1


async def test_a_reply_threads_with_the_message_it_answers(senv: Env, pipeline: Pipeline) -> None:
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    assert env.dovecot.cert is not None
    question = (
        f"From: Zuzana <{customer.address}>\r\nTo: <{info.address}>\r\n"
        "Subject: Dotaz na cenu\r\n"
        f"Message-ID: <dotaz-{uuid.uuid4().hex}@kvetinarstvi.example>\r\n"
        "Date: Mon, 23 Nov 2026 08:00:00 +0000\r\n\r\nKolik stoji kytice?\r\n"
    ).encode()
    tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
    with smtplib.SMTP("127.0.0.1", env.smtp.port, timeout=30) as client:
        client.starttls(context=tls)
        client.sendmail(customer.address, [info.address], question)

    async with env.mongo() as db, pipeline(*ALL) as running:

        async def inbound() -> dict[str, Any] | None:
            running.check()
            return cast(
                "dict[str, Any] | None", await db.activities.find_one({"subject": "Dotaz na cenu"})
            )

        asked = await eventually(inbound, timeout=90, what="the customer's question")
        reply = request(
            account, customer, subject="Re: Dotaz na cenu", in_reply_to_activity=asked["_id"]
        )
        await publish(env, reply)
        found = await waiter(env, running)({reply.request_id}, {SendState.FILED})
        filed = next(r for r in found if r.state is SendState.FILED)

        async def answered() -> dict[str, Any] | None:
            return cast(
                "dict[str, Any] | None", await db.activities.find_one({"_id": filed.activity_id})
            )

        doc = await eventually(answered, timeout=60, what="the reply's activity")
        assert doc["thread_id"] == asked["thread_id"]
        assert doc["in_reply_to"] == asked["message_id"]
        assert (
            f"<{asked['message_id']}>" in doc["references"]
            or asked["message_id"] in doc["references"]
        )


async def test_unauthorised_requests_are_refused_and_nothing_is_sent(
    senv: Env, pipeline: Pipeline
) -> None:
    env = senv
    jana = env.mail_user("jana")
    customer = env.mail_user("customer")
    personal = env.account(
        jana,
        account_id=f"jana-{env.overrides['mongo_database']}",
        ownership=PersonalOwnership(owner="jana"),
        smtp=smtp_of(env, jana),
    )
    await env.publish_accounts(personal)
    foreign = request(personal, customer, requested_by="petr", groups=("sales",))
    spoofed = request(personal, customer, requested_by="jana", sender="ceo@example.com")
    unknown = request(personal, customer, account_id="nobody-here", requested_by="jana")
    async with pipeline("sender") as running:
        await publish(env, foreign, spoofed, unknown)
        found = await waiter(env, running)(
            {foreign.request_id, spoofed.request_id, unknown.request_id}, {SendState.FAILED}
        )
    reasons = {r.request_id: r.reason or "" for r in found}
    assert f"may not send through account {personal.account_id!r}" in reasons[foreign.request_id]
    assert "'ceo@example.com' is not an address of account" in reasons[spoofed.request_id]
    # An unknown account reads like a foreign one: the caller learns nothing.
    assert "may not send through account 'nobody-here'" in reasons[unknown.request_id]
    assert message_count(env, customer, "INBOX") == 0
    assert message_count(env, jana, "Sent") == 0


async def test_a_4xx_is_retried_and_a_5xx_fails(senv: Env, pipeline: Pipeline) -> None:
    env = senv
    info, _, account = shared_info(env)
    greylisted = env.mail_user("greylisted")
    refusing = env.mail_user("refusing")
    await env.publish_accounts(account)
    env.smtp.fail_rcpt(greylisted.address, "451 4.7.1 Greylisted, please try again later", 2)
    env.smtp.fail_rcpt(refusing.address, "550 5.7.1 Message rejected by policy", 5)
    later = request(account, greylisted)
    never = request(account, refusing)
    async with env.mongo() as db, pipeline("sender") as running:
        await publish(env, later, never)
        found = await waiter(env, running)(
            {later.request_id, never.request_id}, {SendState.FILED, SendState.FAILED}
        )
        ledger = {d["_id"]: SendRecord.model_validate(d) async for d in db.send_requests.find({})}
    final = final_states(found)
    assert final[later.request_id] is SendState.FILED
    assert final[never.request_id] is SendState.FAILED
    failed = next(r for r in found if r.request_id == never.request_id)
    assert failed.reason and "550 5.7.1 Message rejected by policy" in failed.reason
    assert not failed.retriable
    assert message_count(env, greylisted, "INBOX") == 1
    assert message_count(env, refusing, "INBOX") == 0
    assert message_count(env, info, "Sent") == 1  # only the delivered one is filed
    # The server refused the greylisted recipient twice before taking it: two retries.
    faults = json.loads(env.smtp.faults_file.read_text())
    assert faults[greylisted.address.lower()]["times"] == 0
    assert ledger[never.request_id].attempts == 1


def _sender_process(env: Env, log: Path) -> subprocess.Popen[bytes]:
    environ = env.environ(data_dir=str(log.parent / "sender-data"))
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services", "sender"], env=environ, stdout=out, stderr=out
        )


async def test_killed_between_smtp_and_append_it_sends_once_and_files_once(
    senv: Env, tmp_path: Path
) -> None:
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    # The IMAP server is unreachable right after the send: the request stays "sent".
    dead_imap = account.imap.model_copy(update={"port": free_port()})
    await env.publish_accounts(account.model_copy(update={"imap": dead_imap}))
    req = request(account, customer)
    log = tmp_path / "sender.log"
    async with env.mongo() as db:
        first = _sender_process(env, log)
        try:
            await publish(env, req)

            async def sent_not_filed() -> bool:
                doc = await db.send_requests.find_one({"_id": req.request_id})
                return bool(doc and doc["state"] == "sent" and doc.get("reason"))

            await eventually(sent_not_filed, timeout=90, what="sent but not yet filed")
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        assert message_count(env, customer, "INBOX") == 1
        assert message_count(env, info, "Sent") == 0

        await env.publish_accounts(account)  # IMAP is back
        second = _sender_process(env, log)
        try:
            await waiter(env)({req.request_id}, {SendState.FILED})
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
        doc = await db.send_requests.find_one({"_id": req.request_id})
    assert doc["state"] == "filed"
    assert message_count(env, customer, "INBOX") == 1
    assert message_count(env, info, "Sent") == 1


async def test_a_replica_that_died_during_data_is_not_resent(senv: Env, pipeline: Pipeline) -> None:
    """A request left in "sending" may have reached the server: it is never sent again,
    and if the copy turns up in Sent it is recognised as sent."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    lost = request(account, customer)
    found_in_sent = request(account, customer)
    now = dt.datetime.now(dt.UTC)
    async with env.mongo() as db:
        for req in (lost, found_in_sent):
            mid = message_id_for(req.request_id, req.sender.address)
            record = SendRecord(
                id=req.request_id,
                request=req,
                state=SendState.SENDING,
                message_id=mid,
                lease_owner="a-dead-replica",
                lease_until=now - dt.timedelta(seconds=1),
                created_at=now,
                updated_at=now,
            )
            await db.send_requests.insert_one(record.model_dump(by_alias=True))
        # The server filed the second one itself before the replica died.
        raw = build_message(found_in_sent, message_id_for(found_in_sent.request_id, info.address))
        env.dovecot.save(info.address, "Sent", raw)
        async with pipeline("sender") as running:
            found = await waiter(env, running)(
                {lost.request_id, found_in_sent.request_id}, {SendState.FILED, SendState.UNKNOWN}
            )
    final = final_states(found)
    assert final[lost.request_id] is SendState.UNKNOWN
    unknown = next(r for r in found if r.request_id == lost.request_id)
    assert unknown.reason and "may have been delivered" in unknown.reason
    assert unknown.last_step and "replica that stopped" in unknown.last_step
    assert final[found_in_sent.request_id] is SendState.FILED
    assert message_count(env, customer, "INBOX") == 0  # nothing was sent (again)
    assert message_count(env, info, "Sent") == 1


async def test_data_begins_only_once_sending_is_durable(
    senv: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    """The ``sending`` write runs alongside the session's MAIL and RCPT, but the server
    gets DATA only once the ledger holds ``sending`` (RFC 1047: from DATA on, a crash
    must not lead to a second send)."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    begun = tmp_path / "data-begun"
    env.smtp.hold_data(customer.address, begun)
    req = request(account, customer)

    async def data_begun() -> bool:
        return await asyncio.to_thread(begun.exists)

    async with env.mongo() as db, pipeline("sender") as running:
        await publish(env, req)
        await eventually(data_begun, timeout=60, what="the server to get DATA")
        at_data = await db.send_requests.find_one({"_id": req.request_id})
        await asyncio.to_thread(begun.with_name(begun.name + ".go").touch)
        await waiter(env, running)({req.request_id}, {SendState.FILED})
    assert at_data is not None and at_data["state"] == "sending"
    assert message_count(env, customer, "INBOX") == 1
    assert message_count(env, info, "Sent") == 1


async def test_a_reply_lost_after_data_is_not_resent(senv: Env, pipeline: Pipeline) -> None:
    """The server delivers, then the link dies before its 250 (RFC 1047): the sender
    cannot know, so it says so (``unknown``, with the transcript's last step) and never
    sends again on its own; the next request goes through. The user, who asked the
    recipient, marks it sent through the API: then it is filed in Sent."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    await save_for_api(env, account)
    env.smtp.lose_reply(customer.address)
    lost, after = request(account, customer), request(account, customer)
    async with pipeline("sender") as running, running_api(env) as api:
        await publish(env, lost)
        await waiter(env, running)({lost.request_id}, {SendState.UNKNOWN})
        await publish(env, after)
        found = await waiter(env, running)({after.request_id}, {SendState.FILED})
        final = final_states(found)
        assert final == {lost.request_id: SendState.UNKNOWN, after.request_id: SendState.FILED}
        unknown = next(r for r in found if r.request_id == lost.request_id)
        assert unknown.reason and "during DATA" in unknown.reason
        assert "may have been delivered" in unknown.reason
        assert unknown.last_step and unknown.last_step.startswith("DATA:")
        assert "no reply" in unknown.last_step
        # Delivered once (the lost reply) plus the later request: nothing sent twice.
        assert message_count(env, customer, "INBOX") == 2
        assert message_count(env, info, "Sent") == 1

        karel, eve = api.client("u-karel"), api.client("u-eve")
        shown = (await karel.get(f"/v1/send/{lost.request_id}")).json()
        assert shown["state"] == "unknown" and shown["last_step"] == unknown.last_step
        assert (await eve.get(f"/v1/send/{lost.request_id}")).status_code == 404
        mark = {"action": "mark_sent"}
        assert (await eve.post(f"/v1/send/{lost.request_id}/resolve", json=mark)).status_code == 404
        done = await karel.post(f"/v1/send/{after.request_id}/resolve", json=mark)
        assert done.status_code == 409  # filed: nothing to decide
        marked = await karel.post(f"/v1/send/{lost.request_id}/resolve", json=mark)
        assert marked.status_code == 200, marked.text
        assert marked.json()["state"] == "sent" and marked.json()["resolution"] == "mark_sent"
        again = await karel.post(f"/v1/send/{lost.request_id}/resolve", json=mark)
        assert again.status_code == 409  # decided once
        found = await waiter(env, running)({lost.request_id}, {SendState.FILED})
        states = [r.state for r in found if r.request_id == lost.request_id]
        assert states[-2:] == [SendState.SENT, SendState.FILED]
        shown = (await karel.get(f"/v1/send/{lost.request_id}")).json()
        assert shown["state"] == "filed" and shown["sent_folder"] == "Sent"
    assert message_count(env, customer, "INBOX") == 2  # marked sent: not sent again
    assert message_count(env, info, "Sent") == 2


async def test_an_unknown_outcome_resent_at_the_users_request_arrives(
    senv: Env, pipeline: Pipeline
) -> None:
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    await save_for_api(env, account)
    env.smtp.lose_reply(customer.address)
    lost = request(account, customer)
    async with pipeline("sender") as running, running_api(env) as api:
        await publish(env, lost)
        await waiter(env, running)({lost.request_id}, {SendState.UNKNOWN})
        assert message_count(env, customer, "INBOX") == 1  # the server did take it
        karel = api.client("u-karel")
        resent = await karel.post(f"/v1/send/{lost.request_id}/resolve", json={"action": "resend"})
        assert resent.status_code == 200, resent.text
        assert resent.json()["state"] == "accepted"
        found = await waiter(env, running)({lost.request_id}, {SendState.FILED})
    filed = [r for r in found if r.request_id == lost.request_id][-1]
    assert filed.state is SendState.FILED and filed.smtp_reply
    # The user's choice: a second copy, with the same Message-ID (one message to dedup).
    assert message_count(env, customer, "INBOX") == 2
    assert message_count(env, info, "Sent") == 1


async def test_a_result_still_to_announce_does_not_cut_a_backoff_short(
    senv: Env, pipeline: Pipeline
) -> None:
    """Sent, its filing put off for later, its result not yet announced: the sender
    announces it at once, but files it only when the retry is due."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    req = request(account, customer)
    async with env.mongo() as db, pipeline("sender") as running:
        now = dt.datetime.now(dt.UTC)
        record = SendRecord(
            id=req.request_id,
            request=req,
            state=SendState.SENT,
            message_id=message_id_for(req.request_id, req.sender.address),
            next_attempt_at=now + dt.timedelta(seconds=15),
            unpublished=(SendState.SENT,),
            created_at=now,
            updated_at=now,
        )
        await db.send_requests.insert_one(record.model_dump(by_alias=True))
        await waiter(env, running)({req.request_id}, {SendState.SENT}, timeout=12)
        assert dt.datetime.now(dt.UTC) < record.next_attempt_at  # type: ignore[operator]
        assert message_count(env, info, "Sent") == 0
        await waiter(env, running)({req.request_id}, {SendState.FILED})
        assert dt.datetime.now(dt.UTC) >= record.next_attempt_at  # type: ignore[operator]
    assert message_count(env, info, "Sent") == 1


async def test_a_burst_of_100_requests_arrives_exactly_once_each(
    senv: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    burst = [request(account, customer, subject=f"Faktura {n:03d}") for n in range(100)]
    async with pipeline("sender") as running:
        # The first 20 are delivered twice by the broker (a producer retry, a replay).
        await publish(env, *burst, *burst[:20])
        found = await waiter(env, running)(
            {r.request_id for r in burst}, {SendState.FILED}, timeout=180
        )
    assert len({r.request_id for r in found if r.state is SendState.FILED}) == 100
    inbox = mbsync_folder(env.dovecot, customer, "INBOX", tmp_path / "customer")
    subjects = sorted(m.message["Subject"] for m in inbox)
    assert subjects == [f"Faktura {n:03d}" for n in range(100)]
    assert len({m.message["Message-ID"] for m in inbox}) == 100
    assert message_count(env, info, "Sent") == 100


@pytest.mark.parametrize("budget", [1024 * 1024, None], ids=["budget-below-one", "default"])
async def test_a_burst_of_large_attachments_arrives_whole_and_is_filed_once_each(
    senv: Env, pipeline: Pipeline, tmp_path: Path, budget: int | None
) -> None:
    """Four 3 MB attachments: with a budget of bytes in hand smaller than one message
    each goes alone; with the default they go together, and filing takes them in
    batches of at most 8 MiB. Either way the recipient and Sent get every one whole."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    pdfs = [b"%PDF-1.4\n" + os.urandom(3_000_000) + b"\n%%EOF\n" for _ in range(4)]
    async with env.mongo() as db:
        refs = [await BlobStore(db).put(pdf) for pdf in pdfs]
    burst = [
        request(
            account,
            customer,
            subject=f"Výkres {n}",
            attachments=(
                OutboundAttachment(
                    filename=f"výkres-{n}.pdf", content_type="application/pdf", blob=ref
                ),
            ),
        )
        for n, ref in enumerate(refs)
    ]
    extra = {} if budget is None else {"sender_max_bytes_in_hand": budget}
    async with pipeline("sender", **extra) as running:
        await publish(env, *burst)
        await waiter(env, running)({r.request_id for r in burst}, {SendState.FILED}, timeout=180)

    def attachments(folder: list[Any]) -> dict[str, bytes]:
        out = {}
        for m in folder:
            (part,) = list(m.message.iter_attachments())
            out[m.message["Subject"]] = part.get_content()
        return out

    want = {f"Výkres {n}": pdf for n, pdf in enumerate(pdfs)}
    inbox = mbsync_folder(env.dovecot, customer, "INBOX", tmp_path / "customer")
    assert attachments(inbox) == want and len(inbox) == 4
    sent = mbsync_folder(env.dovecot, info, "Sent", tmp_path / "info")
    assert attachments(sent) == want and len(sent) == 4


async def test_a_quiet_accounts_request_does_not_wait_for_a_busy_accounts_burst(
    senv: Env, pipeline: Pipeline
) -> None:
    """info@ works through a burst of 24 over one SMTP session, which its recipient's
    server answers slowly (0.5 s a message: 12 s); a lone request of complaints@,
    published meanwhile, goes out within the next few of info@'s, not behind the
    requests already claimed for info@: it is claimed as soon as it is accepted, and
    the next freed slot goes to the account with the fewest at work."""
    env = senv
    env.overrides.update(sender_connections_per_account=1)
    _, _, busy = shared_info(env)
    complaints = env.mail_user("complaints")
    quiet = env.account(
        complaints,
        account_id=f"complaints-{env.overrides['mongo_database']}",
        ownership=SharedOwnership(group="sales"),
        smtp=smtp_of(env, complaints),
        folders=("INBOX", "Sent"),
    )
    customer, other = env.mail_user("customer"), env.mail_user("other")
    await env.publish_accounts(busy, quiet)
    env.smtp.slow_reply(customer.address, 0.5, times=24)
    burst = [request(busy, customer, subject=f"Faktura {n:03d}") for n in range(24)]
    lone = request(quiet, other, subject="Reklamace 2026/7")
    async with pipeline("sender") as running:
        await publish(env, *burst)

        async def burst_begun() -> bool:
            running.check()
            return await asyncio.to_thread(message_count, env, customer, "INBOX") >= 1

        await eventually(burst_begun, timeout=60, interval=0.1, what="info@'s first message")
        published = dt.datetime.now(dt.UTC)
        await publish(env, lone)
        found = await waiter(env, running)(
            {lone.request_id, *(r.request_id for r in burst)}, {SendState.FILED}, timeout=180
        )
    filed_at = {r.request_id: r.at for r in found if r.state is SendState.FILED}
    ahead = [r for r in burst if published < filed_at[r.request_id] < filed_at[lone.request_id]]
    assert len(ahead) <= 3, f"{len(ahead)} of info@'s burst went out first"
    assert message_count(env, other, "INBOX") == 1
    assert message_count(env, complaints, "Sent") == 1
    assert message_count(env, customer, "INBOX") == 24


async def test_an_oauth2_account_sends_and_files_with_access_tokens(
    senv: Env, pipeline: Pipeline, oauth: OAuthServer
) -> None:
    """Microsoft 365 takes nothing but OAuth2: SMTP AUTH XOAUTH2, then IMAP AUTHENTICATE
    for filing, each with an access token from the refresh token; revoked, it fails."""
    env = senv
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    secret, refresh = oauth_secret(env, oauth, info)
    oauth_account = account.model_copy(update={"secret": secret})
    await env.publish_accounts(oauth_account)
    first = request(oauth_account, customer)
    async with pipeline("sender") as running:
        await publish(env, first)
        await waiter(env, running)({first.request_id}, {SendState.FILED})
        assert oauth.refreshes(refresh) >= 1
        oauth.revoke(refresh)
        second = request(oauth_account, customer)
        await publish(env, second)
        found = await waiter(env, running)({second.request_id}, {SendState.FAILED, SendState.FILED})
    failed = [r for r in found if r.request_id == second.request_id]
    assert failed[-1].state is SendState.FAILED, failed
    assert failed[-1].reason and "invalid_grant" in failed[-1].reason
    assert message_count(env, customer, "INBOX") == 1
    assert message_count(env, info, "Sent") == 1


async def test_a_send_longer_than_a_lease_stays_with_its_replica(
    senv: Env, pipeline: Pipeline, tmp_path: Path
) -> None:
    """Two replicas, leases of 3 s, a server that takes 8 s to answer DATA: the
    heartbeat keeps the lease with the replica sending, so the other never takes the
    request over (it would find it "sending" and call its outcome unknown)."""
    env = senv
    env.overrides["sender_lease_s"] = 3.0
    info, _, account = shared_info(env)
    customer = env.mail_user("customer")
    await env.publish_accounts(account)
    env.smtp.slow_reply(customer.address, 8)
    req = request(account, customer)
    other = _sender_process(env, tmp_path / "sender.log")
    try:
        async with pipeline("sender") as running:
            await publish(env, req)
            found = await waiter(env, running)(
                {req.request_id}, {SendState.FILED, SendState.UNKNOWN}
            )
    finally:
        other.send_signal(signal.SIGTERM)
        other.wait(30)
    assert final_states(found)[req.request_id] is SendState.FILED
    assert SendState.UNKNOWN not in {r.state for r in found}
    assert message_count(env, customer, "INBOX") == 1
    assert message_count(env, info, "Sent") == 1


async def _ready(url: str, process: subprocess.Popen[bytes]) -> float:
    """Wait for the process's /readyz; returns when it answered ready (loop time)."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

        async def ready() -> bool:
            assert process.poll() is None, "the sender exited"
            try:
                async with http.get(url) as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, timeout=90, interval=0.1, what="the sender to be ready")
    return loop.time()


async def test_a_killed_replicas_requests_are_taken_over_and_new_ones_picked_up_at_once(
    senv: Env, tmp_path: Path
) -> None:
    """SIGKILL while the server holds DATA's reply, restart under the same name (as a
    pod's container restarts): a request posted once it is ready is picked up within
    3 s (static membership: no wait for the dead member's session), and the dead one's
    request is taken over within 30 s of its death, never sent twice (unknown)."""
    env = senv
    _, _, account = shared_info(env)
    slow, other = env.mail_user("slow"), env.mail_user("other")
    await env.publish_accounts(account)
    env.smtp.slow_reply(slow.address, 15)
    held = request(account, slow)
    log, port = tmp_path / "sender.log", free_port()
    named = {"instance_id": "sender-0", "metrics_host": "127.0.0.1", "metrics_port": str(port)}
    env.overrides.update(named)
    loop = asyncio.get_running_loop()
    async with env.mongo() as db:
        first = _sender_process(env, log)
        try:
            await _ready(f"http://127.0.0.1:{port}/readyz", first)
            await publish(env, held)

            async def in_data() -> bool:
                doc = await db.send_requests.find_one({"_id": held.request_id})
                return bool(doc and doc["state"] == "sending")

            await eventually(in_data, timeout=60, interval=0.1, what="DATA under way")

            async def delivered() -> bool:  # the server holds its reply from now on
                return await asyncio.to_thread(message_count, env, slow, "INBOX") == 1

            # "sending" is written before DATA: killed then, under load, the replica
            # could die before the message was through, and nothing was delivered.
            await eventually(delivered, timeout=30, interval=0.1, what="the message delivered")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        died = loop.time()
        second = _sender_process(env, log)
        try:
            ready = await _ready(f"http://127.0.0.1:{port}/readyz", second)
            fresh = request(account, other)
            await publish(env, fresh)

            async def picked_up() -> bool:
                doc = await db.send_requests.find_one({"_id": fresh.request_id})
                return bool(doc and doc["state"] in ("sent", "filed"))

            await eventually(picked_up, timeout=30, interval=0.05, what="the new request sent")
            pick_up, restart_to_sent = loop.time() - ready, loop.time() - died

            async def taken_over() -> bool:
                doc = await db.send_requests.find_one({"_id": held.request_id})
                return bool(doc and doc["state"] == "unknown")

            await eventually(taken_over, timeout=60, interval=0.1, what="the takeover")
            takeover = loop.time() - died
            found = await waiter(env)(
                {fresh.request_id, held.request_id}, {SendState.FILED, SendState.UNKNOWN}
            )
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    print(
        f"ready {ready - died:.1f}s after the kill, pick-up after ready {pick_up:.2f}s, "
        f"takeover after death {takeover:.1f}s"
    )
    assert pick_up < 3.0
    # The restarted replica did not wait out the dead one's 10 s session to join.
    assert restart_to_sent < 9.0
    assert takeover < 30.0
    final = final_states(found)
    assert final == {fresh.request_id: SendState.FILED, held.request_id: SendState.UNKNOWN}
    assert message_count(env, slow, "INBOX") == 1  # delivered while it died; not again
    assert message_count(env, other, "INBOX") == 1
