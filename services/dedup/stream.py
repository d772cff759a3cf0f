"""faust's stream, for dedup's agents: the events already queued are taken without a
trip around the event loop before each one.

faust's stream iterator (``Stream._c_aiter`` and its Cython ``StreamIterator``) awaits
``asyncio.sleep(0)`` before every event, then the channel's ``__anext__`` (four
coroutines down to asyncio's ``Queue.get``) even when the queue holds events already:
for 2,000 messages through both agents, 4,000 passes of the event loop (each an
``epoll`` call and a turn of every task ready) that the relay bound
(``bench/dedup_bound.py``), which works through a fetched batch in a plain loop, does
not pay. faust's consumer, which fills the queues, yields every 100 messages
(``Consumer._drain_messages``); this iterator takes what is queued with ``get_nowait``,
yields to the loop every :data:`YIELD_EVERY` events, and awaits the queue only when it
is empty.

Per event it does what faust's iterator does for a stream without processors, join or
automatic acks (the agents' ``stream.noack()``; any other stream iterates as faust's):
an event a rebalance caught (an older generation, or the flow suspended) is skipped,
not taken and not acked, so it is read again from the committed offset; an event of an
acking topic is tracked as unacked (what the commit waits for) before the agent sees it;
the current event is set while the agent holds it (the table's partition); the stream's
sensor calls are made as faust makes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import faust
from faust.types import ChannelT

YIELD_EVERY = 100  # events taken from the queue between two yields to the event loop


class EventStream(faust.Stream):  # type: ignore[type-arg]
    """faust's ``Stream`` (the app's ``Stream`` setting), iterated as the module docstring
    says when it can be."""

    def __aiter__(self) -> AsyncIterator[Any]:
        channel = self.channel
        if self.enable_acks or self._processors or self.join_strategy is not None:
            return super().__aiter__()
        if not isinstance(channel, ChannelT):
            return super().__aiter__()
        it = self._queued_first()
        # As faust's __aiter__: a stopping stream closes the iterators it handed out.
        self._active_agens.add(it)
        return it

    async def _queued_first(self) -> AsyncGenerator[Any, None]:
        """``Stream._c_aiter`` with ``StreamIterator.next``/``after`` inlined for a noack
        stream without processors or join (see the module docstring)."""
        self._finalized = True
        started_by_aiter = await self.maybe_start()
        app, channel = cast("Any", self.app), cast("Any", self.channel)
        queue = channel.queue
        flow_active = app.flow_control.is_active
        acking_topics = app.topics._acking_topics
        track = app.consumer._unacked_messages.add
        on_message_in = self._on_message_in
        on_event_in, on_event_out = self._on_stream_event_in, self._on_stream_event_out
        taken = 0
        try:
            while not self.should_stop:
                if queue.empty():
                    event = await channel.__anext__()  # a thrown error is raised here too
                    taken = 0
                elif taken >= YIELD_EVERY:
                    taken = 0
                    await asyncio.sleep(0)
                    continue
                else:
                    event = queue.get_nowait()
                taken += 1
                message = event.message
                if not flow_active() or message.generation_id != app.consumer_generation_id:
                    continue  # caught by a rebalance: read again from the committed offset
                tp, offset = message.tp, message.offset
                if message.topic in acking_topics and not message.tracked:
                    message.tracked = True
                    track(message)
                    on_message_in(tp, offset, message)
                state = on_event_in(tp, offset, self, event)
                self._set_current_event(event)
                self.events_total += 1
                try:
                    yield event.value
                finally:
                    self.current_event = None
                    on_event_out(tp, offset, self, event, state)
        except StopAsyncIteration:
            return  # the channel ended (faust throws it into the queue); as _c_aiter does
        finally:
            self._channel_stop_iteration(channel)
            if started_by_aiter:
                await self.stop()
                self.service_reset()
