"""Accepting a send request: the caller may use the account and the sender address, and
the request is published on ``mailsync.send-requests`` (key: account id, so one
account's mail leaves in order) for the sender service.

Then the request's state, read from the sender's ledger, and the user's decision when
it is ``unknown`` (RFC 1047): written to the ledger, where the sender takes it up."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import ValidationError
from pymongo import ReturnDocument

from schemas.common import Address, BlobRef
from schemas.send_request import Resolution, SendRecord, SendRequest
from schemas.topics import SEND_REQUESTS
from services.api.account_management import Accounts
from services.api.callers import Caller
from services.api.errors import Conflict, Forbidden, InvalidRequest, NotFound
from services.api.models import SendInput, SendStatus
from services.api.permissions import may_resolve, may_see, may_send_as
from services.api.resources import Resources
from services.sender.resolve import resolution_update, still_unknown

LEDGER = "send_requests"  # the sender's ledger (services.sender.ledger)


async def accept_send(res: Resources, caller: Caller, data: SendInput) -> SendRequest:
    account = await Accounts(res).find(caller, data.account_id)
    sender = data.sender or Address(name=account.display_name, address=account.address)
    if not may_send_as(account, sender.address):
        raise InvalidRequest(
            f"{sender.address} is not an address of account {account.account_id}; "
            f"use one of {', '.join(account.addresses)}"
        )
    if account.smtp is None:
        raise Conflict(f"account {account.account_id} has no SMTP settings")
    if account.pending_credentials:
        raise Conflict(f"account {account.account_id} is waiting for its credentials")
    for attachment in data.attachments:
        if not await _stored(res, attachment.blob):
            raise InvalidRequest(f"attachment {attachment.filename!r} was not uploaded")
    if data.in_reply_to_activity is not None:
        visible = frozenset(a.account_id for a in await Accounts(res).visible(caller))
        if await res.activities.get(visible, data.in_reply_to_activity) is None:
            raise InvalidRequest(f"no activity {data.in_reply_to_activity!r} to reply to")
    try:
        request = SendRequest(
            request_id=data.request_id or uuid.uuid4().hex,
            account_id=account.account_id,
            sender=sender,
            requested_by=caller.user_id,
            groups=caller.groups,
            to=data.to,
            cc=data.cc,
            bcc=data.bcc,
            subject=data.subject,
            text_body=data.text_body,
            html_body=data.html_body,
            attachments=data.attachments,
            in_reply_to_activity=data.in_reply_to_activity,
            requested_at=dt.datetime.now(dt.UTC),
        )
    except ValidationError as exc:
        raise InvalidRequest("; ".join(e["msg"] for e in exc.errors(include_input=False))) from None
    await res.producer.send_and_wait(
        res.settings.topic(SEND_REQUESTS),
        key=account.account_id.encode(),
        value=request.model_dump_json().encode(),
    )
    return request


async def _stored(res: Resources, blob: BlobRef) -> bool:
    found = await res.db["blobs.files"].find_one({"_id": blob.sha256}, {"length": 1})
    return found is not None and found.get("length") == blob.size


async def send_status(res: Resources, caller: Caller, request_id: str) -> SendStatus:
    """The request's state, if ``caller`` may see its account (else: not found, the
    same words whether it is missing or not theirs)."""
    record = await _record(res, request_id)
    account = await res.store.get(record.request.account_id)
    if account is None or not may_see(caller, account):
        raise NotFound(f"no send request {request_id!r}")
    return _status(record)


async def resolve_unknown(
    res: Resources, caller: Caller, request_id: str, action: Resolution
) -> SendStatus:
    """Carry out the user's decision about a request whose outcome is ``unknown``."""
    record = await _record(res, request_id)
    account = await res.store.get(record.request.account_id)
    if account is None or not may_see(caller, account):
        raise NotFound(f"no send request {request_id!r}")
    if not may_resolve(caller, record.request, account):
        raise Forbidden(f"you may not send through account {account.account_id!r}")
    update = resolution_update(action, caller.user_id, dt.datetime.now(dt.UTC))
    doc = await res.db[LEDGER].find_one_and_update(
        still_unknown(request_id), update, return_document=ReturnDocument.AFTER
    )
    if doc is None:
        current = await _record(res, request_id)
        raise Conflict(
            f"send request {request_id!r} is {current.state.value}, not unknown: "
            "only an unknown outcome is resolved"
        )
    return _status(SendRecord.model_validate(doc))


async def _record(res: Resources, request_id: str) -> SendRecord:
    doc = await res.db[LEDGER].find_one({"_id": request_id})
    if doc is None:
        raise NotFound(f"no send request {request_id!r}")
    return SendRecord.model_validate(doc)


def _status(record: SendRecord) -> SendStatus:
    return SendStatus(
        request_id=record.id,
        account_id=record.request.account_id,
        state=record.state,
        message_id=record.message_id,
        reason=record.reason,
        last_step=record.last_step,
        smtp_reply=record.smtp_reply,
        sent_folder=record.sent_folder,
        sent_uid=record.sent_uid,
        resolution=record.resolution,
        updated_at=record.updated_at,
    )
