"""System ID 0x2A23 (Device Information Service 1.1, "System ID"): vectors and edges.

Round trips and arbitrary bytes run for every registered characteristic in
test_gatt_properties.py (this one's strategy is in gatt_strategies.py).

Sources of the vectors:

* DIS 1.1, "System ID": a system id derived from a Bluetooth address with OUI 0x123456 and
  company-assigned part 0x9ABCDE is 0x123456FFFE9ABCDE (FFFE inserted); GSS "System ID":
  Manufacturer Identifier (uint40) then Organizationally Unique Identifier (uint24), both
  little-endian, so its value on the wire is ``DE BC 9A FE FF 56 34 12``.
* Zephyr's DIS server (subsys/bluetooth/services/dis.c) writes the same layout:
  ``BT_BYTES_LIST_LE40(CONFIG_BT_DIS_SYSTEM_ID_IDENTIFIER)`` then
  ``BT_BYTES_LIST_LE24(CONFIG_BT_DIS_SYSTEM_ID_OUI)`` (an older version wrote the OUI first,
  most significant byte first: devices in the field may carry either; the bytes are kept
  as read, only their reading as an EUI-64 follows the specification).
* PHD IG 2.0.0 (HL7/phd, input/intro-notes/StructureDefinition-PhdDevice-notes.md): the
  EUI-64 as 8 two-digit capital hex bytes separated by dashes, ``FE-ED-AB-EE-DE-AD-77-C3``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import gatt as g
from protocols.errors import EncodeError
from protocols.gatt.errors import DecodeError

DIS_EXAMPLE = bytes.fromhex("DEBC9AFEFF563412")


def test_the_dis_example_is_the_eui64_oui_first() -> None:
    value = g.decode(g.SYSTEM_ID, DIS_EXAMPLE)
    assert value == g.SystemId(0xFFFE9ABCDE, 0x123456)
    assert isinstance(value, g.SystemId)
    assert value.eui64 == "12-34-56-FF-FE-9A-BC-DE"
    assert g.encode(value) == DIS_EXAMPLE


def test_the_ig_formats_an_eui64_in_capital_hex_with_dashes() -> None:
    """FE-ED-AB-EE-DE-AD-77-C3: OUI FE-ED-AB, manufacturer part EE-DE-AD-77-C3."""
    value = g.SystemId(0xEEDEAD77C3, 0xFEEDAB)
    assert value.eui64 == "FE-ED-AB-EE-DE-AD-77-C3"
    assert g.encode(value) == bytes.fromhex("C377ADDEEEABEDFE")


@pytest.mark.parametrize("size", [0, 1, 7, 9, 16])
def test_a_value_that_is_not_8_bytes_is_a_clear_error(size: int) -> None:
    with pytest.raises(DecodeError) as info:
        g.decode(g.SYSTEM_ID, bytes(size))
    assert info.value.characteristic == g.SYSTEM_ID
    assert "8" in info.value.reason
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("manufacturer", "oui"), [(1 << 40, 0), (-1, 0), (0, 1 << 24), (0, -1)])
def test_fields_out_of_range_do_not_encode(manufacturer: int, oui: int) -> None:
    with pytest.raises(EncodeError):
        g.encode(g.SystemId(manufacturer, oui))


@given(st.binary(min_size=8, max_size=8))
def test_every_8_bytes_decode_and_the_eui64_is_them_reversed(data: bytes) -> None:
    value = g.decode(g.SYSTEM_ID, data)
    assert isinstance(value, g.SystemId)
    assert value.eui64 == "-".join(f"{b:02X}" for b in reversed(data))


def test_a_system_id_from_a_bluetooth_address_inserts_fffe() -> None:
    """DIS 1.1's example: address 12:34:56:9A:BC:DE gives 0x123456FFFE9ABCDE."""
    assert g.encode(g.SystemId.from_address("12:34:56:9A:BC:DE")) == DIS_EXAMPLE
    assert g.SystemId.from_address("C0:FF:EE:00:0D:02").eui64 == "C0-FF-EE-FF-FE-00-0D-02"
    with pytest.raises(ValueError, match="not a Bluetooth address"):
        g.SystemId.from_address("C0:FF:EE")
