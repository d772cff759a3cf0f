"""``/v1/send`` and ``/v1/blobs``: outbound mail and its attachments."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from schemas.common import BlobRef
from services.api.auth import CallerDep, ResourcesDep
from services.api.errors import InvalidRequest
from services.api.models import SendAccepted, SendInput, SendResolutionInput, SendStatus
from services.api.problem_docs import problem_responses
from services.api.sending import accept_send, resolve_unknown, send_status

router = APIRouter(tags=["send"], responses=problem_responses(403, 404, 409, 422, 503))


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


@router.get("/v1/send/{request_id}")
async def status_of(request_id: str, caller: CallerDep, res: ResourcesDep) -> SendStatus:
    """What became of a send request so far (also announced on mailsync.send-results)."""
    return await send_status(res, caller, request_id)


@router.post("/v1/send/{request_id}/resolve")
async def resolve(
    request_id: str, body: SendResolutionInput, caller: CallerDep, res: ResourcesDep
) -> SendStatus:
    """Decide what became of a request whose outcome is unknown: resend it, or mark it
    sent (then it is filed in Sent). 409 when its outcome is not unknown."""
    return await resolve_unknown(res, caller, request_id, body.action)
