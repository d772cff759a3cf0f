"""One message as every service reads it (pure): its header block and its identity.

- :mod:`.headers`  the header block, parsed once and tolerantly (RFC 5322)
- :mod:`.identity` the normalised Message-ID, the fingerprint and the activity id, and
  back: the Message-ID a fingerprint names, a stored id as a header carries it
- :mod:`.subject`  a subject without reply and forward prefixes
"""

from services.mail.headers import Headers, msg_ids, parse_headers
from services.mail.identity import (
    Fingerprint,
    Identity,
    bracketed,
    identify,
    message_id_of,
    normalise_message_id,
)
from services.mail.subject import normalise_subject

__all__ = [
    "Fingerprint",
    "Headers",
    "Identity",
    "bracketed",
    "identify",
    "message_id_of",
    "msg_ids",
    "normalise_message_id",
    "normalise_subject",
    "parse_headers",
]
