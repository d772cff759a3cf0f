"""What the user's decision about an ``unknown`` outcome does to its ledger record (pure).

RFC 1047: when the link dies after the message was handed over and before the reply,
only the recipient knows whether it arrived; the sender never guesses. The user does:

- ``resend``: it did not arrive. The record goes back to ``accepted`` and the sender
  sends it again, with the same Message-ID, so if both copies do arrive, mail clients
  and the CRM's dedup see one message;
- ``mark_sent``: it arrived. The record becomes ``sent`` (announced as such) and the
  sender files it in Sent, searching the folder first, as after any send.

Either way the update applies only to a record still ``unknown`` (one conditional
update, atomic on one document): two clicks, or two users, decide once.
"""

from __future__ import annotations

import datetime as dt

from schemas.send_request import Resolution, SendState
from services.common.mongo import Document


def still_unknown(request_id: str) -> Document:
    """The filter that makes a resolution apply once."""
    return {"_id": request_id, "state": SendState.UNKNOWN.value}


def resolution_update(resolution: Resolution, user_id: str, now: dt.datetime) -> Document:
    """The ledger update that carries out ``resolution``, decided by ``user_id``."""
    common = {
        "resolution": resolution.value,
        "attempts": 0,
        "next_attempt_at": now,  # due at once: the sender's next pass takes it up
        "lease_until": None,
        "updated_at": now,
    }
    if resolution is Resolution.RESEND:
        return {
            "$set": {
                **common,
                "state": SendState.ACCEPTED.value,
                "reason": f"outcome unknown; sent again at the request of {user_id}",
                "last_step": None,
            }
        }
    return {
        "$set": {
            **common,
            "state": SendState.SENT.value,
            "reason": f"outcome unknown; marked sent by {user_id}",
            "smtp_reply": None,
            # The activity id is derived from the message as built (its From, Date and
            # Subject too, not the Message-ID alone): the sender sets it when it files.
            "activity_id": None,
        },
        "$addToSet": {"unpublished": SendState.SENT.value},
    }
