"""MAILSYNC_DEDUP_PROCESSING_GUARANTEE reaches faust: exactly_once means transactions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from services.dedup.app import build_faust_app
from services.dedup.settings import DedupSettings
from services.dedup.tagger import Tagger


@pytest.mark.parametrize(
    ("guarantee", "transactions"), [("at_least_once", False), ("exactly_once", True)]
)
def test_the_guarantee_decides_whether_faust_uses_transactions(
    guarantee: str, transactions: bool, tmp_path: Path
) -> None:
    # faust turns transactions on only in an app run by its own Worker; mailsync dedup
    # runs the app itself, and exactly_once must not silently mean at least once.
    settings = DedupSettings(
        kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, dedup_processing_guarantee=guarantee
    )
    app: Any = build_faust_app(settings, cast(Tagger, object()))
    assert app.conf.processing_guarantee.value == guarantee
    assert app.in_transaction is transactions
