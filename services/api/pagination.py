"""Cursor pagination of the lists: ``GET /v1/accounts``, ``/v1/mailboxes`` and
``/v1/activities`` answer at most ``limit`` items (default 100, at most 1000).

The body stays the JSON array clients read today; the way on is in the headers, so an
existing client keeps working and a new one follows them: ``Link: <...>; rel="next"``
(RFC 8288 section 3, a relative reference with the same query and the next cursor) and
``Next-Cursor`` with the cursor alone (no ``X-`` prefix, RFC 6648). Neither is sent
with the last page. A cursor is opaque (:mod:`.cursors`); a page starts right after the
item it names, so items added or removed meanwhile neither repeat nor shift the pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
NEXT_CURSOR = "Next-Cursor"

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page, at most 1000.")]
Cursor = Annotated[
    str | None,
    Query(
        description="Where to go on from: the previous page's Next-Cursor header (or its "
        'Link rel="next"); absent for the first page.'
    ),
]

# The 200 response's headers, for the OpenAPI document.
PAGE_HEADERS: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'The next page, as <URL>; rel="next" (RFC 8288); absent on '
                "the last page.",
                "schema": {"type": "string"},
            },
            NEXT_CURSOR: {
                "description": "The cursor of the next page; absent on the last page.",
                "schema": {"type": "string"},
            },
        }
    }
}


def page_after(
    items: Sequence[T], key: Callable[[T], str], after: str | None, limit: int
) -> tuple[list[T], T | None]:
    """The first ``limit`` items (by ``key``) after the key ``after``, and the page's last
    item when more follow (None: this is the last page)."""
    rest = sorted((i for i in items if after is None or key(i) > after), key=key)
    page = rest[:limit]
    return page, (page[-1] if len(rest) > limit else None)


def next_link(request: Request, cursor: str) -> str:
    """The ``Link`` header value of the next page: this request's path and query with
    the new cursor, relative (resolved against the request's URL, RFC 8288 section 3.1),
    so it holds behind a proxy that rewrites the host."""
    url = request.url.include_query_params(cursor=cursor)
    return f'<{url.path}?{url.query}>; rel="next"'


def announce(request: Request, response: Response, cursor: str | None) -> None:
    """Tell the client where the next page starts (nothing on the last page)."""
    if cursor is not None:
        response.headers["Link"] = next_link(request, cursor)
        response.headers[NEXT_CURSOR] = cursor
