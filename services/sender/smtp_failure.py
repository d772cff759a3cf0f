"""Is an SMTP failure worth retrying? (pure)

RFC 5321 4.2.1: a 4yz reply is a transient negative completion (try again later),
a 5yz reply a permanent one. Some 5yz replies describe our session rather than the
message, and a new session may well succeed: 503 (bad sequence of commands) and 501
on AUTH after a dropped TLS layer are the usual ones, so they are retried. Network
errors, timeouts and disconnections are transient.
"""

from __future__ import annotations

from dataclasses import dataclass

# 5yz replies about the session, not the message: a fresh connection may succeed.
_SESSION_5XX = frozenset({503, 504})


@dataclass(frozen=True)
class SmtpVerdict:
    retriable: bool
    reason: str
    # The link failed after DATA began: the server may have taken the message without
    # our hearing its reply (RFC 1047), so sending it again could deliver it twice.
    maybe_delivered: bool = False
    # Then: the SMTP transcript's last step, for the user who must decide what to do.
    last_step: str | None = None


def classify_smtp_reply(code: int, text: str, *, stage: str) -> SmtpVerdict:
    """Verdict for a negative reply ``code`` received at ``stage`` (MAIL, RCPT, DATA...)."""
    reply = f"{code} {text}".strip()
    if 400 <= code < 500:
        return SmtpVerdict(True, f"{stage} deferred by the server: {reply}")
    if code in _SESSION_5XX:
        return SmtpVerdict(True, f"{stage} failed in this session: {reply}")
    if code == 535 or (code == 530 and stage == "AUTH"):
        return SmtpVerdict(False, f"SMTP authentication failed: {reply}")
    if 500 <= code < 600:
        return SmtpVerdict(False, f"{stage} refused by the server: {reply}")
    # Not a negative reply at all (the server said something unexpected): retry.
    return SmtpVerdict(True, f"{stage}: unexpected reply {reply}")


def classify_network_failure(exc: BaseException, *, stage: str) -> SmtpVerdict:
    """Connection refused, reset, timed out, TLS handshake cut short: all transient,
    unless the message was being handed over (``stage`` DATA), when its fate is unknown."""
    what = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if stage == "DATA":
        return SmtpVerdict(
            True,
            f"connection lost during DATA ({what})",
            maybe_delivered=True,
            last_step=f"DATA: the message was handed over, no reply from the server ({what})",
        )
    return SmtpVerdict(True, f"SMTP server unreachable: {what}")


def worst(verdicts: list[SmtpVerdict]) -> SmtpVerdict:
    """One permanent refusal makes the whole send permanent (the user must fix it)."""
    permanent = [v for v in verdicts if not v.retriable]
    chosen = permanent or verdicts
    return SmtpVerdict(not permanent, "; ".join(v.reason for v in chosen))
