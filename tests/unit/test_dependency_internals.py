"""The private internals of aioimaplib, faust and aiokafka that mailsync overrides or calls.

pyproject.toml caps these three at the minor version tested; within it, a patch release
may still move what we lean on. Each check names the mailsync code that depends on it.
When one fails after a version bump: read the library's new code against ours, port
what changed, then update the check (for the copied functions, the digest below).

- services/imap/protocol.py subclasses aioimaplib's ``IMAP4ClientProtocol``
  (``_handle_responses`` and ``data_received`` rewritten as a loop, ``_continuation``,
  ``connection_lost``), its ``FetchCommand`` (``wait_data``, ``append_to_resp``,
  ``_reset_timer``, ``_timeout_callback``) and ``IMAP4.create_client``.
- services/dedup/transport.py overrides faust's aiokafka driver: the consumer thread's
  ``_create_worker_consumer``, the consumer's ``_new_consumer_thread``, the producer's
  ``_settings_extra``, the consumer's ``wait_empty`` (bounded; it calls
  ``_unacked_messages``, ``_wait_for_ack``, ``_clean_unacked_messages``); and sets
  aiokafka's ``AIOKafkaConsumer._fetch_max_wait_ms`` and ``_fetch_min_bytes``, and wraps
  the producer accumulator's ``drain_by_nodes`` (calling ``_pop_batch``).
- services/common/kafka.py::partitions_of calls ``AIOKafkaConsumer._client.add_topic``.
- services/imap/tls_buffer.py replaces the read buffer of asyncio's ``SSLProtocol``
  (the standard library's, so pinned to what CPython 3.11-3.13 do), and
  services/imap/protocol.py relies on its reads into a ``BufferedProtocol``.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aioimaplib
import aiokafka
import faust.transport.base
import faust.transport.consumer
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.dedup.transport import Transport
from services.imap.protocol import FastIMAP4, _FetchCommand, _Protocol

IMAP_OURS = "services/imap/protocol.py"
# aiokafka's accumulator, as services/dedup/transport.py::_drain_whole_node relies on it.
ACCUMULATOR_USED = {"drain_by_nodes": "cc2f3eafe1e19ba6", "_pop_batch": "6dc3d1b621452ef1"}
DEDUP_OURS = "services/dedup/transport.py"


def _params(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _source(obj: Any) -> str:
    return textwrap.dedent(inspect.getsource(obj))


def _digest(obj: Any) -> str:
    return hashlib.sha256(_source(obj).encode()).hexdigest()[:16]


def _changed(distribution: str, what: str, ours: str) -> str:
    return (
        f"{distribution} {version(distribution)}: {what} changed, and {ours} depends on it. "
        f"Read the new code against ours, port the change, then update "
        f"tests/unit/test_dependency_internals.py (and the cap in pyproject.toml)."
    )


# -- aioimaplib ------------------------------------------------------------------------

# Functions services/imap/protocol.py copies step for step or replaces: the first 16 hex digits
# of the SHA-256 of their source (dedented) in aioimaplib 2.0.3.
AIOIMAPLIB_COPIED = {
    "IMAP4ClientProtocol._handle_responses": "20353e50c5e287a1",
    "IMAP4ClientProtocol.data_received": "ea8f533e2061ccee",
    "IMAP4ClientProtocol.connection_lost": "5fd6eef06132d978",
    "IMAP4ClientProtocol._continuation": "b861e3e1c5efc1bf",
    "IMAP4.create_client": "2fdf89302d4baa4c",
    "FetchCommand.wait_data": "ba356acdaf2920c3",
    "Command._reset_timer": "dd278c5d5e39202b",
    "Command._timeout_callback": "395730189c2653cb",
    "Command._set_timer": "e3f8ccf068270915",
}

AIOIMAPLIB_SIGNATURES = {
    "IMAP4ClientProtocol.__init__": ["self", "loop", "conn_lost_cb"],
    "IMAP4ClientProtocol._handle_responses": ["self", "data", "line_handler", "current_cmd"],
    "IMAP4ClientProtocol._handle_line": ["self", "line", "current_cmd"],
    "IMAP4ClientProtocol._continuation": ["self", "line"],
    "IMAP4ClientProtocol.connection_lost": ["self", "exc"],
    "IMAP4ClientProtocol.data_received": ["self", "d"],
    "IMAP4ClientProtocol.execute": ["self", "command", "scrub"],
    "IMAP4ClientProtocol.send": ["self", "line", "scrub"],
    "IMAP4ClientProtocol._response_done": ["self", "line"],
    "IMAP4ClientProtocol.new_tag": ["self"],
    "IMAP4ClientProtocol.fetch": ["self", "message_set", "message_parts", "by_uid", "timeout"],
    "IMAP4.create_client": ["self", "host", "port", "loop", "conn_lost_cb", "ssl_context"],
    "Command.__init__": [
        "self",
        "name",
        "tag",
        "args",
        "prefix",
        "untagged_resp_name",
        "loop",
        "timeout",
    ],
    "FetchCommand.__init__": [
        "self",
        "tag",
        "args",
        "prefix",
        "untagged_resp_name",
        "loop",
        "timeout",
    ],
    "Command.append_to_resp": ["self", "line", "result"],
    "Command.append_literal_data": ["self", "data"],
    "Command.begin_literal_data": ["self", "expected_size", "literal_data"],
    "Command.wait_literal_data": ["self"],
    "Command.flush": ["self"],
    "FetchCommand.wait_data": ["self"],
    "IncompleteRead.__init__": ["self", "cmd", "data"],
}


def _aioimaplib(path: str) -> Any:
    obj: Any = aioimaplib
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("path", sorted(AIOIMAPLIB_SIGNATURES))
def test_aioimaplib_signatures_we_override_or_call(path: str) -> None:
    assert _params(_aioimaplib(path)) == AIOIMAPLIB_SIGNATURES[path], _changed(
        "aioimaplib", f"the signature of {path}", IMAP_OURS
    )


@pytest.mark.parametrize("path", sorted(AIOIMAPLIB_COPIED))
def test_aioimaplib_code_we_copied_is_unchanged(path: str) -> None:
    assert _digest(_aioimaplib(path)) == AIOIMAPLIB_COPIED[path], _changed(
        "aioimaplib", f"the code of {path}", IMAP_OURS
    )


def test_aioimaplib_calls_the_methods_we_override_where_we_expect() -> None:
    command = _source(aioimaplib.Command)
    # Our FetchCommand keeps one timer and only records the time per chunk.
    assert "self._reset_timer()" in _source(aioimaplib.Command.append_literal_data), _changed(
        "aioimaplib", "Command.append_literal_data (re-arms the timer)", IMAP_OURS
    )
    assert "self._reset_timer()" in _source(aioimaplib.Command.append_to_resp), _changed(
        "aioimaplib", "Command.append_to_resp (re-arms the timer)", IMAP_OURS
    )
    assert "self._timeout_callback" in _source(aioimaplib.Command._set_timer), _changed(
        "aioimaplib", "Command._set_timer (schedules _timeout_callback)", IMAP_OURS
    )
    assert "self._event.wait()" in command and "raise self._exception" in command, _changed(
        "aioimaplib", "Command.wait (ends on _event, raises _exception)", IMAP_OURS
    )
    # A deferred command goes out with the next one (send), and is answered through
    # _response_done before that one's tagged response is matched.
    assert "self.send(str(command)" in _source(aioimaplib.IMAP4ClientProtocol.execute), _changed(
        "aioimaplib", "IMAP4ClientProtocol.execute (writes through send)", IMAP_OURS
    )
    assert "self._response_done(line)" in _source(aioimaplib.IMAP4ClientProtocol._handle_line), (
        _changed("aioimaplib", "IMAP4ClientProtocol._handle_line (tagged lines)", IMAP_OURS)
    )
    # AUTHENTICATE's challenges reach _continuation; every chunk goes through data_received.
    assert "self._continuation(line)" in _source(aioimaplib.IMAP4ClientProtocol._handle_line), (
        _changed("aioimaplib", "IMAP4ClientProtocol._handle_line", IMAP_OURS)
    )
    literal = aioimaplib.literal_data_re.match(b"* 1 FETCH (BODY[] {12}")
    assert literal is not None and literal.group("size") == b"12", _changed(
        "aioimaplib", "literal_data_re", IMAP_OURS
    )
    for name in ("STOP_WAIT_SERVER_PUSH", "AUTH", "SELECTED", "change_state", "Abort"):
        assert hasattr(aioimaplib, name), _changed("aioimaplib", f"aioimaplib.{name}", IMAP_OURS)


async def test_aioimaplib_instances_have_the_attributes_we_use() -> None:
    fetch = _FetchCommand("A1", "1:*", "(UID)", prefix="UID", timeout=5)
    for name in ("_loop", "_timeout", "_timer", "_event", "_exception", "_expected_size"):
        assert hasattr(fetch, name), _changed("aioimaplib", f"Command.{name}", IMAP_OURS)
    assert hasattr(fetch, "_resp_literal_data") and hasattr(fetch, "FETCH_MESSAGE_DATA_RE")
    fetch._timer.cancel()
    protocol = _Protocol(None)
    for name in (
        "incomplete_line",
        "current_command",
        "pending_sync_command",
        "pending_async_commands",
        "capabilities",
        "state",
        "transport",
        "loop",
    ):
        assert hasattr(protocol, name), _changed(
            "aioimaplib", f"IMAP4ClientProtocol.{name}", IMAP_OURS
        )
    idle = aioimaplib.IdleCommand("A2", aioimaplib.asyncio.Queue())
    assert hasattr(idle, "queue"), _changed("aioimaplib", "IdleCommand.queue", IMAP_OURS)
    assert issubclass(FastIMAP4, aioimaplib.IMAP4)


# -- faust-streaming and aiokafka ------------------------------------------------------

# As above, in faust-streaming 0.15.3.
FAUST_COPIED = {
    # _Consumer._new_consumer_thread builds our thread with the same arguments.
    "Consumer._new_consumer_thread": "8fd0d41b15145615",
    # _Producer._settings_extra returns what faust returns inside a transaction.
    "Producer._settings_extra": "2b12df47f0a51029",
    # _Consumer.wait_empty is faust's loop with a deadline.
    "Consumer.wait_empty": "53195dca246c0a86",
}


@pytest.mark.parametrize("name", sorted(FAUST_COPIED))
def test_faust_code_we_replaced_is_unchanged(name: str) -> None:
    cls, method = name.split(".")
    assert _digest(getattr(getattr(faust_aiokafka, cls), method)) == FAUST_COPIED[name], _changed(
        "faust-streaming", f"faust's aiokafka driver {name}", DEDUP_OURS
    )


def test_faust_calls_the_factories_we_override() -> None:
    thread = faust_aiokafka.AIOKafkaConsumerThread
    assert _params(thread._create_worker_consumer) == ["self", "transport"]
    assert "self._create_worker_consumer(transport)" in _source(thread), _changed(
        "faust-streaming", "AIOKafkaConsumerThread._create_consumer", DEDUP_OURS
    )
    assert _params(thread.__init__) == ["self", "consumer", "kwargs"]
    assert "self._thread = self._new_consumer_thread()" in _source(
        faust.transport.consumer.ThreadDelegateConsumer
    ), _changed("faust-streaming", "ThreadDelegateConsumer", DEDUP_OURS)
    assert "**self._settings_extra()" in _source(faust_aiokafka.Producer), _changed(
        "faust-streaming", "Producer._new_producer", DEDUP_OURS
    )
    base = _source(faust.transport.base.Transport)
    assert "self.Consumer(" in base and "self.Producer(" in base, _changed(
        "faust-streaming", "Transport.create_consumer/create_producer", DEDUP_OURS
    )
    assert Transport.Consumer.__mro__[1] is faust_aiokafka.Consumer
    waiting = _source(faust.transport.consumer.Consumer)
    for used in ("self._unacked_messages", "async def _wait_for_ack(self, timeout: float)"):
        assert used in waiting, _changed("faust-streaming", used, DEDUP_OURS)
    assert "def _clean_unacked_messages(self)" in waiting, _changed(
        "faust-streaming", "Consumer._clean_unacked_messages", DEDUP_OURS
    )
    assert "await consumer.wait_empty()" in _source(faust.App), _changed(
        "faust-streaming", "App._consumer_wait_empty", DEDUP_OURS
    )
    assert Transport.Producer.__mro__[1] is faust_aiokafka.Producer


def test_faust_commit_bookkeeping_we_guard() -> None:
    # _Consumer._new_offset hides the acked offsets past the first event in flight from
    # faust's own, which must take its batch off the front of that very list (and the
    # head guard it has must still be the one faust-streaming #606 reports).
    consumer = faust.transport.consumer.Consumer
    new_offset = _source(consumer._new_offset)
    for used in ("acked = self._acked[tp]", "acked[: len(batch)] = []", "> 1:"):
        assert used in new_offset, _changed("faust-streaming", "Consumer._new_offset", DEDUP_OURS)
    # _Consumer.ack drops what no agent took in this generation, as faust's ack would.
    ack = _source(consumer.ack)
    assert "self._unacked_messages.discard(message)" in ack, _changed(
        "faust-streaming", "Consumer.ack", DEDUP_OURS
    )
    stream = _source(faust.streams.Stream._py_aiter)
    for used in (
        "message.tracked = True",
        "message.generation_id != self.app.consumer_generation_id",
    ):
        assert used in stream, _changed("faust-streaming", "Stream._py_aiter", DEDUP_OURS)


def test_faust_internals_the_dedup_app_replaces_or_calls() -> None:
    """services/dedup/faust_config.py: the table's writes, the output, the sensors, the
    raw schema."""
    import faust.serializers.schemas
    import faust.tables.base
    import faust.tables.table

    ours = "services/dedup/faust_config.py"
    # SightingsTable.on_key_set does what faust's does with neither expiring keys nor
    # sensors: one changelog record, to the key's partition, serialized with the table's
    # serializers; its acks go to _on_changelog_sent, which reads only .result().
    on_key_set = _source(faust.tables.table.Table.on_key_set)
    for used in (
        "self.send_changelog(self.partition_for_key(key), key, value)",
        "self._maybe_set_key_ttl(key, partition)",
        "self._sensor_on_set(self, key, value)",
    ):
        assert used in on_key_set, _changed("faust-streaming", "Table.on_key_set", ours)
    sent = _source(faust.tables.base.Collection._on_changelog_sent)
    assert sent.count("fut.") == 1 and "fut.result()" in sent, _changed(
        "faust-streaming", "Collection._on_changelog_sent", ours
    )
    # Output.send takes the aiokafka producer as faust's Producer.send does.
    assert "transaction_producer = self._ensure_producer()" in _source(
        faust_aiokafka.Producer.send
    ), _changed("faust-streaming", "Producer.send", ours)
    # _App removes the monitor that on_init_dependencies has just added.
    assert "self.sensors.add(self.monitor)" in _source(faust.App.on_init_dependencies), _changed(
        "faust-streaming", "App.on_init_dependencies", ours
    )
    # RawSchema's loads_key and loads_value are what decode calls for each event.
    compiled = _source(faust.serializers.schemas.Schema.compile)
    for used in ("schema_loads_key(app, message, loads=loads_key)", "schema_loads_value("):
        assert used in compiled, _changed("faust-streaming", "Schema.compile", ours)


def test_faust_stream_iteration_the_dedup_stream_replaces() -> None:
    """services/dedup/stream.py: EventStream inlines faust's stream iterator for a noack
    stream; what it does per event and around the iteration must still be faust's."""
    import faust._cython.streams  # the extension's source ships beside it
    import faust.streams

    ours = "services/dedup/stream.py"
    aiter = _source(faust.streams.Stream.__aiter__)
    assert "self._active_agens.add(" in aiter, _changed("faust-streaming", "Stream.__aiter__", ours)
    c_aiter = _source(faust.streams.Stream._c_aiter)
    for used in (
        "started_by_aiter = await self.maybe_start()",
        "event, self.current_event = self.current_event, None",
        "except StopAsyncIteration:",
        "self._channel_stop_iteration(self.channel)",
        "self.service_reset()",
    ):
        assert used in c_aiter, _changed("faust-streaming", "Stream._c_aiter", ours)
    pyx = Path(faust._cython.streams.__file__).with_name("streams.pyx").read_text()
    for used in (
        "self.acking_topics = stream.app.topics._acking_topics",
        "self.unacked = self.consumer._unacked_messages",
        "not self.app.flow_control.is_active()",
        "or message.generation_id != self.app.consumer_generation_id",
        "if topic in self.acking_topics and not message.tracked:",
        "self.on_message_in(tp, offset, message)",
        "stream_state = self.on_stream_event_in(",
        "self.stream._set_current_event(event)",
        "if do_ack and event is not None:",
        "self.on_stream_event_out(",
        "for processor in self.processors:",
        "value = await self.on_merge(value)",
    ):
        assert used in pyx, _changed(
            "faust-streaming", "StreamIterator (_cython/streams.pyx)", ours
        )


def test_aiokafka_internals_we_set_or_call() -> None:
    consumer = aiokafka.AIOKafkaConsumer
    # transport.py sets _fetch_max_wait_ms after construction; start() must read it.
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in _source(consumer.start), _changed(
        "aiokafka", "AIOKafkaConsumer.start (reads _fetch_max_wait_ms)", DEDUP_OURS
    )
    assert "fetch_min_bytes=self._fetch_min_bytes" in _source(consumer.start), _changed(
        "aiokafka", "AIOKafkaConsumer.start (reads _fetch_min_bytes)", DEDUP_OURS
    )
    # transport.py's _drain_whole_node wraps the accumulator's drain_by_nodes and pops
    # batches with _pop_batch, which gives an idempotent batch its sequence number.
    from aiokafka.producer.message_accumulator import MessageAccumulator

    for method, digest in ACCUMULATOR_USED.items():
        assert _digest(getattr(MessageAccumulator, method)) == digest, _changed(
            "aiokafka", f"MessageAccumulator.{method}", DEDUP_OURS
        )
    assert "self._client = AIOKafkaClient(" in _source(consumer.__init__), _changed(
        "aiokafka", "AIOKafkaConsumer._client", "services/common/kafka.py::partitions_of"
    )
    add_topic = aiokafka.AIOKafkaClient.add_topic
    assert _params(add_topic) == ["self", "topic"], _changed(
        "aiokafka", "AIOKafkaClient.add_topic", "services/common/kafka.py::partitions_of"
    )
    body = _source(add_topic)
    assert "self._topics.add(topic)" in body and "return res" in body, _changed(
        "aiokafka", "AIOKafkaClient.add_topic (tracks and returns a future)", "partitions_of"
    )


def test_the_failure_message_says_what_to_do() -> None:
    message = _changed("aioimaplib", "the code of X", IMAP_OURS)
    assert message.startswith(f"aioimaplib {version('aioimaplib')}: the code of X changed")
    assert IMAP_OURS in message and "pyproject.toml" in message


def test_aiokafka_group_internals_the_fetchers_membership_relies_on() -> None:
    """services/fetcher/membership.py and assigned_accounts.py: the sticky assignor, the guard."""
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance, GroupCoordinator
    from aiokafka.protocol.group import JoinGroupRequest

    ours = "services/fetcher/membership.py"
    coordinator = GroupCoordinator
    # SessionGuard wraps _send_req: every Heartbeat, JoinGroup and SyncGroup goes through it.
    assert _params(coordinator._send_req) == ["self", "request"], _changed(
        "aiokafka", "GroupCoordinator._send_req", ours
    )
    assert "await self._send_req(request)" in _source(coordinator._do_heartbeat), _changed(
        "aiokafka", "GroupCoordinator._do_heartbeat", ours
    )
    join = _source(CoordinatorGroupRebalance.perform_group_join)
    assert "self._coordinator._send_req(request)" in join, _changed(
        "aiokafka", "CoordinatorGroupRebalance.perform_group_join (sends JoinGroup)", ours
    )
    # The assignor is used as the instance we pass: metadata() at each JoinGroup.
    assert "assignor.metadata(topics)" in join, _changed(
        "aiokafka", "perform_group_join (asks each assignor for its metadata)", ours
    )
    # join_once: the protocols a JoinGroup carries, the assignors configured, and an
    # answer read for its error code only, unless it is the last one.
    assert "self._group_protocols = group_protocols" in _source(JoinGroupRequest.__init__)
    assert "self._assignors = assignors" in _source(coordinator.__init__), _changed(
        "aiokafka", "GroupCoordinator._assignors", ours
    )
    assert "error_type = Errors.for_code(response.error_code)" in join, _changed(
        "aiokafka", "perform_group_join (reads each JoinGroup answer's error)", ours
    )
    sync = _source(CoordinatorGroupRebalance._send_sync_group_request)
    assert "self._coordinator._send_req(request)" in sync, _changed(
        "aiokafka", "CoordinatorGroupRebalance._send_sync_group_request", ours
    )
    # A rejoin requested in on_partitions_assigned is not lost: the future it sets is
    # made anew before SyncGroup, and checked by the coordination loop afterwards.
    assert sync.index("_rejoin_needed_fut = create_future()") < sync.index("_send_req("), _changed(
        "aiokafka", "_send_sync_group_request (resets the rejoin future)", ours
    )
    assert "self._rejoin_needed_fut.set_result(None)" in _source(coordinator.request_rejoin)
    assert "self._rejoin_needed_fut.done()" in _source(coordinator.need_rejoin), _changed(
        "aiokafka", "GroupCoordinator.need_rejoin", ours
    )
    # on_assignment (the generation was ours, and what it held back) before the listener.
    complete = _source(coordinator._on_join_complete)
    assert complete.index("assignor.on_assignment(assignment)") < complete.index(
        "listener.on_partitions_assigned"
    ), _changed(
        "aiokafka", "GroupCoordinator._on_join_complete", "services/fetcher/assigned_accounts.py"
    )
    # on_partitions_revoked runs before every JoinGroup, the first one included (where the
    # guard starts watching the coordinator, created by AIOKafkaConsumer.start).
    active = _source(coordinator.ensure_active_group)
    assert active.index("self._on_join_prepare(") < active.index("self._do_rejoin_group("), (
        _changed("aiokafka", "GroupCoordinator.ensure_active_group", ours)
    )
    assert "self._coordinator = GroupCoordinator(" in _source(aiokafka.AIOKafkaConsumer.start)


def test_asyncio_tls_read_buffer_as_tls_buffer_shrinks_it() -> None:
    """services/imap/tls_buffer.py replaces ``SSLProtocol``'s read buffer (``max_size``,
    ``_ssl_buffer``, ``_ssl_buffer_view``): get_buffer must still size it by the
    instance's ``max_size`` and hand out the view that buffer_updated reads back."""
    import asyncio.sslproto
    import sys

    ours = "services/imap/tls_buffer.py"
    proto = asyncio.sslproto.SSLProtocol
    what = f"Python {sys.version.split()[0]}: asyncio.sslproto.SSLProtocol.%s changed, and {ours}"
    assert "self._ssl_buffer = bytearray(self.max_size)" in _source(proto.__init__), what % "init"
    get = _source(proto.get_buffer)
    assert "self.max_size" in get and "return self._ssl_buffer_view" in get, what % "get_buffer"
    assert "self._ssl_buffer_view[:nbytes]" in _source(proto.buffer_updated), what % (
        "buffer_updated"
    )


def test_asyncio_tls_decrypts_into_a_buffered_protocols_buffer_in_one_call() -> None:
    """services/imap/protocol.py's ``_Protocol`` is a ``BufferedProtocol`` whose buffer is
    one per thread: asyncio's TLS layer must still take it for one in ``_set_app_protocol``
    and, in ``_do_read__buffered``, ask for the buffer, decrypt into it and hand it back
    with nothing in between that could run another connection's read."""
    import asyncio.sslproto
    import sys

    ours = "services/imap/protocol.py"
    proto = asyncio.sslproto.SSLProtocol
    what = f"Python {sys.version.split()[0]}: asyncio.sslproto.SSLProtocol.%s changed, and {ours}"
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(_Protocol(loop, None), asyncio.BufferedProtocol)
    finally:
        loop.close()
    assert "protocols.BufferedProtocol" in _source(proto._set_app_protocol), what % (
        "_set_app_protocol"
    )
    read = _source(getattr(proto, "_do_read__buffered"))  # noqa: B009 (private, untyped)
    assert "await" not in read and "self._app_protocol_get_buffer(" in read, what % (
        "_do_read__buffered"
    )
    assert "self._sslobj.read(wants, buf)" in read, what % "_do_read__buffered"


def test_aiokafka_still_sends_a_join_group_per_assignor() -> None:
    """services/fetcher/membership.py::join_once works around aio-libs/aiokafka#1168:
    once aiokafka builds one JoinGroup after its loop over the assignors, join_once has
    nothing left to hold back and can go."""
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance

    lines = _source(CoordinatorGroupRebalance.perform_group_join).splitlines()
    loop = next(line for line in lines if "for assignor in self._assignors:" in line)
    build = next(line for line in lines if "request = JoinGroupRequest(" in line)
    indent = len(build) - len(build.lstrip())
    assert indent > len(loop) - len(loop.lstrip()), (
        f"aiokafka {version('aiokafka')} sends one JoinGroup per join now: remove join_once "
        "from services/fetcher/membership.py and its use in assigned_accounts.py"
    )
