"""``/docs`` (Swagger UI) and ``/redoc`` (Redoc) from the package's own copies of their
scripts and styles (``static/docs``, see its VENDORED.md), served under
``/docs/assets``: no CDN, so an air-gapped cluster does not get a blank page.

FastAPI's own pages load them from cdn.jsdelivr.net (and Redoc's fonts from Google),
so those are turned off (``docs_url=None``, ``redoc_url=None``) and these replace them.
A Content-Security-Policy keeps the pages to their own origin whatever the bundles ask
for: Redoc's sidebar always shows a logo from cdn.redoc.ly, which is then not fetched
(the image fails, and Redoc hides it).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(__file__).resolve().parents[1] / "static" / "docs"
TITLE = "mailsync accounts API"

router = APIRouter(include_in_schema=False)

# The pages' own inline script (the viewer's settings) and the viewers' inline styles
# need 'unsafe-inline'; Redoc runs its search in a worker made from a blob: URL.
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def _own_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page


def assets() -> StaticFiles:
    """The vendored files, for ``app.mount(ASSETS_PATH, ...)``."""
    return StaticFiles(directory=ASSETS_DIR)


def _prefix(request: Request) -> str:
    # Behind a proxy that serves the API under a path (uvicorn --root-path), as FastAPI's
    # own pages do.
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    base = _prefix(request)
    assets_url = base + ASSETS_PATH + "/swagger-ui"
    page = get_swagger_ui_html(
        openapi_url=base + (request.app.openapi_url or "/openapi.json"),
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{assets_url}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets_url}/swagger-ui.css",
        swagger_favicon_url=f"{assets_url}/favicon-32x32.png",
        # Swagger UI would otherwise send the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _own_origin_only(page)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    base = _prefix(request)
    page = get_redoc_html(
        openapi_url=base + (request.app.openapi_url or "/openapi.json"),
        title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{base}{ASSETS_PATH}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{base}{ASSETS_PATH}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )
    return _own_origin_only(page)
