"""Sensor-link framing: ``COBS(payload || CRC-32) 0x00`` (docs/protocols/sensor-link.md §2).

The check value is CRC-32/ISO-HDLC from the CRC catalogue (Greg Cook, "Catalogue of
parametrised CRC algorithms": poly 0x04C11DB7, init 0xFFFFFFFF, refin/refout true,
xorout 0xFFFFFFFF, check 0xCBF43926), the same CRC as zlib and Ethernet. It is appended
big-endian. COBS is Cheshire & Baker (1999), see :mod:`protocols.sensorlink.cobs`.

:class:`FrameDecoder` is sans-I/O: bytes in, complete payloads or :class:`BadFrame` out. It
buffers at most ``max_frame_bytes`` bytes of a partial frame; past that it reports the frame
as oversized and discards bytes until the next delimiter. Nothing is ever raised from
:meth:`FrameDecoder.receive_data`.
"""

from __future__ import annotations

import enum
from binascii import crc32
from dataclasses import dataclass

from protocols.errors import DecodeError, EncodeError
from protocols.sensorlink import cobs

DELIMITER = 0x00
#: Largest encoded frame, delimiter excluded (spec §2.3). Both ends enforce it.
MAX_FRAME_BYTES = 512
CRC_BYTES = 4
#: Largest payload that still fits a frame after COBS overhead and the CRC.
MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - 1 - (MAX_FRAME_BYTES // 254) - CRC_BYTES


class BadFrameReason(enum.Enum):
    """Why a frame was dropped (spec §2.4)."""

    OVERSIZED = "oversized"
    COBS = "cobs"
    TOO_SHORT = "too-short"
    CRC = "crc"
    CBOR = "cbor"
    SCHEMA = "schema"


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that was dropped; the decoder has resynchronised on the next delimiter.

    Attributes:
        reason: the check that failed.
        offset: stream byte offset of the frame's first byte (counted from the first byte
            this decoder received); ``None`` when the payload, not the frame, was bad.
        length: encoded length seen (for an oversized frame: the bytes seen when it was cut).
        detail: the :class:`DecodeError` text, without any payload values.
    """

    reason: BadFrameReason
    offset: int | None
    length: int
    detail: str = ""


def crc32_of(data: bytes) -> int:
    """CRC-32/ISO-HDLC of ``data`` (catalogue check value ``0xCBF43926`` for ``b"123456789"``)."""
    return crc32(data) & 0xFFFFFFFF


def encode_frame(payload: bytes, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Return the wire bytes of one frame: ``COBS(payload || CRC-32 big-endian) 0x00``.

    Raises:
        EncodeError: if the payload is empty or the frame would exceed ``max_frame_bytes``.
    """
    if not payload:
        raise EncodeError("sensor-link frame", "empty payload")
    body = payload + crc32_of(payload).to_bytes(CRC_BYTES, "big")
    encoded = cobs.encode(body)
    if len(encoded) > max_frame_bytes:
        raise EncodeError(
            "sensor-link frame", f"{len(encoded)} bytes exceeds the {max_frame_bytes}-byte limit"
        )
    return encoded + b"\x00"


def decode_frame(encoded: bytes) -> bytes:
    """Check and strip one frame (delimiter removed) and return its payload.

    Raises:
        DecodeError: ``what`` is ``"COBS frame"`` or ``"sensor-link frame"``.
    """
    body = cobs.decode(encoded)
    if len(body) <= CRC_BYTES:
        raise DecodeError("sensor-link frame", f"{len(body)}-byte body is too short", offset=0)
    payload = body[:-CRC_BYTES]
    if crc32_of(payload) != int.from_bytes(body[-CRC_BYTES:], "big"):
        raise DecodeError("sensor-link frame", "CRC-32 mismatch", offset=len(payload))
    return payload


class FrameDecoder:
    """Split a byte stream into checked frame payloads (sans-I/O).

    Args:
        max_frame_bytes: the hard cap on buffered bytes of a partial frame.
    """

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._max = max_frame_bytes
        self._buf = bytearray()
        self._discarding = False
        self._frame_offset = 0  # stream offset of the first byte in _buf
        self._consumed = 0  # stream offset of the next byte to arrive

    @property
    def buffered_bytes(self) -> int:
        """Bytes of an incomplete frame held right now (never more than the cap)."""
        return len(self._buf)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[bytes | BadFrame]:
        """Feed bytes; return payloads of complete good frames and :class:`BadFrame` events."""
        chunk = bytes(data)
        out: list[bytes | BadFrame] = []
        base = self._consumed
        self._consumed += len(chunk)
        start = 0
        while True:
            zero = chunk.find(b"\x00", start)
            if zero < 0:
                self._hold(chunk, start, base, out)
                return out
            if self._discarding:
                self._discarding = False
            elif self._buf:
                self._buf += chunk[start:zero]
                frame = bytes(self._buf)
                self._buf.clear()
                self._emit(frame, self._frame_offset, out)
            elif zero > start:
                self._emit(chunk[start:zero], base + start, out)
            start = zero + 1
            self._frame_offset = base + start

    def _hold(self, chunk: bytes, start: int, base: int, out: list[bytes | BadFrame]) -> None:
        if self._discarding or start >= len(chunk):
            return
        if not self._buf:
            self._frame_offset = base + start
        if len(self._buf) + len(chunk) - start > self._max:
            seen = len(self._buf) + len(chunk) - start
            self._buf.clear()
            self._discarding = True
            out.append(
                BadFrame(
                    BadFrameReason.OVERSIZED,
                    self._frame_offset,
                    seen,
                    f"more than {self._max} bytes without a delimiter",
                )
            )
            return
        self._buf += chunk[start:]

    def _emit(self, frame: bytes, offset: int, out: list[bytes | BadFrame]) -> None:
        if len(frame) > self._max:
            out.append(
                BadFrame(
                    BadFrameReason.OVERSIZED, offset, len(frame), f"more than {self._max} bytes"
                )
            )
            return
        try:
            out.append(decode_frame(frame))
        except DecodeError as exc:
            reason = (
                BadFrameReason.COBS
                if exc.what == "COBS frame"
                else BadFrameReason.CRC
                if "CRC" in exc.reason
                else BadFrameReason.TOO_SHORT
            )
            out.append(BadFrame(reason, offset, len(frame), str(exc)))
