"""The columnar body of an uplink batch: readings grouped by stream, CBOR (RFC 8949) arrays.

A *stream* is every reading of a batch with the same (stream name, device, MDC code, unit);
in SenML (RFC 8428) terms the device is the base name (``bn``), the stream name the name
(``n``), the unit the base unit (``bu``) and the batch's creation time the base time
(``bt``). Per stream:

- times: the first time relative to the base time, then deltas (or deltas of deltas, as
  Gorilla does, when that is smaller), or the index of an earlier stream with the same times;
- values: exact decimals as scaled integers. With ``E`` the smallest decimal exponent in the
  stream, every value ``m x 10**e`` becomes ``M = m x 10**(e - E)``; the greatest common
  divisor ``g`` of all ``M`` is taken out (``q = M / g``: 1/1024 s RR intervals in ms become
  small integers again), and the ``q`` are delta-encoded. The exponent of each value is given
  by a rule (all ``E``; or ``M``'s trailing zeros stripped, as a normalised decimal has), with
  exceptions listed, or, when no rule fits, by an explicit exponent column. So
  ``Decimal('37.20')`` comes back as ``37.20``, and negative zero as ``-0``;
- special values (11073 NaN, NRes, +/-INF, reserved, or any other name) and flag sets as sparse
  exceptions.

Readings come back in the order they went in: when that order is the stream-interleaving by
(time, stream index) no order column is sent, otherwise one stream index per reading is.

Everything read is type-checked and bounded; bad input raises :class:`MalformedBatchError`.
See ``docs/protocols/uplink.md`` for the CDDL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from itertools import accumulate
from operator import attrgetter
from typing import Any

import cbor2

from protocols.errors import DecodeError, EncodeError
from protocols.uplink.reading import WireReading

#: Most readings in one batch.
MAX_READINGS = 100_000
#: Most digits in one value's mantissa, and the largest decimal exponent magnitude (the
#: default ``decimal`` context's ``Emax``).
MAX_DIGITS = 1_000
MAX_EXPONENT = 999_999
#: Largest exponent spread within a stream that values are scaled across (else explicit).
MAX_SPREAD = 30
#: Times are signed 64-bit milliseconds; MDC codes are 32-bit (partition x 65536 + term).
MAX_ABS_TIME_MS = 2**63 - 1
MAX_MDC_CODE = 2**32 - 1
#: Special values with a short code on the wire (health-profiles.md section 1.3).
SPECIAL_CODES: tuple[str, ...] = ("nan", "nres", "+inf", "-inf", "reserved")

RULE_FIXED = 0
RULE_NORMALISED = 1
RULE_EXPLICIT = 2
TIMES_DELTA = 0
#: Largest lag of the time residuals (see :func:`encode_times`).
MAX_TIME_LAG = 8

#: CBOR tag for an IEEE MAC address (RFC 9542 section 3.3).
TAG_MAC_ADDRESS = 48
_MAC = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}")
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")

_SPECIAL_INDEX = {name: i for i, name in enumerate(SPECIAL_CODES)}
_POW10 = [10**i for i in range(MAX_SPREAD + 1)]
_MAX_SCALED = 10 ** (MAX_DIGITS + MAX_SPREAD)
_CACHE_LIMIT = 8192
_split_cache: dict[str, tuple[int, int, bool]] = {}
_join_cache: dict[tuple[int, int], Decimal] = {}

Key = tuple[str, str, int, str]


class MalformedBatchError(DecodeError):
    """A batch whose bytes are not a valid batch of this format (``where`` says what part)."""

    def __init__(self, reason: str, *, where: str = "") -> None:
        self.where = where
        super().__init__("uplink batch", f"{where}: {reason}" if where else reason)


def _fail(where: str, reason: str) -> MalformedBatchError:
    return MalformedBatchError(reason, where=where)


# -- exact decimals --------------------------------------------------------------------------


def split_decimal(value: Decimal) -> tuple[int, int, bool]:
    """``(signed mantissa, exponent, is negative zero)`` of a finite Decimal, exactly."""
    text = str(value)
    hit = _split_cache.get(text)
    if hit is not None:
        return hit
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise EncodeError("uplink batch", f"value {value} is not finite; send it as a special")
    if len(digits) > MAX_DIGITS or abs(exponent) > MAX_EXPONENT:
        raise EncodeError(
            "uplink batch",
            f"value with {len(digits)} digits and exponent {exponent} exceeds the format's "
            f"{MAX_DIGITS} digits or exponent magnitude {MAX_EXPONENT}",
        )
    mantissa = int("".join(map(str, digits)))
    result = (-mantissa if sign else mantissa, exponent, bool(sign) and mantissa == 0)
    if len(_split_cache) >= _CACHE_LIMIT:
        _split_cache.clear()
    _split_cache[text] = result
    return result


def join_decimal(mantissa: int, exponent: int) -> Decimal:
    """``mantissa x 10**exponent`` built exactly from its text (no context rounding)."""
    key = (mantissa, exponent)
    hit = _join_cache.get(key)
    if hit is None:
        hit = Decimal(f"{mantissa}E{exponent}")
        if len(_join_cache) >= _CACHE_LIMIT:
            _join_cache.clear()
        _join_cache[key] = hit
    return hit


def _trailing_zeros(n: int) -> int:
    if n == 0:
        return 0
    text = str(abs(n))
    return len(text) - len(text.rstrip("0"))


def _deltas(values: list[int]) -> list[int]:
    return [values[0], *map(int.__sub__, values[1:], values[:-1])] if values else []


def _sparse(pairs: list[tuple[int, Any]]) -> list[Any]:
    """``[(index, item)]`` (increasing indexes) -> ``[gap, item, gap, item, ...]``."""
    out: list[Any] = []
    last = -1
    for index, item in pairs:
        out += (index - last - 1, item)
        last = index
    return out


def encode_values(values: Sequence[Decimal]) -> list[Any]:
    """The value column of one stream: ``[rule, E, g, q-deltas, exceptions, negative zeros]``."""
    get = _split_cache.get
    parts = [
        get(text) or split_decimal(v) for text, v in zip(map(str, values), values, strict=True)
    ]
    mantissas = [p[0] for p in parts]
    exponents = [p[1] for p in parts]
    negative_zeros = [i for i, p in enumerate(parts) if p[2]]
    low = min(exponents)
    high = max(exponents)
    extra: list[Any] = []
    if low == high:
        rule, scaled = RULE_FIXED, mantissas
    elif high - low <= MAX_SPREAD:
        scaled = [m * _POW10[e - low] for m, e in zip(mantissas, exponents, strict=True)]
        fixed = [(i, e) for i, e in enumerate(exponents) if e != low]
        normalised = [
            (i, e)
            for i, (s, e) in enumerate(zip(scaled, exponents, strict=True))
            if e != low + _trailing_zeros(s)
        ]
        rule, extra = (
            (RULE_FIXED, fixed) if len(fixed) <= len(normalised) else (RULE_NORMALISED, normalised)
        )
        if 2 * len(extra) > len(values):
            rule, scaled, extra = RULE_EXPLICIT, mantissas, []
        else:
            extra = _sparse(extra)
    else:
        rule, scaled = RULE_EXPLICIT, mantissas
    if rule == RULE_EXPLICIT:
        low = 0
        extra = _deltas(exponents)
    g = math.gcd(*scaled) or 1
    quotients = scaled if g == 1 else [s // g for s in scaled]
    column: list[Any] = [rule, low, g, _deltas(quotients)]
    if negative_zeros:
        column += (extra, _sparse([(i, 0) for i in negative_zeros])[::2])
    elif extra:
        column.append(extra)
    return column


def _ints(where: str, items: Any, *, length: int | None = None) -> list[int]:
    if not isinstance(items, list) or not set(map(type, items)) <= {int}:
        raise _fail(where, "not an array of integers")
    if length is not None and len(items) != length:
        raise _fail(where, f"{len(items)} items where {length} were expected")
    return items


def _pairs(where: str, items: Any, limit: int) -> list[tuple[int, Any]]:
    """``[gap, item, ...]`` -> ``[(index, item)]`` with every index below ``limit``."""
    if not isinstance(items, list) or len(items) % 2:
        raise _fail(where, "not an array of (gap, item) pairs")
    out = []
    index = -1
    for gap, item in zip(items[::2], items[1::2], strict=True):
        if type(gap) is not int or gap < 0:
            raise _fail(where, f"gap {gap!r} is not an unsigned integer")
        index += gap + 1
        if index >= limit:
            raise _fail(where, f"index {index} is beyond the {limit} entries")
        out.append((index, item))
    return out


def _exponent(where: str, e: Any) -> int:
    if type(e) is not int or abs(e) > MAX_EXPONENT:
        raise _fail(where, f"exponent {e!r} is not an integer within +/-{MAX_EXPONENT}")
    return e


def decode_values(column: Any, count: int, where: str) -> list[Decimal]:
    """The ``count`` exact values of one stream's value column."""
    if not isinstance(column, list) or not 4 <= len(column) <= 6:
        raise _fail(where, "value column is not a 4- to 6-item array")
    rule, low, g = column[:3]
    deltas = _ints(f"{where} values", column[3], length=count)
    extra = column[4] if len(column) > 4 else []
    if rule not in (RULE_FIXED, RULE_NORMALISED, RULE_EXPLICIT) or type(rule) is not int:
        raise _fail(where, f"unknown exponent rule {rule!r}")
    low = _exponent(where, low)
    if type(g) is not int or not 0 < g < _MAX_SCALED:
        raise _fail(where, f"scale {g!r} is not a positive integer within bounds")
    scaled = list(accumulate(deltas)) if g == 1 else [q * g for q in accumulate(deltas)]
    if any(not -_MAX_SCALED < s < _MAX_SCALED for s in scaled):
        raise _fail(where, f"a value has more than {MAX_DIGITS} digits")
    if rule == RULE_EXPLICIT:
        exponents = list(accumulate(_ints(f"{where} exponents", extra, length=count)))
        for e in exponents:
            _exponent(where, e)
        mantissas = scaled
    else:
        if rule == RULE_FIXED:
            exponents = [low] * count
        else:
            exponents = [low + _trailing_zeros(s) for s in scaled]
        for index, e in _pairs(f"{where} exponent exceptions", extra, count):
            exponents[index] = _exponent(where, e)
        mantissas = []
        for s, e in zip(scaled, exponents, strict=True):
            shift = e - low
            if not 0 <= shift <= MAX_SPREAD:
                raise _fail(where, f"exponent {e} is outside {low}..{low + MAX_SPREAD}")
            if shift:
                m, rest = divmod(s, _POW10[shift])
                if rest:
                    raise _fail(where, f"value {s} is not a multiple of 10**{shift}")
                mantissas.append(m)
            else:
                mantissas.append(s)
    out = [join_decimal(m, e) for m, e in zip(mantissas, exponents, strict=True)]
    if len(column) > 5:
        index = -1
        for gap in _ints(f"{where} negative zeros", column[5]):
            index += gap + 1
            if gap < 0 or index >= count or mantissas[index] != 0:
                raise _fail(where, f"negative zero at {index} is not a zero value")
            out[index] = Decimal(f"-0E{exponents[index]}")
    return out


# -- times -----------------------------------------------------------------------------------


def encode_times(times: list[int], base_ms: int) -> list[int]:
    """``[lag, first - base, ...]``: the first time relative to the base time, then either
    deltas (``lag`` 0) or, for ``lag`` L > 0, a period ``P`` and residuals ``r``.

    With a lag, ``t(k) = t(k-1) + r(k)`` for ``k < L`` and ``t(k) = t(k-L) + P + r(k)`` after:
    lag 1 is a regular sampling period (as Gorilla's delta of delta, without accumulating the
    jitter twice); a larger lag catches the pattern a periodic BLE notification makes on the
    connection-event grid (1000 ms samples on a 30 ms grid repeat every 3 samples). ``P`` is
    the median lag-L difference; the encoder keeps the lag with the smallest residuals.
    """
    first = times[0] - base_ms
    deltas = list(map(int.__sub__, times[1:], times[:-1]))
    best: list[int] = deltas
    best_lag, best_cost = TIMES_DELTA, sum(map(abs, deltas))
    for lag in range(1, min(MAX_TIME_LAG, len(times) // 2) + 1):
        seasonal = list(map(int.__sub__, times[lag:], times[:-lag]))
        sample = sorted(seasonal[:: 1 + len(seasonal) // 64])
        period = sample[len(sample) // 2]
        residuals = [d - period for d in seasonal]
        cost = sum(map(abs, deltas[: lag - 1])) + sum(map(abs, residuals))
        if cost < best_cost:
            best = [period, *deltas[: lag - 1], *residuals]
            best_lag, best_cost = lag, cost
    return [best_lag, first, *best]


def decode_times(column: Any, count: int, base_ms: int, where: str) -> list[int]:
    """The ``count`` times of one stream."""
    items = _ints(f"{where} times", column, length=None)
    if not items:
        raise _fail(f"{where} times", "empty time column")
    lag = items[0]
    if not 0 <= lag <= MAX_TIME_LAG or (lag and 2 * lag > count):
        raise _fail(f"{where} times", f"lag {lag} is not in 0..{MAX_TIME_LAG} or too long")
    if len(items) != count + 1 + (lag > 0):
        raise _fail(f"{where} times", f"{len(items)} items for {count} times with lag {lag}")
    if lag == TIMES_DELTA:
        times = list(accumulate(items[2:], initial=items[1] + base_ms))
    else:
        period = items[2]
        times = list(accumulate(items[3 : 2 + lag], initial=items[1] + base_ms))
        for residual in items[2 + lag :]:
            times.append(times[-lag] + period + residual)
    if max(times) > MAX_ABS_TIME_MS or min(times) < -MAX_ABS_TIME_MS:
        raise _fail(f"{where} times", "a time is beyond signed 64-bit milliseconds")
    return times


# -- streams ---------------------------------------------------------------------------------


def encode_identifier(text: str) -> Any:
    """A device or boot id: a BLE address as a tagged MAC (RFC 9542), lowercase hex as bytes."""
    if _MAC.fullmatch(text):
        return cbor2.CBORTag(TAG_MAC_ADDRESS, bytes.fromhex(text.replace(":", "")))
    if _LOWER_HEX.fullmatch(text):
        return bytes.fromhex(text)
    return text


def decode_identifier(item: Any, where: str) -> str:
    """Inverse of :func:`encode_identifier`."""
    if isinstance(item, str):
        return item
    if isinstance(item, bytes) and item:
        return item.hex()
    if (
        isinstance(item, cbor2.CBORTag)
        and item.tag == TAG_MAC_ADDRESS
        and isinstance(item.value, bytes)
        and len(item.value) == 6
    ):
        return item.value.hex(":").upper()
    raise _fail(where, f"{item!r} is not text, bytes or a MAC address")


def encode_name(stream: str, device: str, mdc_code: int) -> str | list[str] | None:
    """SenML-style name relative to the base name: ``null`` for ``{device}/{mdc}``, text for
    ``{device}/{text}``, ``[text]`` for any other stream name."""
    prefix = f"{device}/"
    if stream.startswith(prefix):
        rest = stream[len(prefix) :]
        return None if rest == str(mdc_code) else rest
    return [stream]


def decode_name(item: Any, device: str, mdc_code: int, where: str) -> str:
    """Inverse of :func:`encode_name`."""
    if item is None:
        return f"{device}/{mdc_code}"
    if isinstance(item, str):
        return f"{device}/{item}"
    if isinstance(item, list) and len(item) == 1 and isinstance(item[0], str):
        return item[0]
    raise _fail(where, f"name {item!r} is neither null, text nor [text]")


_NONE_TYPE = type(None)
_stream_key = attrgetter("stream", "device", "mdc_code", "unit")
_time_of = attrgetter("t_ms")
_value_of = attrgetter("value")
_special_of = attrgetter("special")
_flags_of = attrgetter("flags")


def _stream_values(rows: list[WireReading], where: str) -> tuple[list[Decimal], list[Any]]:
    """The values of a stream's readings and its sparse special column."""
    specials = list(map(_special_of, rows))
    values = list(map(_value_of, rows))
    if specials.count(None) == len(rows):
        if _NONE_TYPE in set(map(type, values)):  # by type: Decimal == None is slow
            raise EncodeError("uplink batch", f"{where}: a reading needs a value or a special")
        return values, []
    pairs: list[tuple[int, Any]] = []
    kept: list[Decimal] = []
    for i, (value, special) in enumerate(zip(values, specials, strict=True)):
        if special is None:
            if value is None:
                raise EncodeError("uplink batch", f"{where}: a reading needs a value or a special")
            kept.append(value)
        elif value is None:
            pairs.append((i, _SPECIAL_INDEX.get(special, special)))
        else:
            raise EncodeError("uplink batch", f"{where}: a reading has a value and a special")
    return kept, _sparse(pairs)


def _stream_flags(rows: list[WireReading], flagsets: dict[frozenset[str], int]) -> Any:
    """``index`` when every reading has the same flag set, else ``[common, gap, index, ...]``."""
    sets = list(map(_flags_of, rows))
    first = sets[0]
    if sets.count(first) == len(sets):
        return flagsets.setdefault(first, len(flagsets))
    indexes = [flagsets.setdefault(f, len(flagsets)) for f in sets]
    common = max(set(indexes), key=indexes.count)
    return [common, *_sparse([(i, f) for i, f in enumerate(indexes) if f != common])]


def encode_columns(readings: Sequence[WireReading], base_ms: int) -> list[Any]:
    """``[devices, flag sets, streams, order]`` for readings (see the module docstring)."""
    if len(readings) > MAX_READINGS:
        raise EncodeError("uplink batch", f"{len(readings)} readings; at most {MAX_READINGS}")
    index_of: dict[Key, int] = {}
    members: list[list[WireReading]] = []
    order: list[int] = []
    for r, key in zip(readings, map(_stream_key, readings), strict=True):
        s = index_of.get(key)
        if s is None:
            s = index_of[key] = len(members)
            members.append([])
        members[s].append(r)
        order.append(s)
    width = len(members)
    times_in_order = list(map(_time_of, readings))
    if times_in_order and (
        max(times_in_order) > MAX_ABS_TIME_MS or min(times_in_order) < -MAX_ABS_TIME_MS
    ):
        raise EncodeError("uplink batch", "a time is beyond signed 64-bit milliseconds")
    keys = [t * width + s for t, s in zip(times_in_order, order, strict=True)]
    in_order = all(map(int.__le__, keys, keys[1:]))
    devices: dict[str, int] = {}
    flagsets: dict[frozenset[str], int] = {frozenset(): 0}
    seen_times: dict[tuple[int, ...], int] = {}
    streams = []
    for s, rows in enumerate(members):
        first = rows[0]
        where = f"stream {first.stream!r}"
        if not (type(first.mdc_code) is int and 0 <= first.mdc_code <= MAX_MDC_CODE):
            raise EncodeError("uplink batch", f"{where}: MDC code {first.mdc_code!r} not uint32")
        times = list(map(_time_of, rows))
        time_key = tuple(times)
        earlier = seen_times.setdefault(time_key, s)
        values, specials = _stream_values(rows, where)
        flags = _stream_flags(rows, flagsets)
        stream: list[Any] = [
            devices.setdefault(first.device, len(devices)),
            encode_name(first.stream, first.device, first.mdc_code),
            first.mdc_code,
            first.unit,
            len(rows),
            encode_times(times, base_ms) if earlier == s else earlier,
            encode_values(values) if values else None,
        ]
        if flags:
            stream += (specials, flags)
        elif specials:
            stream.append(specials)
        streams.append(stream)
    return [
        [encode_identifier(d) for d in devices],
        [sorted(f) for f in list(flagsets)[1:]],
        streams,
        None if in_order else order,
    ]


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"{value!r} is not text")
    return value


def _decode_flags(raw: list[Any], n: int, n_sets: int, where: str) -> list[int]:
    flag_col = raw[8] if len(raw) > 8 else 0
    if type(flag_col) is int:
        common, exceptions = flag_col, []
    elif isinstance(flag_col, list) and flag_col:
        common, exceptions = flag_col[0], _pairs(f"{where} flags", flag_col[1:], n)
    else:
        raise _fail(where, "flags are neither an index nor an exception array")
    row_flags = [common] * n
    for i, f in exceptions:
        row_flags[i] = f
    if any(type(f) is not int or not 0 <= f < n_sets for f in (common, *row_flags)):
        raise _fail(where, "a flag set index is not in the flag set table")
    return row_flags


def _decode_specials(raw: list[Any], n: int, where: str) -> dict[int, str]:
    special_at: dict[int, str] = {}
    for i, code in _pairs(f"{where} specials", raw[7], n) if len(raw) > 7 else []:
        if type(code) is int and 0 <= code < len(SPECIAL_CODES):
            special_at[i] = SPECIAL_CODES[code]
        elif isinstance(code, str):
            special_at[i] = code
        else:
            raise _fail(where, f"special {code!r} is neither a known code nor text")
    return special_at


class _Tables:
    """What the streams of one column document refer to."""

    def __init__(self, devices: list[str], flagsets: list[frozenset[str]], base_ms: int) -> None:
        self.devices = devices
        self.flagsets = flagsets
        self.base_ms = base_ms
        self.times: list[list[int]] = []


def _decode_stream(raw: Any, tables: _Tables, room: int, where: str) -> list[WireReading]:
    if not isinstance(raw, list) or not 7 <= len(raw) <= 9:
        raise _fail(where, "not a 7- to 9-item array")
    device_i, name, mdc, unit, n, times_raw, values_raw = raw[:7]
    if type(device_i) is not int or not 0 <= device_i < len(tables.devices):
        raise _fail(where, f"device index {device_i!r} is not in the device table")
    device = tables.devices[device_i]
    if type(mdc) is not int or not 0 <= mdc <= MAX_MDC_CODE:
        raise _fail(where, f"MDC code {mdc!r} is not a uint32")
    stream_name = decode_name(name, device, mdc, where)
    unit = _text(where, unit)
    if type(n) is not int or not 0 < n <= room:
        raise _fail(where, f"reading count {n!r} does not fit the batch's count")
    if type(times_raw) is int:
        if not 0 <= times_raw < len(tables.times) or len(tables.times[times_raw]) != n:
            raise _fail(where, f"times refer to stream {times_raw}, which does not match")
        times = tables.times[times_raw]
    else:
        times = decode_times(times_raw, n, tables.base_ms, where)
    tables.times.append(times)
    special_at = _decode_specials(raw, n, where)
    row_flags = _decode_flags(raw, n, len(tables.flagsets), where)
    n_values = n - len(special_at)
    if values_raw is None:
        if n_values:
            raise _fail(where, f"{n_values} values but no value column")
        values: list[Decimal] = []
    else:
        if not n_values:
            raise _fail(where, "a value column for a stream of special values only")
        values = decode_values(values_raw, n_values, where)
    value_iter = iter(values)
    flagsets = tables.flagsets
    return [
        WireReading(
            stream=stream_name,
            mdc_code=mdc,
            unit=unit,
            t_ms=t,
            value=None if i in special_at else next(value_iter),
            special=special_at.get(i),
            flags=flagsets[row_flags[i]],
            device=device,
        )
        for i, t in enumerate(times)
    ]


def decode_columns(doc: Any, count: int, base_ms: int) -> tuple[WireReading, ...]:
    """The readings of a decoded column document, in the order they were encoded."""
    if not isinstance(doc, list) or len(doc) != 4:
        raise _fail("columns", "not a 4-item array")
    devices_raw, flagsets_raw, streams_raw, order = doc
    if not isinstance(devices_raw, list) or not isinstance(streams_raw, list):
        raise _fail("columns", "devices or streams is not an array")
    if not isinstance(flagsets_raw, list):
        raise _fail("flag sets", "not an array")
    flagsets: list[frozenset[str]] = [frozenset()]
    for f in flagsets_raw:
        if not isinstance(f, list):
            raise _fail("flag sets", "a flag set is not an array")
        flagsets.append(frozenset(_text("flag", x) for x in f))
    if len(streams_raw) > count:
        raise _fail("streams", f"{len(streams_raw)} streams for {count} readings")
    tables = _Tables([decode_identifier(d, "device") for d in devices_raw], flagsets, base_ms)
    per_stream: list[list[WireReading]] = []
    total = 0
    for s, raw in enumerate(streams_raw):
        rows = _decode_stream(raw, tables, count - total, f"stream {s}")
        total += len(rows)
        per_stream.append(rows)
    if total != count:
        raise _fail("columns", f"{total} readings in the streams, {count} in the header")
    if order is None:
        width = len(per_stream)
        keys = [t * width + s for s, times in enumerate(tables.times) for t in times]
        flat = [r for rows in per_stream for r in rows]
        return tuple(flat[i] for i in sorted(range(len(flat)), key=keys.__getitem__))
    cursors = [0] * len(per_stream)
    out = []
    for s in _ints("order", order, length=count):
        if not 0 <= s < len(per_stream) or cursors[s] >= len(per_stream[s]):
            raise _fail("order", f"stream index {s} is out of range or used too often")
        out.append(per_stream[s][cursors[s]])
        cursors[s] += 1
    return tuple(out)
