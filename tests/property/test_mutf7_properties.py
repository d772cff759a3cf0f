"""Folder names: modified UTF-7 and LIST quoting, for any name."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from services.imap import mutf7
from services.imap.folders import parse_list_line, quote
from tests.property.strategies import FAST

# st.text() never draws lone surrogates, which no folder name can hold.
names = st.text(max_size=40)


@FAST
@given(names)
def test_decode_inverts_encode(name: str) -> None:
    assert mutf7.decode(mutf7.encode(name)) == name


@FAST
@given(names)
def test_encoded_names_are_printable_ascii(name: str) -> None:
    assert all(0x20 <= ord(ch) <= 0x7E for ch in mutf7.encode(name))


@FAST
@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != "&")
    )
)
def test_printable_ascii_without_ampersand_is_unchanged(name: str) -> None:
    assert mutf7.encode(name) == name


@FAST
@given(names.filter(bool), st.sampled_from([b'"/"', b'"."', b"NIL"]))
def test_list_line_with_a_quoted_encoded_name_gives_the_name_back(
    name: str, delimiter: bytes
) -> None:
    assume(name.upper() != "INBOX")
    wire = mutf7.encode(name)
    folder = parse_list_line(b"(\\HasNoChildren) " + delimiter + b" " + quote(wire).encode())
    assert folder is not None
    assert folder.wire_name == wire
    assert folder.name == name
