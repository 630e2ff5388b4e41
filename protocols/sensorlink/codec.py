"""CBOR payloads of sensor-link messages (docs/protocols/sensor-link.md §3).

Payloads are CBOR (RFC 8949) maps with small unsigned-integer keys, key ``0`` the message
type. Encoding is deterministic (RFC 8949 §4.2.1: shortest heads, definite lengths, keys in
ascending order), so both implementations produce the bytes of the test vectors. Decoding is
strict about the data model (an integer field must be an integer, not a float, bool or tagged
item; exactly one item per payload) and lenient where RFC 8949 §5.2 allows a generic decoder to
be: indefinite lengths and non-preferred heads are accepted on this side (the board rejects
them; senders never produce them). Unknown keys are ignored (spec §3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import cbor2

from protocols.errors import DecodeError, EncodeError
from protocols.sensorlink.messages import (
    Ack,
    Config,
    Error,
    Hello,
    HubHello,
    Message,
    MessageType,
    Ping,
    Pong,
    ReadingRow,
    Readings,
    Reboot,
    SensorRef,
    Time,
    UnknownMessage,
)

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
_I32_MIN = -(1 << 31)
_I32_MAX = (1 << 31) - 1


def _uint(m: dict[Any, Any], key: int, what: str, *, limit: int = _U64) -> int:
    v = m.get(key)
    if type(v) is not int or v < 0 or v > limit:
        raise DecodeError(what, f"key {key} must be an unsigned integer <= {limit}")
    return v


def _text(m: dict[Any, Any], key: int, what: str) -> str:
    v = m.get(key)
    if type(v) is not str:
        raise DecodeError(what, f"key {key} must be a text string")
    return v


def _pairs(m: dict[Any, Any], key: int, what: str) -> tuple[tuple[int, int], ...]:
    v = m.get(key, {})
    if type(v) is not dict:
        raise DecodeError(what, f"key {key} must be a map")
    out: list[tuple[int, int]] = []
    for k, x in v.items():
        if type(k) is not int or not 0 <= k <= 0xFF or type(x) is not int:
            raise DecodeError(what, f"key {key} must map kind codes to integers")
        if not _I32_MIN <= x <= _I32_MAX:
            raise DecodeError(what, f"key {key} value outside int32")
        out.append((k, x))
    return tuple(sorted(out))


def _hello(m: dict[Any, Any]) -> Hello | HubHello:
    what = "HELLO"
    version = _uint(m, 1, what, limit=0xFFFF)
    if 2 not in m:
        return HubHello(version)
    sensors = m.get(5)
    if type(sensors) is not list:
        raise DecodeError(what, "key 5 must be an array")
    refs: list[SensorRef] = []
    for s in sensors:
        if (
            type(s) is not list
            or len(s) != 2
            or type(s[0]) is not int
            or type(s[1]) is not int
            or not 0 <= s[0] <= 0xFF
            or not 0 <= s[1] <= 0xFF
        ):
            raise DecodeError(what, "sensor must be [kind, index] of uint8")
        refs.append(SensorRef(s[0], s[1]))
    return Hello(
        version=version,
        board_id=_text(m, 2, what),
        boot_id=_uint(m, 3, what, limit=_U32),
        firmware=_text(m, 4, what),
        sensors=tuple(refs),
        capabilities=_uint(m, 6, what, limit=_U32),
        max_frame=_uint(m, 7, what, limit=0xFFFF),
        selftest=_uint(m, 8, what, limit=_U32),
    )


def _readings(m: dict[Any, Any]) -> Readings:
    what = "READINGS"
    boot_id = _uint(m, 1, what, limit=_U32)
    first_seq = _uint(m, 2, what, limit=_U32)
    base_seq = _uint(m, 3, what, limit=_U32)
    raw = m.get(4)
    if type(raw) is not list or not raw:
        raise DecodeError(what, "key 4 must be a non-empty array")
    if first_seq + len(raw) - 1 > _U32 or base_seq > first_seq:
        raise DecodeError(what, "sequence numbers out of range")
    out: list[ReadingRow] = []
    append = out.append
    for r in raw:
        if type(r) is not list:
            raise DecodeError(what, "a reading must be an array")
        n = len(r)
        if n == 4:
            kind, index, mono_ms, value = r
            wall_ms = None
        elif n == 5:
            kind, index, mono_ms, value, wall_ms = r
            if type(wall_ms) is not int or not 0 <= wall_ms <= _U64:
                raise DecodeError(what, "wall_ms must be an unsigned integer")
        else:
            raise DecodeError(what, "a reading has 4 or 5 elements")
        if (
            type(kind) is not int
            or type(index) is not int
            or type(mono_ms) is not int
            or type(value) is not int
            or not 0 <= kind <= 0xFF
            or not 0 <= index <= 0xFF
            or not 0 <= mono_ms <= _U64
            or not _I32_MIN <= value <= _I32_MAX
        ):
            raise DecodeError(what, "reading fields have the wrong type or range")
        append(ReadingRow(kind, index, mono_ms, value, wall_ms))
    return Readings(boot_id, first_seq, base_seq, tuple(out))


def _ack(m: dict[Any, Any]) -> Ack:
    return Ack(_uint(m, 1, "ACK", limit=_U32), _uint(m, 2, "ACK", limit=_U32))


def _time(m: dict[Any, Any]) -> Time:
    return Time(_uint(m, 1, "TIME"))


def _config(m: dict[Any, Any]) -> Config:
    return Config(_pairs(m, 1, "CONFIG"), _pairs(m, 2, "CONFIG"))


def _ping(m: dict[Any, Any]) -> Ping:
    return Ping(_uint(m, 1, "PING", limit=_U32))


def _pong(m: dict[Any, Any]) -> Pong:
    w = "PONG"
    return Pong(
        _uint(m, 1, w, limit=_U32),
        _uint(m, 2, w, limit=_U32),
        _uint(m, 3, w, limit=_U32),
        _uint(m, 4, w, limit=_U32),
        _uint(m, 5, w, limit=_U32),
    )


def _reboot(m: dict[Any, Any]) -> Reboot:
    del m
    return Reboot()


def _error(m: dict[Any, Any]) -> Error:
    return Error(_uint(m, 1, "ERROR", limit=0xFFFF), _uint(m, 2, "ERROR", limit=0xFF))


_DECODERS: dict[int, Callable[[dict[Any, Any]], Message]] = {
    MessageType.HELLO: _hello,
    MessageType.READINGS: _readings,
    MessageType.ACK: _ack,
    MessageType.TIME: _time,
    MessageType.CONFIG: _config,
    MessageType.PING: _ping,
    MessageType.PONG: _pong,
    MessageType.REBOOT: _reboot,
    MessageType.ERROR: _error,
}


def decode_payload(payload: bytes) -> Message | UnknownMessage:
    """Decode one frame payload into a message (either direction).

    Raises:
        DecodeError: ``what`` is ``"CBOR payload"`` for bytes that are not one well-formed
            CBOR item, else the message name; ``reason`` never contains field values.
    """
    fp = BytesIO(payload)
    try:
        item = cbor2.CBORDecoder(fp).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError("CBOR payload", type(exc).__name__) from exc
    if fp.tell() != len(payload):
        raise DecodeError("CBOR payload", "trailing bytes after the item", offset=fp.tell())
    if type(item) is not dict:
        raise DecodeError("CBOR payload", "top level must be a map")
    mtype = item.get(0)
    if type(mtype) is not int or mtype < 0:
        raise DecodeError("CBOR payload", "key 0 (type) must be an unsigned integer")
    decoder = _DECODERS.get(mtype)
    if decoder is None:
        return UnknownMessage(mtype)
    return decoder(item)


def _check_uint(value: int, what: str, limit: int = _U64) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise EncodeError(what, f"must be an unsigned integer <= {limit}")
    return value


def to_cbor_item(msg: Message) -> dict[int, Any]:
    """The CBOR data model of ``msg`` (a map with keys in ascending order)."""
    match msg:
        case Hello():
            return {
                0: MessageType.HELLO.value,
                1: _check_uint(msg.version, "HELLO.version", 0xFFFF),
                2: msg.board_id,
                3: _check_uint(msg.boot_id, "HELLO.boot_id", _U32),
                4: msg.firmware,
                5: [[s.kind, s.index] for s in msg.sensors],
                6: msg.capabilities,
                7: msg.max_frame,
                8: msg.selftest,
            }
        case HubHello():
            return {0: MessageType.HELLO.value, 1: _check_uint(msg.version, "HELLO.version")}
        case Readings():
            if not msg.readings:
                raise EncodeError("READINGS", "at least one reading")
            rows: list[list[int]] = []
            for r in msg.readings:
                row = [r.kind, r.index, r.mono_ms, r.value]
                if r.wall_ms is not None:
                    row.append(r.wall_ms)
                rows.append(row)
            return {
                0: MessageType.READINGS.value,
                1: _check_uint(msg.boot_id, "READINGS.boot_id", _U32),
                2: _check_uint(msg.first_seq, "READINGS.first_seq", _U32),
                3: _check_uint(msg.base_seq, "READINGS.base_seq", _U32),
                4: rows,
            }
        case Ack():
            return {
                0: MessageType.ACK.value,
                1: _check_uint(msg.boot_id, "ACK.boot_id", _U32),
                2: _check_uint(msg.seq, "ACK.seq", _U32),
            }
        case Time():
            return {0: MessageType.TIME.value, 1: _check_uint(msg.wall_ms, "TIME.wall_ms")}
        case Config():
            item: dict[int, Any] = {0: MessageType.CONFIG.value}
            if msg.intervals_ms:
                item[1] = dict(sorted(msg.intervals_ms))
            if msg.thresholds:
                item[2] = dict(sorted(msg.thresholds))
            return item
        case Ping():
            return {0: MessageType.PING.value, 1: _check_uint(msg.nonce, "PING.nonce", _U32)}
        case Pong():
            return {
                0: MessageType.PONG.value,
                1: msg.nonce,
                2: msg.pending,
                3: msg.dropped,
                4: msg.bad_frames,
                5: msg.unknown,
            }
        case Reboot():
            return {0: MessageType.REBOOT.value}
        case Error():
            return {0: MessageType.ERROR.value, 1: msg.code, 2: msg.about}


def encode_payload(msg: Message) -> bytes:
    """Deterministic CBOR encoding (RFC 8949 §4.2.1) of ``msg``.

    Raises:
        EncodeError: a field is out of its range.
    """
    try:
        return bytes(cbor2.dumps(to_cbor_item(msg), canonical=True))
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError(type(msg).__name__, type(exc).__name__) from exc
