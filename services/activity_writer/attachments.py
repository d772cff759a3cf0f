"""Attachment file names made safe to show and to save (pure)."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
MAX_NAME = 200


def safe_filename(name: str | None, content_type: str = "application/octet-stream") -> str:
    """The last path component, no control or reserved characters, at most 200 chars.

    ``../../etc/passwd`` -> ``passwd``; ``C:\\\\evil\\\\run.exe`` -> ``run.exe``; empty
    or missing -> ``attachment`` with an extension guessed from the content type.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\\\/]", text)[-1]
    text = _UNSAFE.sub("_", text).strip(" .")
    if not text:
        subtype = content_type.split("/", 1)[-1].split(";")[0].strip()
        text = f"attachment.{subtype}" if subtype.isalnum() else "attachment"
    if len(text) > MAX_NAME:
        stem, dot, ext = text.rpartition(".")
        keep_ext = dot and len(ext) < 16
        text = stem[: MAX_NAME - len(ext) - 1] + dot + ext if keep_ext else text[:MAX_NAME]
    return text
