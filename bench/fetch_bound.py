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

How close one process can come is measured too (``one_process_s``): the fetcher's own
IMAP client and ``Publisher`` in one process, glued by nothing else, each message handed
to the producer as its FETCH response arrives (``ImapSession.uid_fetch_each``), each
batch's acknowledgements awaited with at most two batches outstanding, as the fetcher
does; no cursor, no account state, no scheduling. It is timed from the first message
handed to the producer to the last acknowledgement, after login, EXAMINE and SEARCH,
as the fetcher alone is for its transfer figure (``FetchRun.transfer_s``). What the
fetcher takes beyond it is the service's own cost; what this takes beyond the two
processes is the price of one thread on this machine.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from bench._harness import (
    ACCOUNT_ID,
    BASELINE_BATCH,
    FOLDER,
    UIDVALIDITY,
    Corpus,
    imaplib_baseline,
    prefill,
    quiesce,
)
from devservers import DovecotServer, MailUser
from schemas.account import Endpoint, Security
from schemas.common import FolderRole
from schemas.topics import RAW_MESSAGES
from services.common.blobs import BlobStore
from services.common.kafka import ensure_topics, producer
from services.common.mongo import database, mongo_client
from services.common.process import configure_runtime
from services.common.settings import CommonSettings
from services.fetcher.ordered_fetch import SPAN_UIDS
from services.fetcher.publish import Publisher
from services.fetcher.settings import FetcherSettings
from services.imap import FetchedMessage, ImapSession

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
    one_process_s: float = 0.0  # both legs in one process (the module's docstring)
    one_process_cpu_s: float = 0.0  # the CPU that process used over those seconds
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


def _one_process_leg(
    overrides: dict[str, Any], dovecot: DovecotServer, user: MailUser, done: Queue[Any]
) -> None:
    done.put(asyncio.run(_one_process(FetcherSettings(**overrides), dovecot, user)))


async def _one_process(
    settings: FetcherSettings, dovecot: DovecotServer, user: MailUser
) -> tuple[float, float]:
    """Seconds from the first message handed to the producer to the last acknowledgement,
    and the CPU seconds the process used meanwhile."""
    assert dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(dovecot.cert.cert))
    endpoint = Endpoint(
        host="127.0.0.1", port=dovecot.imaps_port, security=Security.TLS, username=user.address
    )
    mongo = mongo_client(settings, app_name="bench-one-process")
    prod = producer(settings, client_id="bench-one-process")
    await prod.start()
    try:
        publisher = Publisher(
            prod,
            settings.topic(RAW_MESSAGES),
            BlobStore(database(mongo, settings)),
            settings.inline_limit_bytes,
        )
        async with ImapSession(endpoint, user.password, ssl_context=tls) as imap:
            (inbox,) = [f for f in await imap.list_folders() if f.name == "INBOX"]
            await imap.examine(inbox)
            uids = await imap.uid_search("ALL")
            arrived: deque[FetchedMessage] = deque()
            more = asyncio.Event()

            def take(message: FetchedMessage) -> None:
                arrived.append(message)
                more.set()

            async def fetch() -> None:
                for i in range(0, len(uids), SPAN_UIDS):
                    await imap.uid_fetch_each(uids[i : i + SPAN_UIDS], take)

            records = await publisher.records(
                ACCOUNT_ID, FOLDER, FolderRole.INBOX, UIDVALIDITY, len(uids)
            )
            fetching = asyncio.create_task(fetch())
            began = cpu = 0.0
            count, acks = 0, []
            while arrived or not fetching.done():
                if not arrived:
                    more.clear()
                    waiting = asyncio.create_task(more.wait())
                    await asyncio.wait([fetching, waiting], return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                    continue
                if not began:
                    began, cpu = time.perf_counter(), time.process_time()
                await records.add(arrived.popleft())
                count += 1
                if count == settings.fetcher_batch_size or not arrived:
                    await records.flush()  # as the fetcher: full, or nothing at hand
                if count == settings.fetcher_batch_size:
                    sent = records.take_sent()
                    acks.append(
                        asyncio.create_task(publisher.acknowledged(ACCOUNT_ID, FOLDER, sent, count))
                    )
                    count = 0
                    if len(acks) > 1:
                        await acks.pop(0)
            await fetching  # raises what the FETCH raised
            await records.flush()
            sent = records.take_sent()
            acks.append(
                asyncio.create_task(publisher.acknowledged(ACCOUNT_ID, FOLDER, sent, count))
            )
            await asyncio.gather(*acks)
            return time.perf_counter() - began, time.process_time() - cpu
    finally:
        await prod.stop()
        await mongo.close()


def measure(
    dovecot: DovecotServer, user: MailUser, overrides: dict[str, Any], corpus: Corpus
) -> Bound:
    """``overrides`` as the pipeline's; each run publishes to topics of its own."""
    # This process and the legs forked from it with malloc (and the collector) as a
    # service's process sets them: the Kafka leg moves the fetcher's buffers.
    configure_runtime()
    out = Bound()
    alone = dict(overrides, topic_prefix="bench-bound-alone.")
    both = dict(overrides, topic_prefix="bench-bound.")
    for o in (alone, both):
        asyncio.run(ensure_topics(CommonSettings(**o), [RAW_MESSAGES]))
    quiesce()
    out.kafka_alone_s = asyncio.run(prefill(alone, corpus)).seconds
    quiesce()
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
    one = dict(overrides, topic_prefix="bench-bound-one.")
    asyncio.run(ensure_topics(CommonSettings(**one), [RAW_MESSAGES]))
    quiesce()
    result: Queue[Any] = _FORK.Queue()
    leg = _FORK.Process(target=_one_process_leg, args=(one, dovecot, user, result))
    leg.start()
    try:
        out.one_process_s, out.one_process_cpu_s = result.get(timeout=LEG_TIMEOUT_S)
    except Exception as exc:
        out.error = f"one process: {type(exc).__name__}: {exc}"
    finally:
        leg.join(30)
        if leg.is_alive():
            leg.kill()
    return out
