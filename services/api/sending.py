"""Accepting a send request: the caller may use the account and the sender address, and
the request is published on ``mailsync.send-requests`` (key: account id, so one
account's mail leaves in order) for the sender service."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import ValidationError

from schemas.common import Address, BlobRef
from schemas.send_request import SendRequest
from schemas.topics import SEND_REQUESTS
from services.api.accounts import Accounts
from services.api.callers import Caller
from services.api.errors import Conflict, InvalidRequest
from services.api.models import SendInput
from services.api.permissions import may_send_as
from services.api.resources import Resources


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
