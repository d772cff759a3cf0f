"""The status page in headless Chromium: it renders the accounts, their states, a
folder error and a linked duplicate from the API, the activities written per minute,
and for an admin each service's consumers and lag and the dead-letter count; every
time carries its zone, the sign-in hint is readable, and its screenshot is a real
image."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from devservers.corpus import build
from schemas.topics import RAW_MESSAGES
from services.api.pipeline_watch import TIMEOUT_S, PipelineWatch
from services.api.settings import ApiSettings
from services.common.kafka import ensure_topics
from tests.fixtures.api import TOKEN_OF, Api
from tests.fixtures.browser import Browser
from tests.fixtures.pipeline import Env, Pipeline, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WIDTH, HEIGHT = 1280, 900


async def chromium(profile: Path, *args: str) -> bytes:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run `make deps` (make test does it)")
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--headless",
        "--no-sandbox",  # tests may run as root
        "--disable-gpu",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--virtual-time-budget=8000",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def png_facts(data: bytes) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values the image data holds."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def _rgba(css: str) -> tuple[float, float, float, float]:
    """``rgb(1, 2, 3)`` or ``rgba(1, 2, 3, 0.5)``, as getComputedStyle writes colours."""
    parts = [float(x) for x in re.findall(r"[\d.]+", css)]
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two opaque CSS colours (1 to 21)."""

    def luminance(css: str) -> float:
        r, g, b, alpha = _rgba(css)
        assert alpha == 1.0, f"{css} is not opaque"
        linear = [
            c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
            for c in (r / 255, g / 255, b / 255)
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# The rendered colour of an element's text, and the background it is drawn on: its own,
# else the first ancestor's that is not transparent.
COLOURS_OF = """(sel => {
  const e = document.querySelector(sel);
  let b = e, bg = "rgba(0, 0, 0, 0)";
  const clear = /rgba\\(.*, 0\\)$/;
  while (b && (bg = getComputedStyle(b).backgroundColor).match(clear)) b = b.parentElement;
  return {text: e.innerText, color: getComputedStyle(e).color, background: bg};
})"""

# A time as the page shows it: in the browser's zone, with its UTC offset.
SHOWN_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? [+-]\d\d:\d\d")
JSON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def json_times(value: Any) -> list[str]:
    """Every date-time string in a JSON document."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in json_times(v)]
    if isinstance(value, list):
        return [t for v in value for t in json_times(v)]
    return [value] if isinstance(value, str) and JSON_TIME.match(value) else []


async def dead_letter_one(env: Env) -> None:
    """A record some other producer got wrong (no metadata header): dedup dead-letters it."""
    await ensure_topics(env.settings, [RAW_MESSAGES])
    producer = AIOKafkaProducer(bootstrap_servers=env.overrides["kafka_bootstrap"])
    await producer.start()
    try:
        await producer.send_and_wait(
            env.settings.topic(RAW_MESSAGES), b"Subject: orphan\r\n\r\nhi\r\n", key=b"nobody"
        )
    finally:
        await producer.stop()


async def rows(page: Browser, table: str) -> list[list[str]]:
    """The cells' text of a table's body, as shown."""
    found = await page.evaluate(
        f"[...document.querySelectorAll('#{table} tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText))"
    )
    return list(found or [])


async def test_status_page_shows_accounts_states_and_a_duplicate(
    env: Env, api: Api, pipeline: Pipeline, tmp_path: Path
) -> None:
    jana, info = env.mail_user("jana"), env.mail_user("info")
    # "Projekte" exists only as the parent of "Projekte/Alt": listed, but \Noselect.
    env.dovecot.create_folder(jana.address, "Projekte/Alt")
    admin = api.client("root")
    suffix = env.overrides["mongo_database"]
    for user, ownership, aliases, folders in (
        (jana, {"kind": "personal", "owner": "u-jana"}, [], ["INBOX", "Projekte"]),
        (info, {"kind": "shared", "group": "sales"}, [f"orders-{suffix}@example.com"], ["INBOX"]),
    ):
        imap = {"host": "127.0.0.1", "port": env.dovecot.imaps_port, "username": user.address}
        saved = await admin.post(
            "/v1/accounts",
            json={
                "address": user.address,
                "aliases": aliases,
                "ownership": ownership,
                "imap": imap,
                "password": user.password,
                "folders": folders,
                # Saving checks that the folders can be synced; this one cannot.
                "verify": user is not jana,
            },
        )
        assert saved.status_code == 201, saved.text
    rng = random.Random(11)
    customer = ("Jürgen Weiß", "j.weiss@weiss-maschinenbau.de")
    both = build(
        rng,
        customer,
        [("Jana", jana.address), ("Info", info.address)],
        date=dt.datetime(2026, 6, 2, 10, tzinfo=dt.UTC),
        subject="Angebot Pumpe 7",
    )
    alone = build(
        rng,
        customer,
        [("Jana", jana.address)],
        date=dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC),
        subject="Rechnung 4711",
    )
    env.dovecot.deliver(jana.address, both.message)
    env.dovecot.deliver(info.address, both.message)
    env.dovecot.deliver(jana.address, alone.message)
    await dead_letter_one(env)

    async with pipeline():

        async def ready() -> Any:
            status = (await admin.get("/v1/status")).json()
            idle = all(a["state"] and a["state"]["status"] == "idle" for a in status["accounts"])
            services = {s["service"]: s["state"] for s in status["pipeline"]["services"]}
            return (
                status
                if idle
                and status["duplicates"]
                and status["activities_total"] == 2
                and status["folder_errors"]
                and status["pipeline"]["dead_letters"]["count"] == 1
                and {services[s] for s in ("fetcher", "dedup", "activity-writer")} == {"consuming"}
                else None
            )

        status = await eventually(ready, timeout=90, what="both synced, a dead letter, consuming")
        url = f"{api.url}/status#token={TOKEN_OF['root']}"
        dom = (await chromium(tmp_path / "profile", "--dump-dom", url)).decode()
        shot = tmp_path / "status.png"
        await chromium(tmp_path / "profile2", f"--screenshot={shot}", url)
        async with Browser(tmp_path / "profile3") as page:
            await page.send("Emulation.setTimezoneOverride", {"timezoneId": "Europe/Berlin"})
            await page.goto(url)
            await page.wait_for("!!document.querySelector('#services tbody tr')", what="services")
            shown = await page.text()
            services = {r[0]: r for r in await rows(page, "services")}
            folder_errors = await rows(page, "folder-errors")
            recent = await rows(page, "recent")
            # Jana, who is no admin, sees her own mailbox, and no pipeline.
            await page.goto("about:blank")
            await page.goto(f"{api.url}/status#token={TOKEN_OF['u-jana']}")
            await page.wait_for("!!document.querySelector('#accounts tbody tr')", what="accounts")
            as_jana = await page.text()
            # Without a token the page says how to get in, readably, and shows no data.
            await page.evaluate("sessionStorage.clear()")  # the tab keeps it, per site
            await page.goto("about:blank")
            await page.goto(f"{api.url}/status")
            await page.wait_for("document.querySelector('#error').innerText", what="the hint")
            hint = await page.evaluate(f"{COLOURS_OF}('#error')")
            anonymous = await page.text()

    assert jana.address in dom and info.address in dom
    assert f"orders-{suffix}@example.com" in dom and "shared (sales)" in dom
    assert dom.count('class="state idle"') == 2
    assert "2/2" in dom and "1/1" in dom  # initial sync progress of each mailbox
    duplicates = dom.split('id="duplicates"')[1].split("</table>")[0]
    assert "Angebot Pumpe 7" in duplicates and "(duplicate)" in duplicates
    assert "Rechnung 4711" not in duplicates
    assert "Rechnung 4711" in dom.split('id="recent"')[1]
    width, height, distinct = png_facts(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    assert distinct > 50, "the screenshot is blank"

    # The folder error: the mailbox, the folder, the error, since when (with its offset).
    assert [r[:3] for r in folder_errors] == [
        [jana.address, "Projekte", "folder cannot be selected (\\Noselect)"]
    ]
    assert re.fullmatch(SHOWN_TIME, folder_errors[0][3]), folder_errors
    # Each service's state from its consumer group, with its lag; the sender is not run.
    assert set(services) == {"fetcher", "dedup", "activity-writer", "sender"}
    for name in ("fetcher", "dedup", "activity-writer"):
        assert services[name][1].startswith("consuming"), services[name]
        assert re.fullmatch(r"\d+ records?", services[name][2]), services[name]
    assert services["sender"][1].startswith("no group"), services["sender"]
    assert "Dead letters: 1 " in shown
    assert "2 new activities in the last 15 minutes" in shown
    # Times in the browser's zone, named, each with its offset: the message dated
    # 2026-06-01 10:00 UTC is shown at 12:00 in Berlin (summer time).
    assert "times in Europe/Berlin (now UTC+0" in shown
    (rechnung,) = [r for r in recent if "Rechnung 4711" in r]
    assert rechnung[0] == "2026-06-01 12:00:00 +02:00"
    assert re.search(r"updated " + SHOWN_TIME.pattern, shown)
    # And every time the JSON endpoint returns carries its zone.
    times = json_times(status)
    assert times and all(re.search(r"(Z|[+-]\d\d:\d\d)$", t) for t in times), times
    # Jana: her mailbox and its folder error, no pipeline (that is for admins).
    assert jana.address in as_jana and info.address not in as_jana and "Projekte" in as_jana
    assert "shown to admins" in as_jana and "Dead letters" not in as_jana
    jana_status = (await api.client("u-jana").get("/v1/status")).json()
    assert jana_status["pipeline"] is None

    assert "#token=" in hint["text"] and jana.address not in anonymous
    ratio = contrast_ratio(hint["color"], hint["background"])
    assert ratio >= 4.5, (hint, ratio)


async def test_pipeline_is_unknown_when_kafka_does_not_answer() -> None:
    """A broker that accepts connections and never answers: the status says "unknown"
    for every service and the dead letters, within the timeout, and not a guess."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    watch = PipelineWatch(ApiSettings(kafka_bootstrap=f"127.0.0.1:{port}"))
    try:
        started = asyncio.get_running_loop().time()
        view = await watch.view()
        took = asyncio.get_running_loop().time() - started
    finally:
        await watch.close()
        server.close()
    assert took < TIMEOUT_S + 2
    assert {s.service: s.state for s in view.services} == dict.fromkeys(
        ("fetcher", "dedup", "activity-writer", "sender"), "unknown"
    )
    assert all(s.lag is None and "did not answer" in s.detail for s in view.services)
    assert view.dead_letters.count is None
