"""Is a host this machine? (pure) Plaintext (IMAP, SMTP, an OAuth2 redirect) is allowed
to loopback only: local development and the tests."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
