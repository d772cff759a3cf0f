"""aioimaplib's protocol, with its per-response costs on the FETCH path removed.

Profiling the initial import showed aioimaplib spending its time not on the bytes but
on bookkeeping that grows with the response:

- ``FetchCommand.wait_data()`` re-scans every line received so far, after every line,
  to see whether the parentheses of the current ``FETCH`` balance: quadratic in the
  number of messages per ``UID FETCH``. Here the balance is kept as lines arrive.
- ``data_received()`` formats every received chunk into a debug string (``'%s' % d``)
  even when debug logging is off. Here it formats nothing.
- ``_handle_responses()`` recurses once per line and copies the rest of the chunk at
  each step: a chunk of a few hundred small FETCH responses (an initial import of
  small messages) exceeds Python's recursion limit, and copying is quadratic in the
  chunk. Here it is a loop over offsets.
- Literal bytes are sliced out of the chunk (a copy) before they are appended to the
  literal's buffer (a second copy). Here they are appended from a view of the chunk.
- The command timeout is re-armed (a new timer, the old one cancelled) for every chunk
  of every literal. Here a chunk only records the time, and the one timer, when it
  fires, re-arms itself if the command saw data since.
- A ``FETCH`` answer is handed over only once its tagged completion came, every message
  of it held until then. Here a ``FETCH`` may take a callback that is given each
  response as soon as it is complete (its parentheses balance after its literal), and
  keeps none of them: the caller can publish the first message of a batch while the
  server still sends the rest, and holds no batch twice. A caller that cannot keep up
  *holds* the connection: its data is no longer read, TCP holds the server back, and
  the held time does not count toward the command's timeout.
- Each line goes through aioimaplib's dispatch: a tagged-status match, a copy of the
  line without its ``* ``, a match and a command lookup by name, the timer, and a
  literal match, a dozen calls and six regular expressions a message; and its literal
  grows a bytearray read by read, copied once more to bytes by the parser. The
  responses of a streamed ``FETCH`` (:class:`_StreamedFetch`) skip all of it: the read
  loop hands the command each line and each literal's bytes, a literal whole in one
  read is one slice of it, and the command notes the time once a read. For the
  benchmark's import of 2,000 messages, the reader and the parser took 33 ms of CPU
  instead of 48 (the same bytes fed in the same reads, bench/RESULTS.md, round 9).

- Each TLS record was read into a bytes object of its own: asyncio's TLS layer, for a
  protocol that takes data as ``data_received``, asks OpenSSL for each record with a new
  buffer of its read size (256 KiB while an import reads, made and cut down for a record
  of 8-16 KiB), then joins them. Here the protocol is a ``BufferedProtocol``: the layer
  decrypts every record at hand into one buffer, and the protocol takes the bytes from it
  in one copy. 52 MB of 8 KiB records took 26 ms of CPU instead of 63 (an in-memory TLS
  pair, the same reads), and this client alone read the benchmark's 2,000 messages from
  Dovecot in 15% less time and 9% less CPU: what an import paid and imaplib, reading
  into its own buffer, did not (bench/RESULTS.md, "Issue #19, round 8"). The buffer is
  one per thread, not per connection: ``get_buffer`` and ``buffer_updated`` come in one
  call of the transport, and what was read is copied out before it returns, so an idle
  connection holds none.
- The greeting is always followed by a ``CAPABILITY`` command, a round trip per
  connection. Here the greeting's ``[CAPABILITY ...]`` code is taken when it has one
  (RFC 3501 7.1, :mod:`.capabilities`).
- Every command is a write and a round trip of its own. Here a command whose answer
  nothing waits for (``ENABLE`` after the login) can be *deferred*: it goes out with
  the next command in one write (pipelining, RFC 3501 5.5), and the server answers it
  first. Each write to a loopback socket was about a third of the fetcher's CPU when a
  rebalance moves thousands of accounts (bench/scale.py, py-spy), and each command
  wakes the server once more. A command with non-synchronizing literals (RFC 7888
  LITERAL+: MULTIAPPEND) goes out whole in that write too, with no ``+`` awaited.

Everything else (parsing, literals, IDLE, state) is aioimaplib's own, plus one command
aioimaplib lacks: ``AUTHENTICATE`` with any SASL mechanism that answers challenges
(OAUTHBEARER, and XOAUTH2 with its error challenge), for OAuth2 logins.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from typing import Any

import aioimaplib

from services.imap.capabilities import adopt
from services.imap.errors import ImapUnavailable

# What takes a deferred command's answer: its result (OK, NO, BAD, BYE) and text.
Answered = Callable[[str, str], None]
# What takes one FETCH response: its lines, each literal after the line that announces it
# (``[b'1 FETCH (UID 7 BODY[] {5}', b'hello', b')']``).
Responses = Callable[[list[bytes]], None]


class _FetchCommand(aioimaplib.FetchCommand):  # type: ignore[misc]
    """A FETCH whose responses are kept until its completion (aioimaplib's lines)."""

    def __init__(self, *args: Any, held: Callable[[], bool] = lambda: False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._held = held  # True while the caller holds the connection (not idle: waiting)
        self._depth = 0  # open parentheses in the current FETCH response, outside literals
        self._last_data = self._loop.time()

    def _reset_timer(self) -> None:
        self._last_data = self._loop.time()

    def _timeout_callback(self) -> None:
        idle = self._loop.time() - self._last_data
        if self._held():
            self._timer = self._loop.call_later(self._timeout, self._timeout_callback)
        elif idle < self._timeout:
            self._timer = self._loop.call_later(self._timeout - idle, self._timeout_callback)
        else:
            super()._timeout_callback()

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        super().append_to_resp(line, result)
        # Literals arrive as bytearray and never count (RFC 3501 4.3: they are opaque).
        if type(line) is bytes:
            if self.FETCH_MESSAGE_DATA_RE.match(line):
                self._depth = 0
            self._depth += line.count(b"(") - line.count(b")")

    def wait_data(self) -> bool:
        return self._depth != 0


class _StreamedFetch(_FetchCommand):
    """A FETCH that hands over each response as soon as it is complete, and keeps none.

    Its responses do not go through aioimaplib's line handling: the protocol gives this
    command each line of a FETCH response (:meth:`take_line`) and each literal's bytes
    (:meth:`take_literal`). A response is complete when its parentheses balance after
    its last literal; ``each`` then gets its parts: the lines, each literal (bytes)
    after the line that announces it. A literal whole in one read is one slice of it;
    one over several reads is joined once at its end.
    """

    def __init__(self, *args: Any, each: Responses, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._each = each
        self._parts: list[bytes] = []  # the current response's, so far
        self._need = 0  # bytes of the current literal still to come
        self._pieces: list[bytes] = []  # of a literal that spans reads

    def wait_literal_data(self) -> bool:
        return self._need != 0

    def wait_data(self) -> bool:
        return self._depth != 0 or self._need != 0

    def take_line(self, line: bytes, first: bool) -> bool:
        """One line of a FETCH response (``first``: its ``N FETCH (...`` line, untagged
        ``*`` taken off). True while the response goes on (a literal, or more lines)."""
        if first:
            self._parts = [line]
            self._depth = 0
        else:
            self._parts.append(line)
        self._depth += line.count(b"(") - line.count(b")")
        if line.endswith(b"}"):  # a literal follows (RFC 3501 4.3: "{" number "}" CRLF)
            size = line[line.rfind(b"{") + 1 : -1]
            if size.isdigit():
                self._need = int(size)
                if not self._need:
                    self._parts.append(b"")
                return True  # the literal, then at least the line that closes the response
        if self._depth > 0:
            return True
        parts, self._parts = self._parts, []
        self._each(parts)
        return False

    def take_literal(self, data: bytes, pos: int) -> int:
        """Take what ``data`` holds of the current literal from ``pos``; where it ends."""
        need = self._need
        piece = data[pos : pos + need]
        got = len(piece)
        if got == need and not self._pieces:
            self._parts.append(piece)
        else:
            self._pieces.append(piece)
            if got == need:
                self._parts.append(b"".join(self._pieces))
                self._pieces = []
        self._need = need - got
        return pos + got


# What a read may decrypt at once: asyncio's own read size for TLS (``SSLProtocol.max_size``).
_READ_BUFFER = 256 * 1024


class _ReadBuffer(threading.local):
    """The buffer reads land in, one per thread (see the module doc)."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(_READ_BUFFER))


_read_buffer = _ReadBuffer()


class _Protocol(aioimaplib.IMAP4ClientProtocol, asyncio.BufferedProtocol):  # type: ignore[misc]
    incomplete_line: bytes
    current_command: Any
    pending_sync_command: Any
    pending_async_commands: dict[str, Any]
    _sasl_replies: list[str]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # To go out with the next command, and went out so but not answered yet: each
        # with what takes its answer (None: a refusal fails the command it went with).
        self._deferred: list[tuple[aioimaplib.Command, Answered | None]] = []
        self._ahead: dict[str, tuple[aioimaplib.Command, Answered | None]] = {}
        self._literals: bytes | None = None  # the rest of the next command (LITERAL+)
        self._held = False  # the caller stopped reading (hold, release)

    def hold(self) -> None:
        """Stop reading the server's data until :meth:`release`: what it sends waits in
        the socket buffers, and TCP holds the server back. A pending FETCH does not time
        out meanwhile (it waits for us, not for the server)."""
        if not self._held:
            self._held = True
            self.transport.pause_reading()

    def release(self) -> None:
        if self._held:
            self._held = False
            self.transport.resume_reading()
            fetch = self.pending_async_commands.get("FETCH")
            if isinstance(fetch, _FetchCommand):
                fetch._reset_timer()  # its idle time counts from now

    def defer(self, command: aioimaplib.Command, answered: Answered | None = None) -> None:
        """Send ``command`` with the next command, in the same write: for one whose
        answer nothing waits for. The server answers it first (commands run in order).
        ``answered`` is given its result and text; without it, a refusal fails the
        command it went with (as if it had failed on its own)."""
        self._deferred.append((command, answered))

    def take_idle_lines(self) -> list[bytes | bytearray]:
        """The untagged lines the pending IDLE holds and has not handed out yet: those of
        a command deferred ahead of it (its answer came while IDLE waited for ``+``)."""
        lines: list[bytes | bytearray] = []
        while not self.idle_queue.empty():
            item = self.idle_queue.get_nowait()
            if isinstance(item, list):
                lines += item
        pending = self.pending_sync_command
        if isinstance(pending, aioimaplib.IdleCommand):
            lines += pending.buffer
            pending.buffer.clear()
        return lines

    def complete_next_with(self, literals: bytes) -> None:
        """Send ``literals`` right after the next command's line, in the same write: the
        bytes of the non-synchronizing literals (RFC 7888, ``{n+}``) its line announces,
        and what follows each, up to the command's final CRLF. No ``+`` is awaited."""
        self._literals = literals

    def send(self, line: str, scrub: str | None = None) -> None:
        literals, self._literals = self._literals, None
        if not self._deferred and literals is None:
            super().send(line, scrub)
            return
        ahead, self._deferred = self._deferred, []
        self._ahead.update((c.tag, (c, answered)) for c, answered in ahead)
        head = "".join(f"{c}\r\n" for c in [*(c for c, _ in ahead), line]).encode()
        self.transport.write(head if literals is None else head + literals)

    def _response_done(self, line: bytes) -> None:
        tag, _, response = line.partition(b" ")
        ahead = self._ahead.pop(tag.decode(errors="replace"), None)
        if ahead is None:
            super()._response_done(line)
            return
        command, answered = ahead
        result, _, text = (part.decode(errors="replace") for part in response.partition(b" "))
        if answered is not None:
            answered(result, text)
        elif result != "OK":
            failed = ImapUnavailable(f"{command.name} failed: {result} {text}")
            for cmd in [self.pending_sync_command, *self.pending_async_commands.values()]:
                if cmd is not None:
                    cmd._exception = failed

    @aioimaplib.change_state  # type: ignore[untyped-decorator]
    async def welcome(self, command: bytes) -> None:
        """aioimaplib's ``welcome``, but for the capabilities: the greeting's code when it
        has one (RFC 3501 7.1), else the ``CAPABILITY`` command."""
        if b"PREAUTH" in command:
            self.state = aioimaplib.AUTH
        elif b"OK" in command:
            self.state = aioimaplib.NONAUTH
        else:
            raise aioimaplib.Error(command.decode())
        if not adopt(self, command):
            await self.capability()

    @aioimaplib.change_state  # type: ignore[untyped-decorator]
    async def authenticate(
        self, mechanism: str, initial: str, error_ack: str
    ) -> aioimaplib.Response:
        """``AUTHENTICATE mechanism`` (RFC 3501 6.2.2) with a base64 ``initial`` response.

        With SASL-IR (RFC 4959) the initial response rides on the command; else it
        answers the first ``+`` challenge. A later challenge carries the server's error
        (RFC 7628 3.2.3); ``error_ack`` answers it so the server sends its tagged NO.
        """
        args = [mechanism]
        if "SASL-IR" in self.capabilities:
            args.append(initial)
            self._sasl_replies = [error_ack]
        else:
            self._sasl_replies = [initial, error_ack]
        command = aioimaplib.Command("AUTHENTICATE", self.new_tag(), *args, loop=self.loop)
        response: aioimaplib.Response = await self.execute(command, scrub=initial)
        if response.result == "OK":
            self.state = aioimaplib.AUTH
        return response

    def _continuation(self, line: bytes) -> None:
        pending = self.pending_sync_command
        if pending is None or pending.name != "AUTHENTICATE":
            super()._continuation(line)
            return
        # A challenge we have no answer for is cancelled with "*" (RFC 3501 6.2.2).
        reply = self._sasl_replies.pop(0) if self._sasl_replies else "*"
        self.transport.write(reply.encode() + b"\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        """aioimaplib leaves commands waiting for replies that can never come (an IDLE
        until its 29 minutes are up): end them now, so the account reconnects at once."""
        super().connection_lost(exc)
        lost = aioimaplib.Abort(f"connection lost: {exc or 'closed by the server'}")
        for cmd in [self.pending_sync_command, *self.pending_async_commands.values()]:
            if cmd is None:
                continue
            if isinstance(cmd, aioimaplib.IdleCommand):
                cmd.queue.put_nowait(aioimaplib.STOP_WAIT_SERVER_PUSH)
            cmd._exception = lost
            cmd._event.set()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_read_buffer.view[:nbytes]))

    def data_received(self, d: bytes) -> None:
        try:
            pending = self.incomplete_line + d
            self._handle_responses(pending, self._handle_line, self.current_command)
            self.incomplete_line = b""
            self.current_command = None
        except aioimaplib.IncompleteRead as incomplete:
            self.current_command = incomplete.cmd
            self.incomplete_line = incomplete.data

    def _handle_responses(
        self,
        data: bytes,
        line_handler: Callable[[bytes, Any], Any],
        current_cmd: Any = None,
    ) -> None:
        """aioimaplib's ``_handle_responses``, step for step, as a loop; the responses of
        a streamed FETCH go straight to it (:class:`_StreamedFetch`)."""
        pos, end = 0, len(data)
        view = memoryview(data)  # literal bytes are copied once, into the literal's buffer
        stream = self.pending_sync_command or self.pending_async_commands.get("FETCH")
        if type(stream) is _StreamedFetch:
            stream._reset_timer()  # it saw data: once a read, not once a line
        else:
            stream = None
        while True:
            if pos >= end:
                if self.pending_sync_command is not None:
                    self.pending_sync_command.flush()
                if current_cmd is not None and current_cmd.wait_data():
                    raise aioimaplib.IncompleteRead(current_cmd)
                return
            if current_cmd is not None and current_cmd.wait_literal_data():
                if current_cmd is stream:
                    pos = stream.take_literal(data, pos)
                else:
                    need = current_cmd._expected_size - len(current_cmd._resp_literal_data)
                    current_cmd.append_literal_data(view[pos : pos + need])
                    pos = min(end, pos + need)
                if current_cmd.wait_literal_data():
                    raise aioimaplib.IncompleteRead(current_cmd)
            crlf = data.find(b"\r\n", pos)
            if crlf < 0:
                raise aioimaplib.IncompleteRead(current_cmd, data[pos:])
            line, pos = data[pos:crlf], crlf + 2
            if stream is not None:
                if current_cmd is stream:  # the response goes on
                    current_cmd = stream if stream.take_line(line, first=False) else None
                    continue
                # An untagged FETCH response's first line (RFC 3501 7.4.2), aioimaplib's match.
                if line.startswith(b"* ") and stream.FETCH_MESSAGE_DATA_RE.match(line, 2):
                    current_cmd = stream if stream.take_line(line[2:], first=True) else None
                    continue
            cmd = line_handler(line, current_cmd)
            begin_literal = line.endswith(b"}") and aioimaplib.literal_data_re.match(line)
            if begin_literal:
                if cmd is None:
                    cmd = aioimaplib.Command("NIL", "unused")
                cmd.begin_literal_data(int(begin_literal.group("size")))
                current_cmd = cmd
            elif cmd is not None and cmd.wait_data():
                current_cmd = cmd
            else:
                current_cmd = None

    async def fetch(
        self,
        message_set: str,
        message_parts: str,
        by_uid: bool = False,
        timeout: float | None = None,
        each: Responses | None = None,
    ) -> aioimaplib.Response:
        """``each``: given each FETCH response as soon as it is complete; the
        response returned then holds only the other lines."""
        args = (self.new_tag(), message_set, message_parts)
        options: dict[str, Any] = {
            "prefix": "UID" if by_uid else "",
            "loop": self.loop,
            "timeout": timeout,
            "held": lambda: self._held,
        }
        return await self.execute(
            _FetchCommand(*args, **options)
            if each is None
            else _StreamedFetch(*args, each=each, **options)
        )


class FastIMAP4(aioimaplib.IMAP4):  # type: ignore[misc]
    """``aioimaplib.IMAP4`` on :class:`_Protocol`; TLS when given an ``ssl_context``."""

    _idle_waiter: asyncio.TimerHandle | None

    async def uid_fetch_each(
        self, message_set: str, message_parts: str, each: Responses
    ) -> aioimaplib.Response:
        """``UID FETCH``, each response given to ``each`` as soon as it is complete."""
        response: aioimaplib.Response = await self.protocol.fetch(
            message_set, message_parts, by_uid=True, timeout=self.timeout, each=each
        )
        return response

    def forget_idle(self) -> None:
        """An IDLE left without DONE (the connection is about to close): its timer,
        which would keep this client alive until the IDLE's time ran out, cancelled."""
        if self._idle_waiter is not None:
            self._idle_waiter.cancel()
            self._idle_waiter = None

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )
