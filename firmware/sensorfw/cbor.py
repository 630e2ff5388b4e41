"""A small CBOR codec for the sensor link (RFC 8949).

Subset: unsigned and negative integers up to 64 bits (major types 0 and 1), byte and text
strings (2, 3), arrays (4), maps (5), and the simple values false/true/null (major 7).
Floats, tags and indefinite lengths are rejected on decode: the link never uses them
(sensor-link.md §3.1). The encoder is deterministic (RFC 8949 §4.2.1): shortest argument,
definite lengths, map keys in bytewise order of their encodings.
"""

from micropython import const

_MAX_DEPTH = const(8)


def _head(buf: bytearray, major: int, n: int) -> None:
    # RFC 8949 §3: initial byte = major type << 5 | additional information
    mt = major << 5
    if n < 24:
        buf.append(mt | n)
    elif n < 0x100:
        buf.append(mt | 24)
        buf.append(n)
    elif n < 0x10000:
        buf.append(mt | 25)
        buf.extend(n.to_bytes(2, "big"))
    elif n < 0x100000000:
        buf.append(mt | 26)
        buf.extend(n.to_bytes(4, "big"))
    elif n < 0x10000000000000000:
        buf.append(mt | 27)
        buf.extend(n.to_bytes(8, "big"))
    else:
        raise ValueError("int too large")


def encode_into(buf: bytearray, obj: object) -> None:
    """Append the CBOR encoding of ``obj`` to ``buf``."""
    if obj is True:
        buf.append(0xF5)
    elif obj is False:
        buf.append(0xF4)
    elif obj is None:
        buf.append(0xF6)
    elif isinstance(obj, int):
        if obj >= 0:
            _head(buf, 0, obj)
        else:
            _head(buf, 1, -1 - obj)
    elif isinstance(obj, str):
        b = obj.encode()
        _head(buf, 3, len(b))
        buf.extend(b)
    elif isinstance(obj, (bytes, bytearray)):
        _head(buf, 2, len(obj))
        buf.extend(obj)
    elif isinstance(obj, (list, tuple)):
        _head(buf, 4, len(obj))
        for x in obj:
            encode_into(buf, x)
    elif isinstance(obj, dict):
        # RFC 8949 §4.2.1: keys sorted by the bytewise order of their encodings
        # (MicroPython dicts do not keep insertion order).
        keys = []
        for k in obj:
            enc_k = bytearray()
            encode_into(enc_k, k)
            keys.append((bytes(enc_k), k))
        keys.sort(key=lambda x: x[0])
        _head(buf, 5, len(obj))
        for key_bytes, k in keys:
            buf.extend(key_bytes)
            encode_into(buf, obj[k])
    else:
        raise TypeError("unsupported type")


def encode(obj: object) -> bytes:
    """Return the CBOR encoding of ``obj``."""
    buf = bytearray()
    encode_into(buf, obj)
    return bytes(buf)


def _arg(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    if info == 24:
        size = 1
    elif info == 25:
        size = 2
    elif info == 26:
        size = 4
    elif info == 27:
        size = 8
    else:
        raise ValueError("indefinite or reserved length")
    end = pos + size
    if end > len(data):
        raise ValueError("truncated")
    return int.from_bytes(data[pos:end], "big"), end


def _decode(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    if depth > _MAX_DEPTH:
        raise ValueError("too deeply nested")
    if pos >= len(data):
        raise ValueError("truncated")
    ib = data[pos]
    major = ib >> 5
    info = ib & 0x1F
    pos += 1
    if major == 7:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info == 22:
            return None, pos
        raise ValueError("float or simple value")
    n, pos = _arg(data, pos, info)
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major == 2 or major == 3:
        end = pos + n
        if end > len(data):
            raise ValueError("truncated")
        raw: bytes = bytes(data[pos:end])
        if major == 2:
            return raw, end
        try:
            return raw.decode(), end
        except UnicodeError:
            raise ValueError("invalid UTF-8")
    if major == 4:
        if n > len(data) - pos:
            raise ValueError("truncated")
        items = []
        for _ in range(n):
            x, pos = _decode(data, pos, depth + 1)
            items.append(x)
        return items, pos
    if major == 5:
        if 2 * n > len(data) - pos:
            raise ValueError("truncated")
        m = {}
        for _ in range(n):
            k, pos = _decode(data, pos, depth + 1)
            if isinstance(k, (list, dict)):
                raise ValueError("unhashable key")
            v, pos = _decode(data, pos, depth + 1)
            m[k] = v
        return m, pos
    raise ValueError("tag")


def decode(data: bytes) -> object:
    """Decode exactly one CBOR item; raise ValueError on anything else."""
    obj, pos = _decode(data, 0, 0)
    if pos != len(data):
        raise ValueError("trailing bytes")
    return obj
