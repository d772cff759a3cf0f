"""A subject as people mean it: reply and forward prefixes dropped (pure).

Two rules need it: a message's identity (copies sharing a Message-ID agree on their
subject modulo ``Re:``, :mod:`services.mail.identity`) and the writer's fallback
thread key (:func:`services.activity_writer.threads.subject_key`).
"""

from __future__ import annotations

import re

_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|odp|sv|vs|tr|rif|antw|ynt)(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


def normalise_subject(subject: str) -> str:
    """``Re: AW: Fwd:  Objednávka`` -> ``objednávka`` (reply and forward prefixes in the
    languages our users write in, any number of them, case and spacing ignored)."""
    return " ".join(_PREFIX.sub("", subject).split()).casefold()
