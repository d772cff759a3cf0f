"""Modified UTF-7 folder names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import pytest

from services.imap import mutf7

VECTORS = [
    ("INBOX", "INBOX"),
    ("Projekty/Čeština", "Projekty/&AQw-e&AWE-tina"),
    ("&", "&-"),
    ("A&B", "A&-B"),
    ("日本語", "&ZeVnLIqe-"),
    ("Koš", "Ko&AWE-"),
    ("Odeslaná pošta", "Odeslan&AOE- po&AWE-ta"),
    # The example of RFC 3501 5.1.3: "/" of base64 is "," in modified BASE64.
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    # Outside the BMP: a UTF-16 surrogate pair in one shift sequence.
    ("😀", "&2D3eAA-"),
    ("", ""),
]


@pytest.mark.parametrize(("decoded", "encoded"), VECTORS)
def test_encode_known_vectors(decoded: str, encoded: str) -> None:
    assert mutf7.encode(decoded) == encoded


@pytest.mark.parametrize(("decoded", "encoded"), VECTORS)
def test_decode_known_vectors(decoded: str, encoded: str) -> None:
    assert mutf7.decode(encoded) == decoded


def test_encode_shifts_control_characters_out_of_ascii() -> None:
    """Only printable US-ASCII stands for itself; DEL and controls are base64'd."""
    encoded = mutf7.encode("a\x7fb\tc")
    assert encoded.startswith("a&") and "\x7f" not in encoded and "\t" not in encoded
    assert mutf7.decode(encoded) == "a\x7fb\tc"


def test_encode_keeps_a_run_of_non_ascii_in_one_shift_sequence() -> None:
    assert mutf7.encode("Čš").count("&") == 1


def test_decode_rejects_an_unterminated_shift_sequence() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        mutf7.decode("Ko&AWE")
