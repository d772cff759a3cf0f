"""faust's aiokafka transport: idempotent producers, a shorter fetch wait, and the same
connection settings (TLS, SASL) as every other mailsync client.

faust enables idempotence only inside transactions; mailsync's producers are all
idempotent with ``acks=all`` (:mod:`services.common.kafka`), so faust's are too.

faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. A Fetch request
that finds no new data is held by the broker for up to the whole wait, even when records arrive
meanwhile, and aiokafka sends the next Fetch to a broker only when the previous one
has returned. faust reads both of dedup's topics through one consumer, so when a
Fetch happened to ask only for by-fingerprint partitions that the ``tag`` agent had
not yet written to, raw-messages waited too: stalls of 1.4 s, several per 2,000
messages (bench/dedup.py). A short wait costs an empty Fetch per wait when idle.

aiokafka's ``fetch_min_bytes`` is 1: the broker answers a Fetch as soon as any partition
has a record. dedup reads back what its ``tag`` agent writes a record at a time, so each
Fetch brought one or two by-fingerprint records: 1,600 Fetch requests for 2,000 messages
(cProfile), each a round of Python work in the worker and in the broker, and events
reached the agents one by one. ``FETCH_MIN_BYTES`` (1 MiB, about 30 average messages)
lets the broker gather them for up to ``dedup_fetch_max_wait_ms``; a message arriving
alone waits that long at most, per stage.

aiokafka's producer sends a partition's batch once it has lingered ``linger_ms``, and
with idempotence one request at a time per broker; every partition's batch starts its
own linger, so dedup's output (eight by-fingerprint, eight tagged-messages and the
changelog's partitions, written a record at a time) left in a request every few
milliseconds with one or two records per batch: 600-1,000 produce requests for 2,000
messages where the relay bound (``bench/dedup_bound.py``) makes 30. Once a batch is due,
:func:`_drain_whole_node` sends every batch waiting for the same broker with it.

faust runs its consumer in a thread with an event loop of its own: each fetch, commit
and seek crosses from the app's loop to the thread's through a method queue and back,
and the two threads take turns at the GIL. dedup's process runs nothing else, so
:class:`_ConsumerThread` runs it on the app's own loop.

faust's consumer hands each fetched message to its agents' queues with
``wait_first(deliver(message), suspend_flow.wait())``: mode runs both, plus a wait for the
service's stop and one for its crash, as four tasks, and cancels three: for 2,000
messages 8,000 calls, 19,000 tasks and 100,000 event-loop callbacks in all (cProfile; the
relay bound needs 9,000). Delivery waits only for an agent's full queue or for a flow
that a rebalance suspended, so ``_Consumer.wait_first`` awaits it directly while the
flow runs. The difference: a delivery already waiting when a rebalance starts is no
longer abandoned; it completes when the flow resumes, and the stream skips the event as
stale, as faust skips the events a rebalance catches in its streams.

faust's ``Consumer.wait_empty`` (run when the worker stops and when its partitions are
revoked) waits for every event handed to an agent to be acked, with no limit, and
swallows the cancellation of its wait, so no timeout around ``App.stop`` ends it. One
event that is never acked (an agent stopped mid-event, a send that never completes)
then holds a stopping worker forever, and holds a rebalance until the broker expels the
member: the other workers get no partitions meanwhile. mailsync's wait ends after
``dedup_wait_empty_timeout_s``: an event still unacked is not committed, so the next
owner of its partition reads it again (at least once; the verdicts do not depend on
arrival order, and the writer's documents are idempotent).

faust commits an offset when the events before it are acked, and three of its rules let
a commit pass an event that was never processed, so that a restart skips it for good
(seen losing 165 of 2,000 sightings when the broker restarted mid-sync):

- an event caught by a rebalance is skipped as stale by its stream, and the skip acks
  it. That ack lands in the new generation's bookkeeping, where, until the stream
  partitions are sought to their committed offsets, no committed offset guards the
  head, so the skipped events' offsets are committed and the seek then starts after
  them. :meth:`_Consumer.ack` counts only an event handed to an agent in the current
  generation; any other is read again from the committed offset.
- with the head event still in flight at the committed offset N and the next ones
  acked, faust's ``_new_offset`` allows a gap of one at the head (meant for an offset
  compaction removed) and commits past N (faust-streaming issue #606, fix proposed in
  PR #707, not released). Our agents ack out of order (an event is acked when its
  records are in the broker), so this is the normal case. :meth:`_Consumer._new_offset`
  never commits past the first event still in flight.
- when the next record delivered for a partition is not the one after the last, faust
  takes the offsets between as a gap (what compaction or transaction markers leave) and
  commits them as done. dedup's input topics have neither without transactions, and a
  broker restart led faust to deliver a partition's records 226-266 never, then 267:
  the gap was committed and those sightings were lost. Without transactions
  :meth:`_Consumer._add_gap` records no gap: the offsets stay uncommitted, and the
  partition is sought back to the first of them before the next fetch (a warning
  names them). With ``exactly_once`` the markers are real gaps, as faust says.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

import aiokafka
from faust.auth import OAuthCredentials, SASLCredentials
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.auth import CredentialsT
from faust.types.tuples import ack_lock
from mode.services import WaitResults

from services.common.kafka import client_options
from services.common.kafka_settings import KafkaSettings

log = logging.getLogger("mailsync.dedup")

FETCH_MIN_BYTES = 1024 * 1024  # see the module docstring


def faust_auth(settings: KafkaSettings) -> tuple[CredentialsT | None, ssl.SSLContext | None]:
    """faust's ``broker_credentials`` and ``ssl_context`` for mailsync's Kafka settings."""
    # The same options every aiokafka client gets: one TLS context, one token provider.
    options = client_options(settings)
    context: ssl.SSLContext | None = options.get("ssl_context")
    if not settings.kafka_sasl:
        return None, context
    if settings.kafka_sasl_mechanism == "OAUTHBEARER":
        return OAuthCredentials(
            oauth_cb=options["sasl_oauth_token_provider"], ssl_context=context
        ), context
    return SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    ), context


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer "thread", run as a task on the app's own event loop (see the
    module docstring): mode's ``ServiceThread`` with ``thread_loop`` the app's loop,
    started without a thread, and its calls into the thread made directly."""

    _serving: asyncio.Future[None] | None = None

    async def start(self) -> None:
        # ServiceThread.start, with the thread's body (_serve) as a task instead.
        assert not self._thread_started.is_set()
        self._thread_started.set()
        self._thread_running = self.parent_loop.create_future()
        self.add_future(self._keepalive2())
        self._serving = asyncio.ensure_future(self._serve())
        try:
            await self._thread_running  # _serve sets it once the consumer started
        finally:
            self._thread_running = None

    async def stop(self) -> None:
        await super().stop()
        if self._serving is not None:  # the rest of _serve's shutdown
            await asyncio.gather(self._serving, return_exceptions=True)

    async def _gather_remaining_tasks(self) -> None:
        # mode cancels every task left on the thread's loop: here the app's own tasks.
        return None

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        result = fun(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def cast_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        result = fun(*args, **kwargs)
        if inspect.isawaitable(result):
            self.add_future(result)

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads them when the consumer starts (its Fetcher is built in start());
        # faust offers no setting for them.
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        return consumer


def _waits_on(coro: Any, event: Any) -> bool:
    """``coro`` is ``event.wait()``, not yet started."""
    frame = getattr(coro, "cr_frame", None)
    return frame is not None and frame.f_locals.get("self") is event


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Partitions to seek back before the next fetch: (generation, first offset).
        self._rewind_to: dict[TP, tuple[int, int]] = {}

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """mode's ``wait_first``, without its tasks for the drain's call while the flow
        runs (see the module docstring)."""
        suspend = self.suspend_flow
        drain = len(coros) == 2 and timeout is None and _waits_on(coros[1], suspend)
        if drain and not suspend.is_set():
            deliver, suspended = coros
            suspended.close()
            return WaitResults([deliver], [await deliver], False)
        return await super().wait_first(*coros, timeout=timeout)

    def ack(self, message: Any) -> bool:
        """faust's ``ack``, counting only an event an agent took in this generation (see
        the module docstring): any other is not marked done, it is read again."""
        if not message.tracked or message.generation_id != self.app.consumer_generation_id:
            with ack_lock:
                message.acked = True
                self._unacked_messages.discard(message)
            return False
        return bool(super().ack(message))

    def _new_offset(self, tp: TP) -> int | None:
        """faust's ``_new_offset``, never past an event still in flight (faust #606).

        In flight in this generation: one of an earlier generation is read again from
        the committed offset, which this one's own copy then holds back.
        """
        generation = self.app.consumer_generation_id
        in_flight = min(
            (
                m.offset
                for m in self._unacked_messages
                if m.tp == tp and m.generation_id == generation
            ),
            default=None,
        )
        acked: list[int] = self._acked[tp]
        if in_flight is None or all(o < in_flight for o in acked):
            return super()._new_offset(tp)
        later = [o for o in acked if o >= in_flight]
        acked[:] = [o for o in acked if o < in_flight]
        try:
            # No gap faust fills reaches past the event in flight: a gap is offsets
            # with no record, and that event has one.
            return super()._new_offset(tp)
        finally:
            acked.extend(later)
            acked.sort()

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """A gap only where transactions leave markers (see the module docstring);
        otherwise the partition is read again from the first offset not delivered."""
        if self.in_transaction:
            await super()._add_gap(tp, offset_from, offset_to)
            return
        log.warning(
            "%s[%d]: offsets %d-%d were not delivered (a record after them was): not "
            "committed, read again from %d",
            tp.topic,
            tp.partition,
            offset_from,
            offset_to - 1,
            offset_from,
        )
        generation = self.app.consumer_generation_id
        _, earlier = self._rewind_to.get(tp, (generation, offset_from))
        self._rewind_to[tp] = (generation, min(earlier, offset_from))

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """faust's ``getmany``, first seeking back the partitions whose records were
        not all delivered (:meth:`_add_gap`). Between two batches, not inside one: the
        rest of the batch would move faust's read offset past the seek again."""
        rewinds, self._rewind_to = self._rewind_to, {}
        for tp, (generation, offset) in rewinds.items():
            # A rebalance since seeks every partition to its committed offset anyway.
            if generation == self.app.consumer_generation_id and tp in self.assignment():
                await self.seek(tp, offset)
        async for item in super().getmany(timeout):
            yield item

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, thread_loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        """faust's ``wait_empty`` with a deadline (see the module docstring)."""
        timeout = cast("Transport", self.transport).wait_empty_timeout_s
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.should_stop and self._unacked_messages:
            if asyncio.get_running_loop().time() >= deadline:
                left = sorted((m.topic, m.partition, m.offset) for m in self._unacked_messages)
                log.warning(
                    "%d event(s) still unacked after %.0fs, left for the partition's next "
                    "owner to read again: %s; agents:\n%s",
                    len(left),
                    timeout,
                    ", ".join(f"{t}[{p}]@{o}" for t, p, o in left),
                    self.app.agents.human_tracebacks(),
                )
                break
            await self.commit()
            if not self._unacked_messages:
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()


def _drain_whole_node(producer: aiokafka.AIOKafkaProducer) -> None:
    """Make ``producer`` send, with the first batch due for a broker, every batch then
    waiting for that broker (see the module docstring); aiokafka 0.14's accumulator."""
    accumulator = producer._message_accumulator
    cluster = producer.client.cluster
    due_only = accumulator.drain_by_nodes

    def drain_by_nodes(ignore_nodes: Any, muted_partitions: Any = frozenset()) -> Any:
        nodes, unknown_leaders = due_only(ignore_nodes, muted_partitions)
        if nodes:  # a request leaves anyway: the lingering batches of its broker go too
            for tp in list(accumulator._batches):
                leader = cluster.leader_for_partition(tp)
                if tp in muted_partitions or leader not in nodes or tp in nodes[leader]:
                    continue
                batch = accumulator._pop_batch(tp)
                if batch.is_empty():
                    batch.done_noack()
                else:
                    nodes[leader][tp] = batch
        return nodes, unknown_leaders

    accumulator.drain_by_nodes = drain_by_nodes


class _Producer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}

    def _new_producer(self, transactional_id: str | None = None) -> aiokafka.AIOKafkaProducer:
        producer = super()._new_producer(transactional_id)
        _drain_whole_node(producer)
        return producer


class Transport(faust_aiokafka.Transport):
    """faust's transport, given to ``app.transport``; ``fetch_max_wait_ms`` and
    ``wait_empty_timeout_s`` as the module docstring says."""

    Consumer = _Consumer
    Producer = _Producer

    def __init__(
        self, *args: Any, fetch_max_wait_ms: int, wait_empty_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.wait_empty_timeout_s = wait_empty_timeout_s
