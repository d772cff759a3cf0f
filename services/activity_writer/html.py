"""HTML bodies made safe to display in the CRM (pure; nh3, the Ammonia sanitiser).

nh3's defaults already drop scripts, styles' expressions, event handler attributes and
``javascript:`` URLs. On top of that, remote images are not loaded by default: an
``<img>`` whose source is on the network loses its ``src`` (a tracking pixel reports
nothing), and the count is kept so the CRM can say that images were blocked. Inline
images (``cid:``) and ``data:`` images stay.
"""

from __future__ import annotations

import html as entities
import re
from dataclasses import dataclass

import nh3

_BLOCK = re.compile(r"<(?:br|p|div|tr|li|h[1-6]|blockquote)\b[^>]*>", re.IGNORECASE)
_REMOTE = ("http:", "https:", "//", "ftp:")


@dataclass(frozen=True)
class SanitizedHtml:
    html: str
    remote_images_blocked: int


def sanitize_html(html: str) -> SanitizedHtml:
    blocked = 0

    def keep(element: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        # (``background`` and ``style`` are not on nh3's allow-list: they never get here.)
        loads_image = element == "img" and attribute in ("src", "srcset")
        if loads_image and value.strip().lower().startswith(_REMOTE):
            blocked += 1
            return None
        return value

    cleaned = nh3.clean(
        html,
        clean_content_tags={"script", "style", "title", "head"},
        url_schemes={"http", "https", "mailto", "cid", "data", "tel"},
        attribute_filter=keep,
    )
    return SanitizedHtml(cleaned, blocked)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body: tags dropped, line breaks kept, entities decoded."""
    spaced = _BLOCK.sub(lambda m: "\n" + m[0], html)
    text = nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style", "title", "head"})
    return entities.unescape(text)
