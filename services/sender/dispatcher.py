"""One send request through its states: accepted -> sending -> sent -> filed (or failed).

    accepted ── authorise, build; connect, AUTH, MAIL, RCPT ══ sending ── DATA 250 ──► sent
      │ ▲ 4xx / network: retry later, up to the max attempts                          │
      │ └──────────────── the user: resend ─┐                         search Sent by  │
      └── 5xx, unauthorised, bad input, out of tries ──► failed       Message-ID, else│
                                             │                        APPEND ──► filed
    sending found after a crash, or the link lost during DATA:   the user: mark sent ─► sent
    in Sent? -> sent; else unknown, never resent unasked (RFC 1047) ──┘

Every state is written to the ledger before the next step, so a crash anywhere resumes
from the last durable state: a sent message is never sent again and never forgotten
unfiled. ``sending`` is written while the session is taken and MAIL and RCPT go (══),
and DATA begins only once it is durable; finding a request there after a crash means
the server may have the message without us knowing, so it is not sent again: it ends
``unknown`` (with the transcript's last step) unless it turns up in the Sent folder,
and the user decides (the API's resolve call). That is also why a message is filed
before ``sent`` is written, and ``sent`` and ``filed`` then go in one write: a crash
before it lands leaves ``sending``, and the copy in Sent is what recovery finds.

The ``sending`` write runs alongside the session's commands before DATA (its commit is
what a burst waits on), so a crash between it and DATA leaves ``unknown`` for a message
never sent: the user resends it (never the other way round). A refusal before DATA
takes a request in ``sending`` back to ``accepted`` (to retry) or to ``failed``:
nothing was sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

import aiosmtplib
from pymongo.asynchronous.collection import AsyncCollection

from schemas.account import AccountRecord, EncryptedSecret
from schemas.send_request import SendRecord, SendState
from services.activity_writer.visibility import Viewer, visible_accounts
from services.common import metrics
from services.common.accounts_table import AccountDirectory
from services.common.blobs import BlobStore
from services.common.errors import MailsyncError
from services.common.logs import log_context, register_secret
from services.common.mongo import Document
from services.common.oauth2 import TokenProvider
from services.common.retry import backoff
from services.common.secrets import SecretBox
from services.common.smtp_auth import smtp_login
from services.common.together import both
from services.fetcher.publish import Publisher
from services.imap import FetchedMessage
from services.mail import bracketed, identify, parse_headers
from services.sender.authorize import refusal
from services.sender.compose import (
    Attachment,
    ReplyParent,
    build_message,
    envelope_recipients,
)
from services.sender.errors import SendRefused, SmtpFailure
from services.sender.filing import Filed, SentFiler
from services.sender.ledger import LeaseLost, SendLedger
from services.sender.results import ResultPublisher
from services.sender.settings import SenderSettings
from services.sender.smtp import SmtpTransport

log = logging.getLogger("mailsync.sender")


def activity_of(message: bytes) -> str:
    """The activity id dedup derives for this message (so the CRM can link at once)."""
    return identify(parse_headers(message), message).activity_id


def _nothing() -> None:
    pass


class Dispatcher:
    def __init__(
        self,
        settings: SenderSettings,
        *,
        ledger: SendLedger,
        accounts: AccountDirectory,
        secrets: SecretBox,
        tokens: TokenProvider,
        transport: SmtpTransport,
        filer: SentFiler,
        blobs: BlobStore,
        activities: AsyncCollection[Document],
        results: ResultPublisher,
        raw: Publisher,
    ):
        self._s = settings
        self._ledger = ledger
        self._accounts = accounts
        self._secrets = secrets
        self._tokens = tokens
        self._transport = transport
        self._filer = filer
        self._blobs = blobs
        self._activities = activities
        self._results = results
        self._raw = raw
        self._built: dict[str, bytes] = {}  # by request id, while the request is in hand
        self._copies: dict[str, Filed | MailsyncError] = {}  # filed while "sent" was written

    async def handle(self, record: SendRecord, worked: Callable[[], None] = _nothing) -> None:
        """Take a claimed record as far as it can go now; release it for later if not done.

        ``worked`` is called once its SMTP and IMAP work is over, before its results are
        announced and its lease given back (the app frees its slot then).
        """
        account_id = record.request.account_id
        with log_context(account_id=account_id, request_id=record.id):
            # Holding the account keeps its SMTP and IMAP sessions open for the requests
            # of it still in hand; the last one to finish closes them.
            async with self._transport.hold(account_id), self._filer.hold(account_id):
                await self._handle(record, worked)

    async def _handle(self, record: SendRecord, worked: Callable[[], None]) -> None:
        settled = False
        try:
            # Claimed for a result still to announce, its next try not yet due: the
            # backoff holds (announcing is all there is to do now).
            waiting = record.next_attempt_at is not None and record.next_attempt_at > _after(0)
            if record.state is SendState.ACCEPTED and not waiting:
                record = await self._send(record)
            elif record.state is SendState.SENDING:
                record = await self._recover_interrupted(record)
            if record.state is SendState.SENT and not waiting:
                record = await self._file(record)
            # Announcing and settling wait on Kafka and the ledger, not on a session: the
            # next request begins meanwhile (a burst waits on those commits).
            worked()
            announced = await self._announce(record)
            await self._ledger.settle(record, announced)
            settled = True
        except LeaseLost:
            log.warning("request %s was taken over by another replica", record.id)
        finally:
            self._built.pop(record.id, None)
            self._copies.pop(record.id, None)
            if not settled:
                await self._ledger.release(record)

    # -- sending ----------------------------------------------------------------------

    async def _send(self, record: SendRecord) -> SendRecord:
        req = record.request
        account = await self._accounts.lookup(req.account_id)
        why = refusal(req, account)
        if why is not None:
            log.warning("request %s refused: %s", record.id, why)
            metrics.sent(req.account_id, "refused")
            return await self._ledger.advance(record, SendState.FAILED, reason=why)
        assert account is not None and account.smtp is not None and account.secret is not None
        try:
            message = await self._build(record, account)
        except SendRefused as exc:
            metrics.sent(req.account_id, "failed")
            return await self._ledger.advance(record, SendState.FAILED, reason=str(exc))
        current = record
        smtp, secret = account.smtp, account.secret

        async def login(client: aiosmtplib.SMTP) -> None:
            if isinstance(secret, EncryptedSecret):
                register_secret(
                    self._secrets.decrypt(secret.ciphertext), key=f"smtp:{account.account_id}"
                )
            token = await smtp_login(
                client,
                smtp.username,
                secret,
                self._secrets,
                self._tokens,
                account_id=account.account_id,
            )
            if token is not None:
                register_secret(token.token, key=f"smtp-token:{account.account_id}")

        async def before_data() -> None:
            nonlocal current
            current = await self._ledger.advance(current, SendState.SENDING)

        try:
            reply = await self._transport.send(
                account.account_id,
                (smtp, secret),
                smtp,
                login,
                req.sender.address,
                envelope_recipients(req),
                message,
                before_data,
            )
        except SmtpFailure as exc:
            return await self._smtp_failed(current, exc)
        except MailsyncError as exc:
            # The credential itself: a key we lack, a revoked OAuth2 grant (permanent),
            # a token endpoint that is away (retried).
            why = f"SMTP login impossible: {exc}"
            return await self._smtp_failed(current, SmtpFailure(why, retriable=exc.retriable))
        log.info("request %s sent through %s: %s", record.id, account.account_id, reply)
        metrics.sent(
            req.account_id, "sent", (dt.datetime.now(dt.UTC) - req.requested_at).total_seconds()
        )
        # Filed first, then "sent" and "filed" written as one update: the ledger's
        # commits are what a burst waits on (one per distinct update), and a crash
        # before that write leaves "sending", whose recovery finds this copy in Sent
        # (filing searches first, so a later try never files it twice). Only a copy
        # that could not be filed has "sent" written alone, to be filed later.
        filed = await self._file_copy(record, account)
        if isinstance(filed, Filed):
            return await self._filed(current, filed, account, via_sent={"smtp_reply": reply})
        sent = await self._ledger.advance(
            current,
            SendState.SENT,
            smtp_reply=reply,
            reason=None,
            activity_id=activity_of(message),
        )
        self._copies[record.id] = filed
        return sent

    async def _smtp_failed(self, record: SendRecord, exc: SmtpFailure) -> SendRecord:
        if exc.maybe_delivered and record.state is SendState.SENDING:
            return await self._recover_interrupted(
                record, cause=exc.reason, last_step=exc.last_step or "DATA"
            )
        attempts = record.attempts + 1
        if not exc.retriable or attempts >= self._s.sender_max_attempts:
            why = exc.reason if not exc.retriable else f"gave up after {attempts} tries: {exc}"
            log.warning("request %s failed: %s", record.id, why)
            metrics.sent(record.request.account_id, "failed")
            return await self._ledger.advance(
                record, SendState.FAILED, reason=why, smtp_reply=exc.reply, attempts=attempts
            )
        delay = backoff(
            attempts, base=self._s.sender_backoff_base_s, cap=self._s.sender_backoff_cap_s
        )
        metrics.sent(record.request.account_id, "deferred")
        log.info(
            "request %s deferred (try %d), again in %.0fs: %s", record.id, attempts, delay, exc
        )
        if record.state is SendState.SENDING:
            # Refused before DATA (the session, MAIL or RCPT), or DATA got a negative
            # answer: the server did not take it, so the request is back to not sent.
            record = await self._ledger.advance(
                record, SendState.ACCEPTED, attempts=record.attempts
            )
        await self._ledger.retry_later(record, _after(delay), str(exc), count=True)
        return record

    async def _recover_interrupted(
        self,
        record: SendRecord,
        cause: str = "a sender replica stopped",
        last_step: str = "DATA: begun by a sender replica that stopped before its reply",
    ) -> SendRecord:
        """DATA began but its outcome is unknown (a replica died, or the link did):
        the server may have the message (RFC 1047), and resending could deliver it
        twice. A copy in Sent (a server that files sent mail) proves it was sent;
        otherwise the outcome is ``unknown`` and the user decides."""
        account = await self._accounts.lookup(record.request.account_id)
        filed = await self._find_in_sent(record, account) if account is not None else None
        if filed is None:
            why = (
                f"interrupted while the SMTP server was receiving it ({cause}): it may "
                "have been delivered, so it was not sent again; resend it or mark it sent"
            )
            metrics.sent(record.request.account_id, "unknown")
            log.error("request %s: %s", record.id, why)
            return await self._ledger.advance(
                record, SendState.UNKNOWN, reason=why, last_step=last_step
            )
        # The message is built again as it was sent (Date and boundaries come from the
        # request), so its activity id is the same; an attachment gone since: unknown.
        try:
            built: str | None = activity_of(await self._build(record, account))  # type: ignore[arg-type]
        except SendRefused:
            built = None
        record = await self._ledger.advance(
            record, SendState.SENT, smtp_reply=None, activity_id=built
        )
        return await self._filed(record, filed, account)  # type: ignore[arg-type]

    # -- filing -----------------------------------------------------------------------

    async def _file(self, record: SendRecord) -> SendRecord:
        account = await self._accounts.lookup(record.request.account_id)
        if account is None or account.secret is None:
            why = "sent, but the account is gone or has no credentials: not filed in Sent"
            log.warning("request %s: %s", record.id, why)
            await self._ledger.retry_later(
                record, _after(self._s.sender_backoff_cap_s), why, count=False
            )
            return record
        filed = self._copies.pop(record.id, None) or await self._file_copy(record, account)
        if isinstance(filed, MailsyncError):
            delay = backoff(
                record.attempts + 1,
                base=self._s.sender_backoff_base_s,
                cap=self._s.sender_backoff_cap_s,
            )
            log.warning(
                "request %s sent but not filed yet (again in %.0fs): %s", record.id, delay, filed
            )
            await self._ledger.retry_later(record, _after(delay), str(filed), count=True)
            return record
        return await self._filed(record, filed, account)

    async def _file_copy(self, record: SendRecord, account: AccountRecord) -> Filed | MailsyncError:
        """File the message in Sent; a failure is returned (it is tried again later)."""
        try:
            message = await self._build(record, account)
            return await self._filer.file(
                account, record.message_id, message, record.request.requested_at
            )
        except MailsyncError as exc:  # filing failed, the credential or a blob is away
            return exc

    async def _find_in_sent(self, record: SendRecord, account: AccountRecord) -> Filed | None:
        if account.secret is None:
            return None
        try:
            return await self._filer.find(account, record.message_id, record.request.requested_at)
        except MailsyncError as exc:
            log.warning("request %s: cannot look in Sent: %s", record.id, exc)
            return None

    async def _filed(
        self,
        record: SendRecord,
        filed: Filed,
        account: AccountRecord,
        via_sent: Mapping[str, Any] | None = None,
    ) -> SendRecord:
        """Record ``filed`` (and announce it); ``via_sent``: the fields of "sent", a
        state reached on the way and written (and announced) in the same update."""
        message = await self._build(record, account)
        # The copy in Sent is the activity's sighting: publishing it now shows the sent
        # mail in the CRM at once; when the fetcher fetches the same (folder, UIDVALIDITY,
        # UID) later it is the same sighting, so nothing doubles. Published while "filed"
        # is written: after a crash before that write, filing again publishes it again.
        sighting = self._raw.publish(
            account.account_id,
            filed.folder.name,
            filed.folder.role,
            filed.uidvalidity,
            [
                FetchedMessage(
                    uid=filed.uid,
                    body=message,
                    size=len(message),
                    flags=("\\Seen",),
                    internaldate=record.request.requested_at,
                )
            ],
        )
        writing = self._ledger.advance(
            record,
            SendState.FILED,
            via=SendState.SENT if via_sent is not None else None,
            **(via_sent or {}),
            sent_folder=filed.folder.name,
            sent_uid=filed.uid,
            # A request marked sent by its user has none yet (see resolve.py).
            activity_id=record.activity_id or activity_of(message),
            reason=None,
            next_attempt_at=None,
        )
        record, _ = await both(writing, sighting)
        metrics.filed(account.account_id)
        log.info(
            "request %s filed in %s as UID %d%s",
            record.id,
            filed.folder.name,
            filed.uid,
            "" if filed.appended else " (already there)",
        )
        return record

    # -- building ---------------------------------------------------------------------

    async def _build(self, record: SendRecord, account: AccountRecord) -> bytes:
        """The message's bytes, built once per request in hand (sent and filed the same)."""
        if (built := self._built.get(record.id)) is not None:
            return built
        req = record.request
        attachments = []
        for att in req.attachments:
            try:
                data = await self._blobs.get(att.blob)
            except MailsyncError as exc:
                raise SendRefused(f"attachment {att.filename!r} is not available: {exc}") from None
            attachments.append(Attachment(att.filename, att.content_type, data))
        parent = await self._parent(record, account) if req.in_reply_to_activity else None
        built = self._built[record.id] = build_message(req, record.message_id, attachments, parent)
        return built

    async def _parent(self, record: SendRecord, account: AccountRecord) -> ReplyParent:
        req = record.request
        doc = await self._activities.find_one(
            {"_id": req.in_reply_to_activity},
            {"message_id": 1, "references": 1, "account_ids": 1},
        )
        viewer = Viewer(req.requested_by, frozenset(req.groups))
        visible = visible_accounts(viewer, self._accounts.all())
        if doc is None or not (set(doc.get("account_ids", ())) & visible):
            # Same words for missing and foreign: the caller learns nothing.
            raise SendRefused(f"activity {req.in_reply_to_activity!r} not found")
        if not doc.get("message_id"):
            raise SendRefused(f"activity {req.in_reply_to_activity!r} has no Message-ID")
        return ReplyParent(
            bracketed(doc["message_id"]), tuple(bracketed(r) for r in doc.get("references", ()))
        )

    # -- results ----------------------------------------------------------------------

    async def _announce(self, record: SendRecord) -> tuple[SendState, ...]:
        """Publish the results not yet announced; returns their states."""
        await self._results.publish(record, record.unpublished)
        return record.unpublished


def _after(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
