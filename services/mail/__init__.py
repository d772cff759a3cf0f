"""One message as every service reads it (pure): its header block.

- :mod:`.headers` the header block, parsed once and tolerantly (RFC 5322)
"""

from services.mail.headers import Headers, msg_ids, parse_headers

__all__ = ["Headers", "msg_ids", "parse_headers"]
