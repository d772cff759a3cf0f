"""Logging set-up shared by every entry point: JSON lines for machines, text for humans.

In ``json`` format every record is one JSON object on one line: ``time`` (RFC 3339,
UTC), ``level``, ``logger``, ``message``, ``account_id`` and ``request_id`` (from the
context of the task that logged: the fetcher sets the account in each account's task,
the sender the account and request while it handles a request), and ``exception``
when there is one. Log collectors (Loki, Elasticsearch, Cloud Logging) read that as is.

Secrets never reach a log line: settings print ``SecretStr`` masked, and every secret
value a service handles (a decrypted mailbox password, the database URI) is registered
with :func:`register_secret`, and replaced by ``**********`` in every line, whatever
library formatted it into a message or an exception.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Literal

LogFormat = Literal["json", "text"]
MASK = "**********"

account_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mailsync_account_id", default=None
)
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mailsync_request_id", default=None
)

# Each secret under its first MIN_SECRET_CHARS characters, longest first. Replaced, not
# changed in place: a log line formatted on another thread (faust's consumer) reads a
# whole list.
_by_prefix: dict[str, list[str]] = {}
# Shorter values would mask ordinary words: a secret this short is a weak one anyway.
MIN_SECRET_CHARS = 6
# Per key (an account's credential), its newest values: an access token just refreshed
# stays masked while the one before may still be valid (until the next refresh).
KEPT_PER_KEY = 2
_holds: dict[str, int] = {}  # each masked value: how many keys (or registrations) hold it
_held: dict[str, tuple[str, ...]] = {}  # key -> its values, newest first


def register_secret(value: str | None, *, key: str | None = None) -> None:
    """Never print ``value``: every log line containing it shows ``**********`` instead.

    Without ``key`` (the service's own settings), for the life of the process. With one
    (``imap:<account>``), the value joins the key's newest :data:`KEPT_PER_KEY` and the
    oldest leaves: a process held every OAuth2 access token it ever logged in with, a
    new one for each login after its hourly refresh (the sender's sessions, the
    fetcher's reconnects), for as long as it ran. A value another key, or a
    registration without one, still holds stays masked."""
    if not value or len(value) < MIN_SECRET_CHARS:
        return
    if key is None:
        _hold(value)
        return
    before = _held.get(key, ())
    if before[:1] == (value,):
        return
    kept = (value, *(v for v in before if v != value))[:KEPT_PER_KEY]
    _held[key] = kept
    if value not in before:
        _hold(value)
    for gone in before:
        if gone not in kept:
            _release(gone)


def forget_secrets(key: str) -> None:
    """The values registered under ``key`` are masked no longer (the account left this
    process), unless something else holds them."""
    for value in _held.pop(key, ()):
        _release(value)


def _hold(value: str) -> None:
    _holds[value] = _holds.get(value, 0) + 1
    if _holds[value] == 1:
        prefix = value[:MIN_SECRET_CHARS]
        group = [*_by_prefix.get(prefix, []), value]
        _by_prefix[prefix] = sorted(group, key=len, reverse=True)


def _release(value: str) -> None:
    _holds[value] -= 1
    if _holds[value]:
        return
    del _holds[value]
    prefix = value[:MIN_SECRET_CHARS]
    group = [s for s in _by_prefix.get(prefix, []) if s != value]
    if group:
        _by_prefix[prefix] = group
    else:
        _by_prefix.pop(prefix, None)


def redact(text: str) -> str:
    """``text`` with every registered secret in it masked, overlapping ones as one.

    One dictionary lookup per position of ``text``, whatever the number of secrets: a
    fetcher registers every account's password, and a loop over all of them cost each
    log line 2-3 ms at 10,000 accounts. When Dovecot restarted, the 10,000 lines saying
    so held the event loop for 23 s, its heartbeats with it, and the broker dropped the
    replica (bench/RESULTS.md, Scale)."""
    k = MIN_SECRET_CHARS
    if not _by_prefix or len(text) < k:
        return text
    get, starts = _by_prefix.get, text.startswith
    out: list[str] = []
    done = 0  # text before this is in out
    begin = end = -1  # the masked span being built
    for i in range(len(text) - k + 1):
        group = get(text[i : i + k])
        if group is None:
            continue
        found = next((s for s in group if starts(s, i)), None)
        if found is None:
            continue
        if i > end:  # a new span: the one before is complete
            if end >= 0:
                out += (text[done:begin], MASK)
                done = end
            begin = i
        end = max(end, i + len(found))
    if end < 0:
        return text
    out += (text[done:begin], MASK, text[end:])
    return "".join(out)


@contextlib.contextmanager
def log_context(*, account_id: str | None = None, request_id: str | None = None) -> Iterator[None]:
    """Within this block, this task's log lines carry ``account_id`` and ``request_id``."""
    tokens = [account_id_var.set(account_id), request_id_var.set(request_id)]
    try:
        yield
    finally:
        request_id_var.reset(tokens[1])
        account_id_var.reset(tokens[0])


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "account_id": account_id_var.get(),
            "request_id": request_id_var.get(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return redact(json.dumps(out, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """The human format of ``mailsync run``, with the account when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        account = account_id_var.get()
        request = request_id_var.get()
        if account or request:
            ids = " ".join(f"{k}={v}" for k, v in (("account", account), ("request", request)) if v)
            text = f"{text} [{ids}]"
        return redact(text)


class RetriedLookupAsWarning(logging.Filter):
    """aiokafka logs a group coordinator lookup that failed at ERROR, then, if the error
    is retriable, looks again: a fresh broker refuses them until it has created
    ``__consumer_offsets``, so every first start printed an ERROR for nothing. A
    retriable one is logged as WARNING here (still logged: readiness says whether the
    group ever comes up); any other stays an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno == logging.ERROR and any(getattr(a, "retriable", False) for a in args):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def setup_logging(level: str, fmt: LogFormat = "json") -> None:
    """Route every logger to stderr in ``fmt``; call once, at the entry point."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries: their INFO lines are per-rebalance noise at our INFO level.
    for noisy in ("aiokafka", "faust", "mode", "aioimaplib", "pymongo", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    if not any(isinstance(f, RetriedLookupAsWarning) for f in coordinator.filters):
        coordinator.addFilter(RetriedLookupAsWarning())
