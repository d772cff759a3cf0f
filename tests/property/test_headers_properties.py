"""Header blocks and address lists: the fast paths read what the stdlib reads, always."""

from __future__ import annotations

import email.utils
from email.parser import HeaderParser
from email.policy import compat32

from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.mail.headers import getaddresses, header_fields
from tests.property.strategies import FAST

# Pieces of real and hostile address lists: atoms, dots, specials, folding, non-ASCII.
piece = st.sampled_from(
    [
        "a",
        "jan.novak",
        "x",
        "Jan",
        "Novák",
        "=?utf-8?q?J=C3=A1n?=",
        "example.cz",
        "@",
        ".",
        "<",
        ">",
        ",",
        " ",
        "  ",
        "\t",
        "\r\n ",
        '"',
        "(",
        ")",
        ":",
        ";",
        "[",
        "]",
        "\\",
        "\xa0",
        "+tag",
        "é",
        "",
    ]
)
address_list = st.lists(piece, max_size=14).map("".join)
simple = st.builds(
    lambda name, local, domain: f"{name} <{local}@{domain}>" if name else f"{local}@{domain}",
    st.sampled_from(["", "Jan Novák", "J. Novak", "=?utf-8?b?SsOhbg==?=", "a\tb"]),
    st.sampled_from(["jan", "jan.novak", "j+crm", "ÿ"]),
    st.sampled_from(["example.cz", "x", "a.b.c"]),
)


@settings(FAST, max_examples=300)
@given(st.lists(address_list, min_size=1, max_size=3))
@example(["a@a", "\xa0@a"])  # NBSP: folding white space to the stdlib (found by hypothesis)
def test_any_address_list_parses_as_the_stdlib_does(values: list[str]) -> None:
    assert getaddresses(values) == email.utils.getaddresses(values)


@FAST
@given(st.lists(st.lists(simple, min_size=1, max_size=4).map(", ".join), min_size=1, max_size=2))
def test_simple_address_lists_parse_as_the_stdlib_does(values: list[str]) -> None:
    assert getaddresses(values) == email.utils.getaddresses(values)


def stdlib_fields(text: str) -> dict[str, list[str]]:
    """The oracle: what ``email``'s compat32 header parser stores, by lowercased name."""
    msg = HeaderParser(policy=compat32).parsestr(text + "\r\n\r\n", headersonly=True)
    fields: dict[str, list[str]] = {}
    for name, value in msg.items():
        fields.setdefault(name.lower(), []).append(str(value))
    return fields


header_piece = st.sampled_from(
    [
        "From: a@b",
        "Subject: Hi",
        "To:",
        "X-A: 1",
        "Received: from x",
        "From ",
        "From x",
        ": no name",
        "Bad Name: v",
        "Date: Mon",
        "subject:x",
        " ",
        "\t",
        "folded",
        "\r\n",
        "\n",
        "\r",
        "\r\n\r\n",
        ":",
        "é",
        "Č: x",
        "\x0c",
        "\u2028",
        "x",
    ]
)


@settings(FAST, max_examples=400)
@given(st.lists(header_piece, max_size=16).map("".join))
def test_header_fields_are_what_the_stdlib_parser_reads(text: str) -> None:
    assert header_fields(text) == stdlib_fields(text)
