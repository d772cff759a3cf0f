"""The dev broker launcher: formats once, keeps its data and its port across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

import devservers._kafka as launcher
from devservers import KafkaBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_cluster_id_starting_with_a_dash_is_formatted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # base64url ids start with "-" once in 64: kafka-storage took one for an option.
    monkeypatch.setattr(launcher, "_cluster_id", lambda: "-" + "A" * 21)
    broker = KafkaBroker(tmp_path).start()
    try:
        first = broker.bootstrap
    finally:
        broker.stop()
    meta = (tmp_path / "kafka" / "data" / "meta.properties").read_text()
    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in meta
    again = KafkaBroker(tmp_path).start()  # formatted already: started as it is
    try:
        assert again.bootstrap == first
    finally:
        again.stop()
