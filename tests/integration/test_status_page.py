"""The status page in headless Chromium: it renders the accounts, their states and a
linked duplicate from the API, and its screenshot is a real image."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from devservers.corpus import build
from tests.fixtures.api import TOKEN_OF, Api
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


async def test_status_page_shows_accounts_states_and_a_duplicate(
    env: Env, api: Api, pipeline: Pipeline, tmp_path: Path
) -> None:
    jana, info = env.mail_user("jana"), env.mail_user("info")
    admin = api.client("root")
    suffix = env.overrides["mongo_database"]
    for user, ownership, aliases in (
        (jana, {"kind": "personal", "owner": "u-jana"}, []),
        (info, {"kind": "shared", "group": "sales"}, [f"orders-{suffix}@example.com"]),
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

    async with pipeline():

        async def ready() -> Any:
            status = (await admin.get("/v1/status")).json()
            idle = all(a["state"] and a["state"]["status"] == "idle" for a in status["accounts"])
            return (
                status
                if idle and status["duplicates"] and status["activities_total"] == 2
                else None
            )

        await eventually(ready, timeout=90, what="both mailboxes synced, one duplicate")
        url = f"{api.url}/status#token={TOKEN_OF['root']}"
        dom = (await chromium(tmp_path / "profile", "--dump-dom", url)).decode()
        shot = tmp_path / "status.png"
        await chromium(tmp_path / "profile2", f"--screenshot={shot}", url)

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

    # Without a token the page says how to get in, and shows no data.
    anonymous = (await chromium(tmp_path / "profile3", "--dump-dom", f"{api.url}/status")).decode()
    assert "#token=" in anonymous and jana.address not in anonymous
