"""Is a connection just used worth keeping for the account's next request? (pure)

A mail client keeps its connection while it has more to send and closes it when done;
the sender does the same per account: a connection is kept only while other requests
of the same account are in hand (so a burst pays one TLS handshake and one login, and
an idle account holds nothing open), and only up to a number of uses and an age, as
servers cap messages per session (nodemailer's pool defaults to 100) and an OAuth2
access token the session logged in with expires.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_uses: int
    max_age_s: float


@dataclass(frozen=True)
class Used:
    """A connection as its last user left it."""

    uses: int
    age_s: float
    broken: bool  # its user saw it fail: its state is unknown


def keep_open(conn: Used, *, others_in_hand: int, limits: Limits) -> bool:
    """Keep ``conn`` idle for the account's next request, or close it now?"""
    if conn.broken or others_in_hand <= 0:
        return False
    return conn.uses < limits.max_uses and conn.age_s < limits.max_age_s
