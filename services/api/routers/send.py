"""``/v1/send`` and ``/v1/blobs``: outbound mail and its attachments."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from schemas.common import BlobRef
from services.api.auth import CallerDep, ResourcesDep
from services.api.errors import InvalidRequest
from services.api.models import SendAccepted, SendInput
from services.api.sending import accept_send

router = APIRouter(tags=["send"])


@router.post("/v1/blobs", status_code=status.HTTP_201_CREATED)
async def upload(request: Request, caller: CallerDep, res: ResourcesDep) -> BlobRef:
    """Store an attachment (the raw request body); refer to it in a send request."""
    limit = res.settings.api_max_upload_bytes
    if int(request.headers.get("content-length") or 0) > limit:
        raise InvalidRequest(f"attachment larger than {limit} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise InvalidRequest(f"attachment larger than {limit} bytes")
    return await res.blobs.put(bytes(data))


@router.post("/v1/send", status_code=status.HTTP_202_ACCEPTED)
async def send(body: SendInput, caller: CallerDep, res: ResourcesDep) -> SendAccepted:
    """Accept a message for the sender service (results on mailsync.send-results)."""
    request = await accept_send(res, caller, body)
    return SendAccepted(request_id=request.request_id, account_id=request.account_id)
