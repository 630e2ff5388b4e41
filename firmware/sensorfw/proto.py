"""Sensor-link v1 messages on the board side (sensor-link.md §3).

Encoders build the CBOR maps with keys in ascending order so the bytes match the shared test
vectors; :func:`decode` turns a hub payload into ``(type, fields)`` with the spec's field names.
"""

from micropython import const

from sensorfw import cbor

PROTOCOL_VERSION = const(1)

HELLO = const(1)
READINGS = const(2)
ACK = const(3)
TIME = const(4)
CONFIG = const(5)
PING = const(6)
PONG = const(7)
REBOOT = const(8)
ERROR = const(9)

ERR_MALFORMED = const(1)
ERR_UNSUPPORTED_VERSION = const(2)
ERR_OUT_OF_RANGE = const(3)
ERR_UNSUPPORTED = const(4)

CAP_FLASH_LOG = const(1)
CAP_TIME = const(2)
CAP_CONFIG = const(4)
CAP_REBOOT = const(8)

_U32 = const(0xFFFFFFFF)


def encode_hello(
    board_id: str,
    boot_id: int,
    firmware: str,
    sensors: list,
    capabilities: int,
    max_frame: int,
    selftest: int,
) -> bytes:
    return cbor.encode(
        {
            0: HELLO,
            1: PROTOCOL_VERSION,
            2: board_id,
            3: boot_id,
            4: firmware,
            5: sensors,
            6: capabilities,
            7: max_frame,
            8: selftest,
        }
    )


def encode_readings_into(
    buf: bytearray, boot_id: int, first_seq: int, base_seq: int, rows: list
) -> None:
    """READINGS; ``rows`` are ``[kind, index, mono_ms, value]`` or with ``wall_ms`` appended."""
    cbor.encode_into(buf, {0: READINGS, 1: boot_id, 2: first_seq, 3: base_seq, 4: rows})


def encode_readings(boot_id: int, first_seq: int, base_seq: int, rows: list) -> bytes:
    buf = bytearray()
    encode_readings_into(buf, boot_id, first_seq, base_seq, rows)
    return bytes(buf)


def encode_config(intervals_ms: dict, thresholds: dict) -> bytes:
    m: dict = {0: CONFIG}
    if intervals_ms:
        m[1] = {k: intervals_ms[k] for k in sorted(intervals_ms)}
    if thresholds:
        m[2] = {k: thresholds[k] for k in sorted(thresholds)}
    return cbor.encode(m)


def encode_pong(nonce: int, pending: int, dropped: int, bad_frames: int, unknown: int) -> bytes:
    return cbor.encode({0: PONG, 1: nonce, 2: pending, 3: dropped, 4: bad_frames, 5: unknown})


def encode_error(code: int, about: int) -> bytes:
    return cbor.encode({0: ERROR, 1: code, 2: about})


def _uint(m: dict, key: int, limit: int) -> int:
    v = m.get(key)
    if type(v) is not int or v < 0 or v > limit:
        raise ValueError("bad field")
    return v


def _pairs(m: dict, key: int) -> dict:
    v = m.get(key, {})
    if type(v) is not dict:
        raise ValueError("bad field")
    for k in v:
        if type(k) is not int or type(v[k]) is not int or k < 0 or k > 0xFF:
            raise ValueError("bad field")
    return v


def decode(payload: bytes) -> tuple:
    """Return ``(type, fields)`` for a hub message; ``(type, None)`` for a type the board does
    not receive. Raises ValueError for a malformed payload."""
    m = cbor.decode(payload)
    if type(m) is not dict:
        raise ValueError("not a map")
    t = m.get(0)
    if type(t) is not int or t < 0:
        raise ValueError("bad type")
    if t == HELLO:
        if 2 in m:
            return t, None  # a board HELLO: not for us
        return t, {"version": _uint(m, 1, 0xFFFF)}
    if t == ACK:
        return t, {"boot_id": _uint(m, 1, _U32), "seq": _uint(m, 2, _U32)}
    if t == TIME:
        return t, {"wall_ms": _uint(m, 1, 0xFFFFFFFFFFFFFFFF)}
    if t == CONFIG:
        return t, {"intervals_ms": _pairs(m, 1), "thresholds": _pairs(m, 2)}
    if t == PING:
        return t, {"nonce": _uint(m, 1, _U32)}
    if t == REBOOT:
        return t, {}
    if t == ERROR:
        return t, {"code": _uint(m, 1, 0xFFFF), "about": _uint(m, 2, 0xFF)}
    return t, None
