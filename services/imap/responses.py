"""A command's tagged completion (RFC 3501 7.1): OK goes on, NO, BAD or BYE is an error."""

from __future__ import annotations

import aioimaplib

from services.imap.errors import ImapUnavailable


def completion_text(response: aioimaplib.Response) -> str:
    """The text of the last line, the tagged completion: what the server said and why."""
    return b" ".join(bytes(x) for x in response.lines[-1:]).decode(errors="replace")


def check(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    """``response`` if it completed OK, else :class:`ImapUnavailable` naming ``what``.

    Commands that can fail for one folder (a NO to EXAMINE, STATUS, APPEND) look at the
    result first and raise FolderError; what reaches here is the connection's failure.
    """
    if response.result == "OK":
        return response
    text = completion_text(response)
    if response.result == "BYE":
        raise ImapUnavailable(f"{what}: server said BYE: {text}")
    raise ImapUnavailable(f"{what} failed: {response.result} {text}")
