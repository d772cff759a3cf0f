"""The bytes of fetched mail a fetcher replica holds at once, over all its imports.

Each import is bounded on its own: what IMAP reads ahead of the publisher
(.ordered_fetch) and what Kafka has not acknowledged (.stream_publish), about 64 MiB
with large mail. Accounts importing at once on one replica add up, though: twenty new
mailboxes of scanned invoices could hold more than a GiB where the fetcher's pod has
512 MiB (``deploy/base/fetcher.yaml``). So every fetch of bodies also counts its
messages here, from the moment IMAP returned one until Kafka acknowledged it (or the
fetch stopped), and while the replica's total is over the limit, every fetch's
connection is *held*: it reads nothing more, and TCP holds the server back. What was
read still goes to Kafka and is acknowledged, which brings the total down and lets the
connections read again; nothing is dropped, an import only waits. The limit is passed
by at most what each connection had read when it was reached (a read and the message it
was in).
"""

from __future__ import annotations

from collections.abc import Callable


class HeldBytes:
    """A replica's count, and the fetches to wake when it falls back under the limit."""

    def __init__(self, limit: int | None):
        self.limit = limit  # None: counted, never full
        self.held = 0
        self._watching: list[Callable[[], None]] = []

    @property
    def full(self) -> bool:
        return self.limit is not None and self.held > self.limit

    def add(self, size: int) -> None:
        self.held += size

    def remove(self, size: int) -> None:
        was_full = self.full
        self.held -= size
        if was_full and not self.full:
            for wake in list(self._watching):
                wake()

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` whenever the total falls back under the limit; returns what
        stops it."""
        self._watching.append(wake)
        return lambda: self._watching.remove(wake)
