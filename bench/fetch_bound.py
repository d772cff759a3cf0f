"""The fetch stage's best case on this machine: its two legs at once, in two processes.

Every message the fetcher imports crosses two legs: IMAP (Dovecot reads it and encrypts
it, the client decrypts and parses it) and Kafka (the producer builds and sends the
record, the Kafka broker stores it, acks=all). Both legs run on the same two cores. To see how
fast *any* fetcher could go here, with our producer, the two legs run side by side
with nothing in common:

- the IMAP leg is the stdlib ``imaplib`` baseline itself (``imaplib_baseline``), the
  fastest client we have, doing no Kafka work;
- the Kafka leg is the fetcher's own ``Publisher`` in the fetcher's batches, each sent
  while the one before is acknowledged (``bench._harness.prefill``), publishing the same
  messages, doing no IMAP work.

Each runs in its own process, started at the same moment (both log in first, then wait
on one event), so they overlap perfectly and neither pays for the other's Python. The
time until both have moved all N messages is the best case for the stage; the Kafka leg
is also timed alone, with nothing else running. A fetcher in one process does both
legs' client work on one event loop, so it can only come close to this figure.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from bench._harness import BASELINE_BATCH, Corpus, imaplib_baseline, prefill
from devservers import DovecotServer, MailUser
from schemas.topics import RAW_MESSAGES
from services.common.kafka import ensure_topics
from services.common.settings import CommonSettings

# The two legs are forked: the children share the corpus and the servers' addresses
# with the parent, and leave the servers alone (a forked child exits with os._exit).
_FORK = multiprocessing.get_context("fork")
LEG_TIMEOUT_S = 300.0


@dataclass
class Bound:
    kafka_alone_s: float = 0.0  # the Kafka leg with nothing else running
    imap_s: float = 0.0  # each leg's own time, both running
    kafka_s: float = 0.0
    together_s: float = 0.0  # from the first leg's start until both are done
    error: str | None = None


def _start_together(ready: Queue[Any], go: Event) -> Callable[[], None]:
    """Each leg's hook: say it is ready, then wait for the common start."""

    def wait() -> None:
        ready.put("ready")
        go.wait(LEG_TIMEOUT_S)

    return wait


def _imap_leg(dovecot: DovecotServer, user: MailUser, ready: Queue[Any], go: Event) -> None:
    b = imaplib_baseline(dovecot, user, BASELINE_BATCH, before_fetch=_start_together(ready, go))
    ready.put(("imap", b.fetch_began_at, b.fetch_began_at + b.fetch_s))


def _kafka_leg(overrides: dict[str, Any], corpus: Corpus, ready: Queue[Any], go: Event) -> None:
    p = asyncio.run(prefill(overrides, corpus, before=_start_together(ready, go)))
    ready.put(("kafka", p.began_at, p.began_at + p.seconds))


def measure(
    dovecot: DovecotServer, user: MailUser, overrides: dict[str, Any], corpus: Corpus
) -> Bound:
    """``overrides`` as the pipeline's; each run publishes to topics of its own."""
    out = Bound()
    alone = dict(overrides, topic_prefix="bench-bound-alone.")
    both = dict(overrides, topic_prefix="bench-bound.")
    for o in (alone, both):
        asyncio.run(ensure_topics(CommonSettings(**o), [RAW_MESSAGES]))
    out.kafka_alone_s = asyncio.run(prefill(alone, corpus)).seconds
    ready: Queue[Any] = _FORK.Queue()
    go = _FORK.Event()
    legs = [
        _FORK.Process(target=_imap_leg, args=(dovecot, user, ready, go)),
        _FORK.Process(target=_kafka_leg, args=(both, corpus, ready, go)),
    ]
    for leg in legs:
        leg.start()
    try:
        for _ in legs:
            if ready.get(timeout=LEG_TIMEOUT_S) != "ready":
                raise RuntimeError("a leg reported before it was ready")
        go.set()
        done = {
            name: (began, ended)
            for name, began, ended in (ready.get(timeout=LEG_TIMEOUT_S) for _ in legs)
        }
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    finally:
        go.set()
        deadline = time.monotonic() + 30
        for leg in legs:
            leg.join(max(0.0, deadline - time.monotonic()))
            if leg.is_alive():
                leg.kill()
    out.imap_s = done["imap"][1] - done["imap"][0]
    out.kafka_s = done["kafka"][1] - done["kafka"][0]
    out.together_s = max(e for _, e in done.values()) - min(b for b, _ in done.values())
    return out
