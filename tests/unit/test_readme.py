"""The README's configuration reference names every setting the services read."""

from __future__ import annotations

from pathlib import Path

from services.activity_writer.settings import WriterSettings
from services.api.settings import ApiSettings
from services.dedup.settings import DedupSettings
from services.fetcher.settings import FetcherSettings
from services.sender.settings import SenderSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    names = {
        f"MAILSYNC_{field.upper()}"
        for cls in (FetcherSettings, DedupSettings, WriterSettings, SenderSettings, ApiSettings)
        for field in cls.model_fields
    }
    assert sorted(n for n in names if f"`{n}`" not in text) == []
