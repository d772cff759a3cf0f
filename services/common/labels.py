"""Bounded label values for metrics (pure).

Every distinct label value is a time series in Prometheus. Account ids and folder
names come from configuration and user data, so their number is not ours to choose:
the first ``limit`` distinct values keep their own series and every later one is
counted under ``OTHER``. An operator who sees ``_other`` raises the limit. Account ids
are labels only with ``MAILSYNC_METRICS_PER_ACCOUNT=true`` (see :mod:`.metrics`).
"""

from __future__ import annotations

OTHER = "_other"


class LabelBudget:
    """Maps values to label values, at most ``limit`` distinct ones plus ``OTHER``."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("a label budget needs room for at least one value")
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return OTHER
        self._seen.add(value)
        return value
