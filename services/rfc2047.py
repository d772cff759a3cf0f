"""RFC 2047 encoded words, decoded tolerantly (pure); shared by dedup and the writer."""

from __future__ import annotations

import email.header


def decode_words(value: str | None) -> str:
    """RFC 2047 encoded words in any charset; unknown charsets degrade, never fail."""
    if not value:
        return ""
    if "=?" not in value:  # no encoded word: what decode_header would give back, faster
        return " ".join(value.split())
    out = []
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return value
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        # decode_header() hands back the unencoded runs of a str input as
        # raw-unicode-escape bytes (charset None); those decode back losslessly.
        for candidate in (charset or "raw-unicode-escape", "utf-8", "latin-1"):
            try:
                out.append(chunk.decode(candidate))
                break
            except (LookupError, UnicodeDecodeError):
                continue
    text = "".join(out)
    return " ".join(text.split())
