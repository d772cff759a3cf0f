"""The sender: requests/s from send request to filed in Sent, and the latency of each.

What is measured, and why
-------------------------
- **Sender**: ``services.cli.SERVICES["sender"]`` as ``mailsync sender`` runs it, with
  production settings (``MAILSYNC_SENDER_*`` in the environment honoured), against
  the dev SMTP server (aiosmtpd with STARTTLS and AUTH, delivering to Dovecot over
  LMTP) and Dovecot (IMAPS) for filing.
  N requests are published at once on send-requests; each is authorised, recorded in
  the ledger (SecantusDB with ``--sync-on-commit``), built, sent (RSET, MAIL, RCPT,
  DATA) over one of the account's SMTP sessions (STARTTLS and AUTH once per session),
  filed in Sent over one of its IMAPS sessions (EXAMINE, SEARCH by Message-ID, APPEND;
  the requests that reach filing while one is filed go together, one MULTIAPPEND),
  published as a raw message, and announced on send-results. The clock stops at the
  last ``filed`` result. The SMTP logins the server counted are reported.
- **Latency**: per request, from its ``requested_at`` (set when it was published) to
  its ``filed`` result. With all N published at once this includes queueing behind the
  others, so the p99 is dominated by the burst; the p50 of a lone request is reported
  separately.
- **Bound** (send + APPEND): the same N messages sent through one aiosmtplib
  connection (STARTTLS, AUTH once) while one aioimaplib connection (IMAPS, LOGIN once)
  APPENDs them to Sent, the two overlapping: what the SMTP server and Dovecot take for
  the work the sender does, with no ledger, no Kafka, no search before filing.
- **Baseline** (send only, the earlier bound): the same N messages through one
  aiosmtplib connection, no ledger and no filing: what the SMTP server itself takes.
- **Ledger alone**: the same N requests through the sender's own ledger calls (accept,
  claim, ``sending``, ``sent`` + ``filed``, settle), as many in flight as the sender
  has and claimed the way its pump claims them, on the same database, with no SMTP,
  IMAP or Kafka: what the database takes for the ledger's part, which the sender
  cannot beat (its writes must be durable before each next step).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import ssl
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aioimaplib
import aiosmtplib
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from bench._harness import TimedService, overrides_for, run_as_production
from devservers import DovecotServer, KafkaBroker, SecantusServer, SmtpServer
from schemas.account import AccountRecord, EncryptedSecret, Endpoint, Security, SharedOwnership
from schemas.common import Address
from schemas.send_request import SendRecord, SendRequest, SendResult, SendState
from schemas.topics import SEND_REQUESTS, SEND_RESULTS, TOPICS
from services.accounts import publish_account
from services.cli import SERVICES
from services.common.kafka import ensure_topics, producer
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings
from services.sender.compose import build_message, message_id_for
from services.sender.ledger import SendLedger
from services.sender.settings import SenderSettings

HEADING = "## Sender"
MAX_REQUESTS = 300
TEXT = (
    "Dobrý den,\n\nv příloze posíláme potvrzení objednávky a fakturu. Zboží expedujeme "
    "zítra dopoledne.\n\nS pozdravem\nPetr Svoboda\nKvětinářství Nováková\n"
) * 6


def _request(account: AccountRecord, to: str, n: int) -> SendRequest:
    return SendRequest(
        request_id=f"bench-{uuid.uuid4().hex}",
        account_id=account.account_id,
        sender=Address(name="Objednávky", address=account.address),
        requested_by="bench",
        groups=("sales",),
        to=(Address(name="Zákazník", address=to),),
        subject=f"Potvrzení objednávky č. {n:05d}",
        text_body=TEXT,
        html_body="<p>" + TEXT.replace("\n", "<br>") + "</p>",
        requested_at=dt.datetime.now(dt.UTC),
    )


async def _results(
    settings: CommonSettings, wanted: set[str], timeout_s: float
) -> dict[str, SendResult]:
    consumer = AIOKafkaConsumer(
        settings.topic(SEND_RESULTS),
        bootstrap_servers=settings.require_kafka(),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    filed: dict[str, SendResult] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(filed) < len(wanted) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    result = SendResult.model_validate_json(r.value)
                    if result.request_id in wanted and result.state is not SendState.SENT:
                        filed[result.request_id] = result
    finally:
        await consumer.stop()
    return filed


async def _run_sender(
    overrides: dict[str, Any],
    account: AccountRecord,
    to: str,
    n: int,
    timeout_s: float,
    marks: dict[str, tuple[float, float]],
) -> tuple[float, list[float], float, int]:
    settings = CommonSettings(**overrides)
    await ensure_topics(settings, TOPICS)
    prod = producer(settings, client_id="bench")
    await prod.start()
    await publish_account(prod, settings, account)
    stop = asyncio.Event()
    sender = TimedService(SERVICES["sender"](overrides), marks)  # its start() timed
    runner = asyncio.create_task(run_as_production([sender], stop, 15.0))
    try:
        # Two lone requests first: the first warms up (the consumer group join), the
        # second is the latency of one request on an idle sender.
        lone_s = 0.0
        for _ in range(2):
            lone = _request(account, to, 0)
            await prod.send_and_wait(
                settings.topic(SEND_REQUESTS),
                lone.model_dump_json().encode(),
                key=account.account_id.encode(),
            )
            got = await _results(settings, {lone.request_id}, timeout_s)
            lone_s = (got[lone.request_id].at - lone.requested_at).total_seconds()
        requests = [_request(account, to, i + 1) for i in range(n)]
        began = time.perf_counter()
        for req in requests:
            await prod.send(
                settings.topic(SEND_REQUESTS),
                req.model_dump_json().encode(),
                key=account.account_id.encode(),
            )
        await prod.flush()
        got = await _results(settings, {r.request_id for r in requests}, timeout_s)
        elapsed = time.perf_counter() - began
    finally:
        stop.set()
        await asyncio.wait_for(runner, 60)
        await prod.stop()
    latencies = [
        (got[r.request_id].at - r.requested_at).total_seconds()
        for r in requests
        if r.request_id in got
    ]
    failed = sum(1 for r in got.values() if r.state is SendState.FAILED)
    return elapsed, latencies, lone_s, failed


async def _baseline(
    smtp: SmtpServer, account: AccountRecord, password: str, to: str, n: int, tls: ssl.SSLContext
) -> float:
    messages = []
    for i in range(n):
        req = _request(account, to, i)
        messages.append(build_message(req, message_id_for(req.request_id, account.address)))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, start_tls=True, tls_context=tls)
    began = time.perf_counter()
    await client.connect()
    await client.login(account.address, password)
    for raw in messages:
        await client.sendmail(account.address, [to], raw)
    with contextlib.suppress(aiosmtplib.SMTPException):
        await client.quit()
    return time.perf_counter() - began


async def _append_all(
    dovecot: DovecotServer, user: str, password: str, messages: list[bytes], tls: ssl.SSLContext
) -> None:
    imap = aioimaplib.IMAP4_SSL(host="127.0.0.1", port=dovecot.imaps_port, ssl_context=tls)
    await imap.wait_hello_from_server()
    await imap.login(user, password)
    when = dt.datetime.now(dt.UTC)
    for raw in messages:
        response = await imap.append(raw, mailbox="Sent", flags="\\Seen", date=when)
        if response.result != "OK":
            raise RuntimeError(f"APPEND refused: {response}")
    await imap.logout()


async def _bound(
    smtp: SmtpServer,
    dovecot: DovecotServer,
    account: AccountRecord,
    password: str,
    to: str,
    n: int,
    tls: ssl.SSLContext,
) -> float:
    """Send the N messages over one SMTP connection while one IMAP connection APPENDs
    them to Sent: both servers' share of the sender's work, nothing of ours."""
    messages = []
    for i in range(n):
        req = _request(account, to, i)
        messages.append(build_message(req, message_id_for(req.request_id, account.address)))

    async def send_all() -> None:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=smtp.port, start_tls=True, tls_context=tls
        )
        await client.connect()
        await client.login(account.address, password)
        for raw in messages:
            await client.sendmail(account.address, [to], raw)
        with contextlib.suppress(aiosmtplib.SMTPException):
            await client.quit()

    began = time.perf_counter()
    await asyncio.gather(send_all(), _append_all(dovecot, account.address, password, messages, tls))
    return time.perf_counter() - began


async def _ledger_alone(
    uri: str, account: AccountRecord, to: str, n: int, concurrency: int
) -> float:
    """The ledger's writes of N requests and nothing else (see the module docstring)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    ledger = SendLedger(client["bench-ledger"], "bench", dt.timedelta(seconds=60))
    await ledger.ensure_indexes()
    requests = [_request(account, to, i) for i in range(n)]
    slots = asyncio.Semaphore(concurrency)
    uids = itertools.count(1)  # distinct updates, as each request's own UID and reply
    done = 0

    async def one(record: SendRecord, uid: int) -> None:
        nonlocal done
        async with slots:
            record = await ledger.advance(record, SendState.SENDING)
            record = await ledger.advance(
                record,
                SendState.FILED,
                via=SendState.SENT,
                smtp_reply="250 2.0.0 Delivered",
                sent_folder="Sent",
                sent_uid=uid,
                activity_id=f"activity-{uid}",
                reason=None,
                next_attempt_at=None,
            )
            await ledger.settle(record, record.unpublished)
            done += 1

    began = time.perf_counter()
    await ledger.accept([(r, message_id_for(r.request_id, account.address)) for r in requests])
    tasks: set[asyncio.Task[None]] = set()
    while done < n:
        # As the sender's pump: a batch claimed once those waiting for a slot began.
        if len(tasks) <= concurrency:
            busy = {t.get_name() for t in tasks}
            for record in await ledger.claim_due(2 * concurrency - len(tasks), busy):
                task = asyncio.create_task(one(record, next(uids)), name=record.id)
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    elapsed = time.perf_counter() - began
    await client.close()
    return elapsed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    n = min(messages, MAX_REQUESTS)
    work = Path(tempfile.mkdtemp(prefix="mailsync-bench-sender-"))
    with (
        KafkaBroker(work) as kafka,
        SecantusServer(work / "mongo") as mongo,
        DovecotServer() as dovecot,
        SmtpServer(dovecot) as smtp,
    ):
        assert dovecot.cert is not None
        info = dovecot.add_user("bench-info@example.com", "bench-info-pw")
        customer = dovecot.add_user("bench-customer@example.com", "bench-customer-pw")
        overrides = overrides_for(kafka, mongo, work / "data")
        overrides["sender_ca_file"] = dovecot.cert.cert
        box = SecretBox(overrides["secret_key"])
        account = AccountRecord(
            account_id="bench-info",
            address=info.address,
            ownership=SharedOwnership(group="sales"),
            imap=Endpoint(
                host="127.0.0.1",
                port=dovecot.imaps_port,
                security=Security.TLS,
                username=info.address,
            ),
            smtp=Endpoint(
                host="127.0.0.1", port=smtp.port, security=Security.STARTTLS, username=info.address
            ),
            secret=EncryptedSecret(ciphertext=box.encrypt(info.password)),
            updated_at=dt.datetime.now(dt.UTC),
        )
        tls = ssl.create_default_context(cafile=str(dovecot.cert.cert))
        marks: dict[str, tuple[float, float]] = {}
        load_before = os.getloadavg()[0]
        elapsed, latencies, lone_s, failed = asyncio.run(
            _run_sender(overrides, account, customer.address, n, timeout_s, marks)
        )
        load_after = os.getloadavg()[0]
        logins = smtp.logins(info.address)  # before the bounds log in too
        sent_count = dovecot.status(info.address, "Sent")["messages"]  # before the bound's
        bound_s = asyncio.run(
            _bound(smtp, dovecot, account, info.password, customer.address, n, tls)
        )
        baseline_s = asyncio.run(_baseline(smtp, account, info.password, customer.address, n, tls))
        sender = SenderSettings(**overrides)  # as the service read them (env included)
        ledger_s = asyncio.run(
            _ledger_alone(mongo.uri, account, customer.address, n, sender.sender_concurrency)
        )
    done = len(latencies)
    complete = done == n and failed == 0
    size = len(build_message(_request(account, customer.address, 1), "<x@example.com>"))
    body = (
        f"{n} send requests published at once (text + HTML, {size / 1024:.0f} KB each), one "
        f"shared account, STARTTLS + AUTH to the dev SMTP server, filing over IMAPS in Dovecot; "
        "SecantusDB with `--sync-on-commit`; "
        f"`MAILSYNC_SENDER_CONCURRENCY={sender.sender_concurrency}`, "
        f"{sender.sender_connections_per_account} connections per account. {done} filed, "
        f"{failed} failed, {sent_count} in Sent (with the two lone ones); {logins} SMTP logins "
        f"for the {n + 2} requests.\n\n"
        "| | Seconds | Requests/s |\n|---|---:|---:|\n"
        f"| **Sender** (ledger → SMTP → APPEND to Sent → raw message → result) | {elapsed:.2f} "
        f"| **{done / elapsed:,.1f}** |\n"
        f"| bound: one aiosmtplib connection sending them while one aioimaplib connection "
        f"APPENDs them to Sent, no ledger or Kafka | {bound_s:.2f} | {n / bound_s:,.1f} |\n"
        f"| one aiosmtplib connection, `sendmail` of the same messages, no ledger or filing "
        f"| {baseline_s:.2f} | {n / baseline_s:,.1f} |\n"
        f"| the sender's ledger calls alone (accept, claim, sending, sent + filed, settle), "
        f"{sender.sender_concurrency} in flight, no SMTP, IMAP or Kafka "
        f"| {ledger_s:.2f} | {n / ledger_s:,.1f} |\n\n"
        f"Sender against the send + APPEND bound: **{done / elapsed / (n / bound_s):.2f}**; "
        f"against sending alone: {done / elapsed / (n / baseline_s):.2f}; against its "
        f"ledger alone: {done / elapsed / (n / ledger_s):.2f}.\n\n"
        "| Request → filed latency | Seconds |\n|---|---:|\n"
        f"| a lone request on an idle sender | {lone_s:.3f} |\n"
        f"| p50 in the burst of {n} | {statistics.median(latencies):.3f} |\n"
        f"| p99 in the burst of {n} | {_pct(latencies, 0.99):.3f} |\n"
    )
    if "sender" in marks:
        began, started = marks["sender"]
        body += f"\nNot in the figures: `start()` of the sender {started - began:.1f}s.\n"
    body += (
        f"\n- Load average (1 min) {load_before:.2f} before the sender, {load_after:.2f} after "
        f"(on {len(os.sched_getaffinity(0))} CPUs; anything else running skews the figures).\n"
    )
    return body, complete
