"""``/docs`` and ``/redoc`` work without the Internet: every script, style and icon they
load comes from the API itself (the packaged Swagger UI and Redoc), and in headless
Chromium they render the API's document; their Content-Security-Policy stops anything a
bundle asks of another origin."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.fixtures.api import Api
from tests.fixtures.browser import Browser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# src= and href= of the page, and the document URL its script is given.
_URLS = re.compile(r"""(?:src|href)="([^"]+)"|url: '([^']+)'|spec-url="([^"]+)\"""")


async def test_docs_pages_load_only_same_origin_assets(api: Api) -> None:
    client = api.client(None)  # the pages and the document need no token
    expected = {
        "/docs": {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"},
        "/redoc": {".js": "javascript", ".png": "image/png", ".json": "json"},
    }
    for page, kinds in expected.items():
        html = await client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in html.headers["content-security-policy"]
        urls = {u for groups in _URLS.findall(html.text) for u in groups if u}
        assert {Path(urlsplit(u).path).suffix for u in urls} == set(kinds), urls
        for url in urls:
            # Same origin: a path, not a scheme or a host (//cdn...).
            assert url.startswith("/") and not url.startswith("//"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            kind = kinds[Path(urlsplit(url).path).suffix]
            assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
    missing = await client.get("/docs/assets/swagger-ui/nope.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def settled(browser: Browser, quiet: float = 1.5) -> list[str]:
    """Every resource the page asked for (scripts, the document, images), once nothing
    new has been asked for ``quiet`` seconds."""
    script = "[location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    seen: list[str] = await browser.evaluate(script)
    loop = asyncio.get_running_loop()
    deadline, since = loop.time() + 30, loop.time()
    while loop.time() - since < quiet and loop.time() < deadline:
        await asyncio.sleep(0.25)
        now = await browser.evaluate(script)
        if now != seen:
            seen, since = now, loop.time()
    return seen


async def test_docs_pages_render_in_a_browser_from_the_api_alone(api: Api, tmp_path: Path) -> None:
    title = "mailsync accounts API"
    pages = {
        "/docs": ".swagger-ui .info .title",
        "/redoc": "h1",
    }
    async with Browser(tmp_path / "profile") as browser:
        # What the Content-Security-Policy stopped, recorded from the page's first moment.
        await browser.send("Page.enable")
        await browser.send(
            "Page.addScriptToEvaluateOnNewDocument",
            {
                "source": "window.blocked = []; document.addEventListener("
                "'securitypolicyviolation', e => window.blocked.push(e.blockedURI));"
            },
        )
        for page, heading in pages.items():
            await browser.goto(urljoin(api.url, page))
            selector = json.dumps(heading)
            shown = await browser.wait_for(
                f"(() => {{ const e = document.querySelector({selector});"
                f" return e && e.textContent.includes({json.dumps(title)}) && e.textContent; }})()",
                what=f"{page} rendering the document",
            )
            assert title in shown
            fetched = await settled(browser)
            assert any(u.endswith("/openapi.json") for u in fetched), fetched
            # Anything from elsewhere (Redoc's logo from cdn.redoc.ly) was asked for and
            # stopped by the page's policy, not loaded.
            blocked = set(await browser.evaluate("window.blocked"))
            elsewhere = {u for u in fetched if not u.startswith(api.url + "/")}
            assert elsewhere <= blocked, (elsewhere, blocked)
