"""The threads of a batch of messages, with one lookup per kind for the whole batch (pure).

A batch needs two lookups: the stored activities by Message-ID, for the parents its
messages name (RFC 5322 3.6.4, ``In-Reply-To`` and ``References``), and the subject
threads by key (:mod:`.thread_keys`), for the messages that name no parent at all (see
:func:`threads.subject_key`). Both are one query each, planned here; the answers and the
batch's own messages then decide every thread, so a reply that arrives with its
original joins it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.activity_writer.mapping import Mapped


@dataclass(frozen=True)
class ThreadLookups:
    """What to ask the database for a batch's threads."""

    message_ids: frozenset[str]  # parents named by the batch's messages
    subject_keys: frozenset[str]  # thread keys of the messages that name no parent


def plan_lookups(batch: Sequence[Mapped]) -> ThreadLookups:
    """The message ids and subject keys whose stored threads the batch may join.

    A message with a parent never joins by subject (:func:`threads.thread_for`), so only
    the parentless messages' keys are looked up.
    """
    return ThreadLookups(
        message_ids=frozenset(p for m in batch for p in m.parent_ids),
        subject_keys=frozenset(
            m.activity.thread_key for m in batch if m.activity.thread_key and not m.parent_ids
        ),
    )


def latest_threads(rows: Iterable[tuple[str, dt.datetime, str]]) -> dict[str, str]:
    """Thread key -> thread id of the latest activity, from (key, date, thread id) rows.

    Of two activities with the same date, the later row wins.
    """
    latest: dict[str, tuple[dt.datetime, str]] = {}
    for key, date, thread in rows:
        if key not in latest or date >= latest[key][0]:
            latest[key] = (date, thread)
    return {key: thread for key, (_, thread) in latest.items()}


def join_threads(
    batch: Sequence[Mapped], known: dict[str, str], by_subject: dict[str, str]
) -> list[Mapped]:
    """The batch, each message in its thread; ``known`` (message id -> thread id) and
    ``by_subject`` (thread key -> thread id) are the stored activities' answers to
    :func:`plan_lookups`, and learn the batch's own messages as they are joined.
    """
    # Messages that name their parents first: a batch is in partition order, not in
    # arrival order, and a header-less reply must find the thread they establish.
    order = sorted(range(len(batch)), key=lambda i: not batch[i].parent_ids)
    joined = list(batch)
    for i in order:
        item = batch[i].in_thread(known, by_subject)
        a = item.activity
        if a.message_id:
            known.setdefault(a.message_id, a.thread_id)
        if a.thread_key:
            by_subject.setdefault(a.thread_key, a.thread_id)
        joined[i] = item
    return joined
