"""Which conversation a message belongs to (pure).

RFC 5322 3.6.4: ``References`` lists the message ids of the conversation from its
root, ``In-Reply-To`` names the parent. A message joins its parent's thread when the
parent is known; otherwise the thread is named after the first id of References (the
root), or the parent, or the message itself. So a reply to a mail we sent joins the
sent mail's thread, and replies that arrive before their parent still agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def thread_id_of(root_message_id: str) -> str:
    digest = hashlib.sha256(root_message_id.encode("utf-8", "surrogateescape"))
    return "t-" + digest.hexdigest()[:24]


def parent_ids(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    """The ids whose activities may already name this message's thread, nearest first."""
    ids = [in_reply_to] if in_reply_to else []
    ids += [r for r in reversed(references) if r != in_reply_to]
    return ids


def thread_for(
    message_id: str | None,
    in_reply_to: str | None,
    references: Sequence[str],
    known_threads: Mapping[str, str],
    fallback: str,
) -> str:
    """The thread id: a known parent's, else the root's, else the message's own.

    ``known_threads`` maps message ids of stored activities to their thread ids;
    ``fallback`` names a message without any id (its activity id, say).
    """
    for parent in parent_ids(in_reply_to, references):
        if parent in known_threads:
            return known_threads[parent]
    root = references[0] if references else in_reply_to or message_id
    return thread_id_of(root) if root else thread_id_of(fallback)
