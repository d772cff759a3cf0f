"""Capabilities the server volunteers: the ``CAPABILITY`` response code (RFC 3501 7.1).

RFC 3501 7.1 lets a server send its capabilities in the greeting's ``OK``, and 6.2.3 in
the tagged ``OK`` of a successful ``LOGIN`` (RFC 9051 6.2.3 and 7.1 say it SHOULD
there, and for ``AUTHENTICATE``), "so it is unnecessary for a client to send a separate
CAPABILITY command if it recognizes" them. Dovecot does both. Each one recognized saves
a round trip per connection: two of the round trips every account makes before it
IDLEs, which a rebalance or a server restart multiplies by thousands (issue #16).

A server that sends no code is asked with ``CAPABILITY``, as before.
"""

from __future__ import annotations

import re

import aioimaplib

_CODE = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)
_VERSIONS = ("IMAP4REV1", "IMAP4REV2")  # RFC 3501, RFC 9051


def capability_code(line: bytes) -> list[str] | None:
    """The capabilities of a ``[CAPABILITY ...]`` code in ``line`` (a greeting or a
    tagged completion's text), or None when it has none or lists no IMAP version (a
    list that is not one)."""
    match = _CODE.search(line)
    if match is None:
        return None
    names = match.group(1).decode(errors="replace").split()
    if not any(n.upper() in _VERSIONS for n in names):
        return None
    return names


def adopt(protocol: aioimaplib.IMAP4ClientProtocol, line: bytes) -> bool:
    """The capabilities of ``line``'s code as the connection's, as aioimaplib's own
    ``capability()`` would set them from the command; False (nothing changed) without."""
    names = capability_code(line)
    if names is None:
        return False
    protocol.capabilities = set(names)
    protocol.imap_version = next(n.upper() for n in names if n.upper() in _VERSIONS)
    return True
