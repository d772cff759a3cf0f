"""The CLI's pure parts: terminal widths, and finding a local ``mailsync run``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from services.common.settings import CommonSettings
from services.local_run import announce, overrides, withdraw
from services.text_width import fit, width


def test_wide_characters_take_two_columns() -> None:
    assert width("abc") == 3
    assert width("会議") == 4
    assert width("e\u0301") == 1  # a combining accent takes none
    assert fit("会議の議事録", 7) == "会議の…"  # never half a wide character
    assert width(fit("会議の議事録", 7)) == 7
    assert fit("ab", 4) == "ab  "


def test_the_cli_finds_a_running_mailsync_run(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("the-key\n")
    announce(tmp_path, "127.0.0.1:9092", "mongodb://127.0.0.1:27017")
    assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o600
    found = overrides(CommonSettings(data_dir=tmp_path))
    assert found["kafka_bootstrap"] == "127.0.0.1:9092"
    assert found["mongo_uri"].get_secret_value() == "mongodb://127.0.0.1:27017"
    assert found["secret_key"].get_secret_value() == "the-key"
    # What the environment says wins.
    mine = overrides(CommonSettings(data_dir=tmp_path, kafka_bootstrap="kafka:9092"))
    assert "kafka_bootstrap" not in mine
    # A run that has gone is not used (its key still is: the data is still there).
    run = json.loads((tmp_path / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps({**run, "pid": _dead_pid()}))
    assert set(overrides(CommonSettings(data_dir=tmp_path))) == {"secret_key"}
    withdraw(tmp_path)
    assert not (tmp_path / "run.json").exists()


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
