"""An IMAP connection's TLS read buffer goes back to the system when it waits in IDLE,
without a heap trim (issue #16: ~16 KiB an idle account otherwise stayed resident)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from services.imap.tls_buffer import DEFAULT_READ_BUFFER, IDLE_READ_BUFFER, set_read_buffer


def _rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def _connection() -> Any:
    """What set_read_buffer reads of a transport: asyncio's SSLProtocol's buffer."""
    buffer = bytearray(256 * 1024)
    proto = SimpleNamespace(max_size=len(buffer), _ssl_buffer=buffer)
    proto._ssl_buffer_view = memoryview(buffer)
    return SimpleNamespace(_ssl_protocol=proto)


def _touch(transport: Any) -> None:
    """The pages a connection's reads fill (a mapping is resident only once written)."""
    view = transport._ssl_protocol._ssl_buffer_view
    view[:] = b"\x01" * len(view)


def test_connections_entering_idle_give_their_read_buffers_back_to_the_system() -> None:
    connections: list[Any] = []
    kept: list[bytearray] = []
    for _ in range(3000):
        transport = _connection()
        assert set_read_buffer(transport, DEFAULT_READ_BUFFER)
        _touch(transport)
        connections.append(transport)
        kept.append(bytearray(3000))  # what each connection keeps, between the buffers
    before = _rss_kib()
    for transport in connections:
        assert set_read_buffer(transport, IDLE_READ_BUFFER)
    # 3,000 x 16 KiB = 47 MiB released; at least most of it left the process at once.
    assert _rss_kib() < before - 32 * 1024
    for transport in connections:  # and it comes back for the commands after IDLE
        assert set_read_buffer(transport, DEFAULT_READ_BUFFER)
        proto = transport._ssl_protocol
        assert len(proto._ssl_buffer) == proto.max_size == DEFAULT_READ_BUFFER
        _touch(transport)
    assert len(kept) == 3000


def test_only_asyncios_tls_transport_is_changed() -> None:
    assert not set_read_buffer(None, IDLE_READ_BUFFER)
    plaintext: Any = SimpleNamespace()
    assert not set_read_buffer(plaintext, IDLE_READ_BUFFER)
