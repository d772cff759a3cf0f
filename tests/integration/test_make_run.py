"""``mailsync run --demo`` (what ``make run`` starts), driven as a user would from a terminal."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from tests.fixtures.mailsync_run import MailsyncRun

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


async def test_demo_shows_its_activities_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    run = MailsyncRun(tmp_path / "data", "--demo")
    await run.start()
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(run.mongo_uri, tz_aware=True)
        try:
            activities = client.mailsync.activities
            deadline = asyncio.get_running_loop().time() + 120
            while asyncio.get_running_loop().time() < deadline:
                # Every activity, and both sightings of the 8 sent to both mailboxes (a
                # second sighting may be written a moment after its activity).
                docs = await activities.find().to_list(None)
                if len(docs) >= 48 and sum(len(d["sightings"]) == 2 for d in docs) >= 8:
                    break
                run.check()
                await asyncio.sleep(1)
        finally:
            await client.close()
        # Where the metrics are is printed; they count what the demo did.
        metrics_url = run.printed("Metrics")
        samples = await asyncio.to_thread(_scrape, metrics_url)
        # Summed over accounts: per-account series are off by default.
        written = sum(
            value
            for name, labels, value in samples
            if name == "mailsync_sightings_written_total" and labels["folder"] == "INBOX"
        )
        # 40 delivered, 8 of them to both mailboxes: 48 INBOX sightings (Sent has the rest).
        assert written >= 48, written
        ready_url = metrics_url.replace("/metrics", "/readyz")
        ready = await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(ready_url)))
        assert ready["status"] == "ready", ready
        page, token = run.status
        async with httpx.AsyncClient(timeout=30) as http:
            html = await http.get(page)
            status = await http.get(
                page.replace("/status", "/v1/status"), headers={"Authorization": f"Bearer {token}"}
            )
    finally:
        code = run.stop()
    text = run.text

    # 40 messages delivered (8 to both mailboxes) and 8 replies filed in Jana's Sent.
    assert len(docs) == 48, text[-3000:]
    both = [d for d in docs if len(d["sightings"]) == 2]
    assert len(both) == 8
    assert all({s["account_id"] for s in d["sightings"]} == {"jana", "info"} for d in both)
    assert sum(d["direction"] == "outbound" for d in docs) == 8
    via_alias = [s for d in docs for s in d["sightings"] if s["alias"] == "orders@example.com"]
    assert len(via_alias) == 8
    assert any(re.search(r"[^\x00-\x7f]", d["subject"]) for d in docs)
    assert "Activities      :" in text
    assert "Health          : http://127.0.0.1:" in text
    # The status page is served, and its data shows the two demo mailboxes.
    assert html.status_code == 200 and "mailsync" in html.text
    addresses = {a["address"]: a for a in status.json()["accounts"]}
    assert sorted(addresses) == ["info@example.com", "jana.novakova@example.com"]
    assert addresses["info@example.com"]["aliases"] == ["orders@example.com"]
    assert len(status.json()["duplicates"]) >= 1
    assert code == 0, text[-3000:]
    assert "mailsync stopped cleanly." in text


def _scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
