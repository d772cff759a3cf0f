"""The garbage collector's settings (services/common/garbage.py): what a process runs
with, what its start leaves out of later collections, and what ops see of it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from services.common import garbage


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def _pauses(generation: str) -> float:
    value = REGISTRY.get_sample_value("mailsync_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_a_configured_process_collects_rarely_and_reports_each_pause(restored: None) -> None:
    garbage.configure()
    garbage.configure()  # once is enough: no second callback
    assert gc.get_threshold() == garbage.THRESHOLDS
    before = _pauses("2")
    gc.collect()
    assert _pauses("2") == before + 1


def test_what_the_start_built_is_left_out_of_later_collections(restored: None) -> None:
    built = [{"record": i} for i in range(1000)]
    garbage.freeze_started()
    assert gc.get_freeze_count() >= len(built)
