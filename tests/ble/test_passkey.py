"""The passkey a technician types or writes in a file (Agent API: 0-999999, six digits)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ble.pairing import PairingInput, PasskeyFormatError, parse_passkey


@given(st.integers(min_value=0, max_value=999_999))
def test_every_passkey_round_trips_padded_or_not(passkey: int) -> None:
    assert parse_passkey(f"{passkey:06d}") == passkey
    assert parse_passkey(f" {passkey}\n") == passkey


@given(st.text(max_size=12))
def test_arbitrary_text_is_a_passkey_or_a_typed_error(text: str) -> None:
    digits = text.strip()
    if digits.isascii() and digits.isdigit() and len(digits) <= 6:
        assert parse_passkey(text) == int(digits)
        return
    with pytest.raises(PasskeyFormatError, match="6-digit") as refused:
        parse_passkey(text, "typed")
    assert isinstance(refused.value, ValueError)
    assert refused.value.where == "typed"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a number"),
        ("12a456", "not a number"),
        ("1234567", "7 digits"),
        ("١٢٣٤٥٦", "not a number"),
        ("-12345", "not a number"),
    ],
)
def test_what_is_not_a_passkey(text: str, reason: str) -> None:
    with pytest.raises(PasskeyFormatError) as refused:
        parse_passkey(text)
    assert refused.value.reason == reason


async def test_passkey_file_is_read_and_checked_before_pairing(tmp_path: Path) -> None:
    good = tmp_path / "passkey"
    good.write_text("004711\n")
    source = PairingInput.from_file(good).passkey
    assert source is not None
    assert await source("AA:BB:CC:DD:EE:FF") == 4711
    bad = tmp_path / "bad"
    bad.write_text("47 11")
    with pytest.raises(PasskeyFormatError) as refused:
        PairingInput.from_file(bad)
    assert refused.value.where == str(bad)
    with pytest.raises(PasskeyFormatError, match="cannot be read"):
        PairingInput.from_file(tmp_path / "missing")
