"""Consistent Overhead Byte Stuffing (COBS).

Reference: S. Cheshire and M. Baker, "Consistent Overhead Byte Stuffing", IEEE/ACM
Transactions on Networking 7(2), 1999. The encoder is the canonical one of the paper (and of
the reference C code): a final run of exactly 254 non-zero bytes is *not* followed by a
``0x01`` code byte. The decoder accepts that byte anyway.

Encoded output never contains ``0x00``, so a zero byte can delimit frames on the wire.
"""

from __future__ import annotations

from protocols.errors import DecodeError

_MAX_RUN = 254


def encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no trailing delimiter); overhead is at most 1 + len/254 bytes."""
    out = bytearray()
    chunks = bytes(data).split(b"\x00")
    last = len(chunks) - 1
    for i, chunk in enumerate(chunks):
        pos = 0
        remaining = len(chunk)
        while remaining >= _MAX_RUN:
            out.append(0xFF)
            out += chunk[pos : pos + _MAX_RUN]
            pos += _MAX_RUN
            remaining -= _MAX_RUN
        if i == last and remaining == 0 and pos > 0:
            break  # canonical: no 0x01 after a final 254-byte run
        out.append(remaining + 1)
        out += chunk[pos:]
    return bytes(out)


def decode(encoded: bytes) -> bytes:
    """Decode one COBS block sequence (delimiter already removed).

    Raises:
        DecodeError: on a zero byte inside the block or a code byte pointing past the end.
    """
    out = bytearray()
    i = 0
    n = len(encoded)
    while i < n:
        code = encoded[i]
        if code == 0:
            raise DecodeError("COBS frame", "zero byte inside a frame", offset=i)
        end = i + code
        if end > n:
            raise DecodeError("COBS frame", "code byte points past the end of the frame", offset=i)
        out += encoded[i + 1 : end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
