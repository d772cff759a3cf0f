"""Which conversation a message belongs to (pure).

RFC 5322 3.6.4: ``References`` lists the message ids of the conversation from its
root, ``In-Reply-To`` names the parent. A message joins its parent's thread when the
parent is known; otherwise the thread is named after the first id of References (the
root), or the parent, or the message itself. So a reply to a mail we sent joins the
sent mail's thread, and replies that arrive before their parent still agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from services.mail import normalise_subject


def thread_id_of(root_message_id: str) -> str:
    digest = hashlib.sha256(root_message_id.encode("utf-8", "surrogateescape"))
    return "t-" + digest.hexdigest()[:24]


def parent_ids(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    """The ids whose activities may already name this message's thread, nearest first."""
    ids = [in_reply_to] if in_reply_to else []
    ids += [r for r in reversed(references) if r != in_reply_to]
    return ids


def own_thread(
    message_id: str | None, in_reply_to: str | None, references: Sequence[str], fallback: str
) -> str:
    """The thread a message names by its own headers, knowing nothing stored: its root's
    (the first of References), else its parent's, else its own; ``fallback`` names a
    message without any id (its activity id, say)."""
    root = references[0] if references else in_reply_to or message_id
    return thread_id_of(root) if root else thread_id_of(fallback)


def thread_for(
    message_id: str | None,
    in_reply_to: str | None,
    references: Sequence[str],
    known_threads: Mapping[str, str],
    fallback: str,
    subject_thread: str | None = None,
) -> str:
    """The thread id: a known parent's, else the root's, else (for a message that names
    no parent at all) the thread of the same subject among the same participants, else
    the message's own (:func:`own_thread`).

    ``known_threads`` maps message ids of stored activities to their thread ids;
    ``subject_thread`` is the thread found by :func:`subject_key`, if any; ``fallback``
    names a message without any id (its activity id, say).
    """
    for parent in parent_ids(in_reply_to, references):
        if parent in known_threads:
            return known_threads[parent]
    if not in_reply_to and not references and subject_thread:
        return subject_thread
    return own_thread(message_id, in_reply_to, references, fallback)


def subject_key(subject: str, participants: Iterable[str]) -> str | None:
    """The fallback thread key: normalised subject among exactly these participants.

    For mail without References or In-Reply-To (some clients and web forms send none):
    a reply then still joins the conversation it answers, but only between the same
    people, so two customers' "Objednávka" never share a thread.
    """
    topic = normalise_subject(subject)
    people = sorted({p.strip().lower() for p in participants if p})
    if not topic or not people:
        return None
    digest = hashlib.sha256("\x00".join([topic, *people]).encode("utf-8", "surrogateescape"))
    return "s-" + digest.hexdigest()[:24]
