"""The E2E-CRC of the Bluetooth health services (CGMS, BLS 1.1 records).

CGMS 1.0.2 section 3.11 *CRC Calculation* (the GATT Specification Supplement refers to it as
``sec:crc_calculation``): CRC-CCITT with the generator polynomial x^16 + x^12 + x^5 + 1
(0x1021), seed 0xFFFF, processed least significant bit first (the reflected form, polynomial
0x8408), no final XOR. This is the catalogue's CRC-16/MCRF4XX: check value 0x6F91 for the ASCII
bytes ``123456789``. The CRC is computed over every field of the value before the E2E-CRC field
and sent as a little-endian uint16.

A wrong CRC is an :class:`E2ECrcError`, a :class:`~protocols.gatt.DecodeError`: the value is
refused, never turned into a reading.
"""

from __future__ import annotations

from protocols.gatt.errors import DecodeError

#: Size of the E2E-CRC field in bytes.
E2E_CRC_SIZE = 2

#: The E2E-CRC field value a CGM Feature carries when the sensor does not support E2E-CRC
#: (CGMS 1.0.2 section 3.2).
CRC_NOT_SUPPORTED = 0xFFFF


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc16_mcrf4xx(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-CCITT, seed 0xFFFF, LSB first (CGMS 1.0.2 section 3.11); ``crc`` continues a CRC."""
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


class E2ECrcError(DecodeError):
    """A value's E2E-CRC does not match its bytes (CGMS 1.0.2 section 3.11).

    Attributes (besides :class:`~protocols.gatt.DecodeError`'s):
        received: the CRC the peer sent.
        computed: the CRC of the bytes it covers.
    """

    def __init__(
        self, characteristic: int | None, name: str, *, received: int, computed: int, offset: int
    ) -> None:
        self.received = received
        self.computed = computed
        reason = f"E2E-CRC mismatch: received 0x{received:04X}, computed 0x{computed:04X}"
        super().__init__(characteristic, name, reason, offset=offset)


def check_e2e_crc(
    data: bytes, start: int, end: int, *, characteristic: int | None, name: str
) -> None:
    """Check the CRC at ``data[end:end + 2]`` against the CRC of ``data[start:end]``."""
    received = data[end] | data[end + 1] << 8
    computed = crc16_mcrf4xx(memoryview(data)[start:end])
    if received != computed:
        raise E2ECrcError(characteristic, name, received=received, computed=computed, offset=end)


def with_e2e_crc(data: bytes) -> bytes:
    """``data`` followed by its E2E-CRC (little-endian)."""
    return data + crc16_mcrf4xx(data).to_bytes(2, "little")
