"""Sensor-link framing: COBS(payload || CRC-32) 0x00 (sensor-link.md §2).

COBS: S. Cheshire and M. Baker, "Consistent Overhead Byte Stuffing", 1999 (canonical
encoder: no 0x01 after a final 254-byte run). CRC-32/ISO-HDLC from the CRC catalogue
(check 0xCBF43926), appended big-endian.
"""

from micropython import const

MAX_FRAME_BYTES = const(512)

try:
    from binascii import crc32 as _crc32

    def crc32(data: bytes | bytearray | memoryview) -> int:
        return _crc32(data) & 0xFFFFFFFF

except ImportError:  # a port built without binascii.crc32
    _TABLE = []
    for _i in range(256):
        _c = _i
        for _ in range(8):
            _c = (_c >> 1) ^ 0xEDB88320 if _c & 1 else _c >> 1
        _TABLE.append(_c)

    def crc32(data: bytes | bytearray | memoryview) -> int:
        c = 0xFFFFFFFF
        for b in data:
            c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
        return c ^ 0xFFFFFFFF


def cobs_encode(data: bytes | bytearray) -> bytearray:
    """COBS-encode ``data`` (no delimiter)."""
    out = bytearray()
    code_pos = 0
    out.append(0)
    code = 1
    n = len(data)
    for i in range(n):
        b = data[i]
        if b == 0:
            out[code_pos] = code
            code_pos = len(out)
            out.append(0)
            code = 1
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_pos] = code
                code = 1
                if i + 1 < n:
                    code_pos = len(out)
                    out.append(0)
                else:
                    return out
    out[code_pos] = code
    return out


def cobs_decode(data: bytes | bytearray) -> bytearray:
    """Decode one COBS frame (no delimiter); raise ValueError if malformed."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError("zero in frame")
        end = i + code
        if end > n:
            raise ValueError("code past end")
        out.extend(data[i + 1 : end])
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return out


def encode_frame(payload: bytes) -> bytearray:
    """Wire bytes of one frame, delimiter included."""
    body = bytearray(payload)
    body.extend(crc32(payload).to_bytes(4, "big"))
    out = cobs_encode(body)
    if len(out) > MAX_FRAME_BYTES:
        raise ValueError("frame too large")
    out.append(0)
    return out


def decode_frame(encoded: bytes | bytearray) -> bytes:
    """Check one frame (delimiter removed); return the payload or raise ValueError."""
    body = cobs_decode(encoded)
    if len(body) <= 4:
        raise ValueError("too short")
    payload = bytes(body[:-4])
    if crc32(payload) != int.from_bytes(bytes(body[-4:]), "big"):
        raise ValueError("crc")
    return payload


class FrameReader:
    """Split received bytes into checked payloads; bounded buffer, resync on delimiter."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._max = max_frame_bytes
        self._buf = bytearray()
        self._discarding = False
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Return the payloads of the good frames completed by ``data``; count bad ones."""
        out = []
        for b in data:
            if b == 0:
                if self._discarding:
                    self._discarding = False
                elif self._buf:
                    try:
                        out.append(decode_frame(self._buf))
                    except ValueError:
                        self.bad_frames += 1
                    self._buf = bytearray()
            elif not self._discarding:
                if len(self._buf) >= self._max:
                    self._buf = bytearray()
                    self._discarding = True
                    self.bad_frames += 1
                else:
                    self._buf.append(b)
        return out
