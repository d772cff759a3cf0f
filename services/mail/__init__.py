"""One message as every service reads it (pure): its header block and its subject.

- :mod:`.headers` the header block, parsed once and tolerantly (RFC 5322)
- :mod:`.subject` a subject without reply and forward prefixes
"""

from services.mail.headers import Headers, msg_ids, parse_headers
from services.mail.subject import normalise_subject

__all__ = ["Headers", "msg_ids", "normalise_subject", "parse_headers"]
