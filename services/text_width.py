"""Text in terminal columns: East Asian wide and fullwidth characters take two
(Unicode UAX #11), combining marks none; so a table of names and subjects lines up."""

from __future__ import annotations

import unicodedata


def width(text: str) -> int:
    """The columns ``text`` takes in a terminal."""
    return sum(_char_width(c) for c in text)


def fit(text: str, columns: int) -> str:
    """``text`` cut to ``columns`` (ending in "…" when cut) and padded to exactly that."""
    if width(text) > columns:
        out, used = [], 0
        for char in text:
            w = _char_width(char)
            if used + w > columns - 1:
                break
            out.append(char)
            used += w
        text = "".join(out) + "…"
    return text + " " * (columns - width(text))


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
