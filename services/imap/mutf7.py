"""Modified UTF-7 for IMAP folder names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import base64


def decode(name: str) -> str:
    """``Projekty/&AQw-e&AWE-tina`` -> ``Projekty/Čeština``."""
    out, i = [], 0
    while i < len(name):
        ch = name[i]
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i)
        if end < 0:
            raise ValueError(f"unterminated shift sequence in {name!r}")
        chunk = name[i + 1 : end]
        if not chunk:
            out.append("&")  # "&-" is a literal ampersand
        else:
            raw = base64.b64decode(chunk.replace(",", "/") + "=" * (-len(chunk) % 4))
            out.append(raw.decode("utf-16-be"))
        i = end + 1
    return "".join(out)


def encode(name: str) -> str:
    """``Projekty/Čeština`` -> ``Projekty/&AQw-e&AWE-tina``."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            b64 = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)
