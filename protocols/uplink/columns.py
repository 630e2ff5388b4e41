"""The columnar body of an uplink batch: readings grouped by stream, integers entropy coded.

A *stream* is every reading of a batch with the same (stream name, device, MDC code, unit);
in SenML (RFC 8428) terms the device is the base name (``bn``), the stream name the name
(``n``), the unit the base unit (``bu``) and the batch's creation time the base time
(``bt``). The column document is a CBOR (RFC 8949) array::

    [devices, flag sets, streams, tables, big integers, rANS stream]

The CBOR part holds what is text or rare: the device table, the flag sets, one descriptor per
stream (``[name, MDC code, unit]`` and, when not empty, its specials, flags, exponent
exceptions and negative zeros) and the tables of columns coded with their own. Every integer
that describes the readings is a *field* coded in the batch's rANS stream
(:mod:`protocols.uplink.rans`), each with the table of its context in the shipped dictionary's
field model, in this order per stream:

- ``F_DEVICE`` (same device as the previous stream, the next new one, or ``2 + index``),
  ``F_COUNT`` (readings - 1), ``F_TIME_REF`` (0: own times; ``k``: those of the stream
  ``k`` before);
- own times (:func:`encode_times`): ``F_TIME_MODE``, ``F_TIME_FIRST`` (first time - base
  time), with a lag ``F_TIME_PERIOD`` (seconds, common periods by index) and
  ``F_TIME_PERIOD_MS``, then a column of ``count - 1`` deltas or residuals;
- values, when the stream has any that are not specials: exact decimals as scaled integers.
  With ``E`` the smallest decimal exponent in the stream, every value ``m x 10**e`` becomes
  ``M = m x 10**(e - E)``; the greatest common divisor ``g`` of all ``M`` is taken out
  (``q = M / g``: 1/1024 s RR intervals in ms become small integers again). Fields
  ``F_VALUE_RULE`` (how each exponent follows: all ``E``; or ``M``'s trailing zeros stripped,
  as a normalised decimal has; or an explicit column), ``F_VALUE_LOW`` (``E``),
  ``F_VALUE_SCALE`` (``g - 1``, only with two values or more), ``F_VALUE_FIRST`` (``q(0)``),
  then the column of ``q`` deltas. So ``Decimal('37.20')`` comes back as ``37.20``, and
  negative zero as ``-0``;

and after the streams ``F_HAS_ORDER`` and, when 1, a column of one stream index per reading.
A *column* of fewer than ``MIN_CODED`` integers uses its context's table; a longer one says in
``F_SEQ_KIND`` whether it uses the dictionary's table for long columns or its own (the next of
``tables``), whichever costs fewer bits. Integers of 64 bits or more escape to ``big
integers``. Special values (11073 NaN, NRes, +/-INF, reserved, or any other name) and flag
sets are sparse exceptions in the descriptor.

Readings come back in the order they went in: when that order is the stream-interleaving by
(time, stream index) no order column is sent, otherwise one stream index per reading is.

Everything read is type-checked and bounded; bad input raises :class:`MalformedBatchError`.
See ``docs/protocols/uplink.md`` for the CDDL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from operator import attrgetter
from typing import Any

import cbor2

from protocols.errors import EncodeError
from protocols.uplink.decimals import (
    _ints,
    _pairs,
    _sparse,
    decode_values,
    encode_values,
)
from protocols.uplink.fields import (
    _LOWER_HEX,
    _MAC,
    _SPECIAL_INDEX,
    DEVICE_NEW,
    DEVICE_SAME,
    F_COUNT,
    F_DEVICE,
    F_HAS_ORDER,
    F_ORDER,
    F_TIME_REF,
    FIELDS,
    MAX_ABS_TIME_MS,
    MAX_MDC_CODE,
    MAX_READINGS,
    SPECIAL_CODES,
    TAG_MAC_ADDRESS,
    Key,
    _fail,
    _Reader,
    _Writer,
)
from protocols.uplink.rans import (
    DIRECT,
    ESCAPE,
    RansError,
    Table,
    Unpacker,
    uniform_frequencies,
)
from protocols.uplink.times import (
    decode_times,
    encode_times,
)
from protocols.uplink.wire_reading import WireReading

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


#: Defaults of a stream descriptor's optional trailing items (specials, flags, exponent
#: extras, negative zeros): an item equal to its default at the end is left out.
_DESCRIPTOR_DEFAULTS: tuple[Any, ...] = ([], 0, [], [])


def encode_columns(
    readings: Sequence[WireReading], base_ms: int, model: Sequence[Table]
) -> list[Any]:
    """``[devices, flag sets, streams, tables, bigs, rANS stream]`` for readings, with the
    integers coded by ``model`` (see the module docstring)."""
    return _encode(readings, base_ms, _Writer(model))


def field_counts(readings: Sequence[WireReading], base_ms: int) -> list[Counter[int]]:
    """How often each symbol occurs in each field context of a batch's document (what a
    field model is trained on; columns sent with their own table are not counted)."""
    model = tuple(Table(uniform_frequencies()) for _ in range(FIELDS))
    out = _Writer(model, training=True)
    _encode(readings, base_ms, out)
    counts: list[Counter[int]] = [Counter() for _ in range(FIELDS)]
    index = {id(table): ctx for ctx, table in enumerate(model)}
    for table, coded, _ in out.packer.runs:
        if table is None:  # a run of single fields: (table, symbol, zigzag value) items
            for field_table, symbol, _ in coded:
                counts[index[id(field_table)]][symbol] += 1
        elif id(table) in index:
            counts[index[id(table)]].update(coded)
    return counts


def coded_bits(
    readings: Sequence[WireReading], base_ms: int, model: Sequence[Table]
) -> dict[int, float]:
    """Bits the rANS stream spends on each field context for these readings (a column sent
    with its own table counts under its context), from the tables' exact symbol costs and
    the raw bits of bucket symbols; what ``narhub bench wire`` breaks the stream down by."""
    out = _Writer(model)
    _encode(readings, base_ms, out)
    context_of = {id(table): ctx for ctx, table in enumerate(model)}
    bits: dict[int, float] = {}

    def cost(table: Table, symbol: int, u: int) -> float:
        raw = u.bit_length() - 1 if DIRECT <= symbol < ESCAPE else 0
        return table.bits[symbol] + raw

    for index, (table, coded, unsigned) in enumerate(out.packer.runs):
        if table is None:
            for field_table, symbol, u in coded:
                ctx = context_of[id(field_table)]
                bits[ctx] = bits.get(ctx, 0.0) + cost(field_table, symbol, u)
        else:
            ctx = out.run_contexts[index]
            bits[ctx] = bits.get(ctx, 0.0) + sum(map(cost, [table] * len(coded), coded, unsigned))
    return bits


def _encode(readings: Sequence[WireReading], base_ms: int, out: _Writer) -> list[Any]:
    if len(readings) > MAX_READINGS:
        raise EncodeError("uplink batch", f"{len(readings)} readings; at most {MAX_READINGS}")
    index_of: dict[Key, int] = {}
    order = [index_of.setdefault(key, len(index_of)) for key in map(_stream_key, readings)]
    width = len(index_of)
    members: list[list[WireReading]] = [[] for _ in range(width)]
    if width == 1:
        members[0] = list(readings)
    else:
        appends = [m.append for m in members]
        for r, s in zip(readings, order, strict=True):
            appends[s](r)
    times_in_order = list(map(_time_of, readings))
    if times_in_order and (
        max(times_in_order) > MAX_ABS_TIME_MS or min(times_in_order) < -MAX_ABS_TIME_MS
    ):
        raise EncodeError("uplink batch", "a time is beyond signed 64-bit milliseconds")
    # In (time, stream index) order, the order the decoder restores without an order column.
    in_order = all(map(int.__le__, times_in_order, times_in_order[1:])) and all(
        a <= b
        for a, b, t, u in zip(order, order[1:], times_in_order, times_in_order[1:], strict=False)
        if t == u
    )
    devices: dict[str, int] = {}
    flagsets: dict[frozenset[str], int] = {frozenset(): 0}
    seen_times: dict[tuple[int, ...], int] = {}
    streams = []
    previous_device = -1
    for s, rows in enumerate(members):
        first = rows[0]
        where = f"stream {first.stream!r}"
        if not (type(first.mdc_code) is int and 0 <= first.mdc_code <= MAX_MDC_CODE):
            raise EncodeError("uplink batch", f"{where}: MDC code {first.mdc_code!r} not uint32")
        times = list(map(_time_of, rows))
        earlier = seen_times.setdefault(tuple(times), s)
        values, specials = _stream_values(rows, where)
        flags = _stream_flags(rows, flagsets)
        known = len(devices)
        device = devices.setdefault(first.device, known)
        if device == previous_device:
            out.field(F_DEVICE, DEVICE_SAME)
        elif device == known:
            out.field(F_DEVICE, DEVICE_NEW)
        else:
            out.field(F_DEVICE, 2 + device)
        previous_device = device
        out.field(F_COUNT, len(rows) - 1)
        out.field(F_TIME_REF, s - earlier)
        if earlier == s:
            encode_times(times, base_ms, out)
        extras = encode_values(values, out) if values else [[], []]
        descriptor: list[Any] = [
            encode_name(first.stream, first.device, first.mdc_code),
            first.mdc_code,
            first.unit,
            specials,
            flags,
            *extras,
        ]
        while len(descriptor) > 3 and descriptor[-1] == _DESCRIPTOR_DEFAULTS[len(descriptor) - 4]:
            descriptor.pop()
        streams.append(descriptor)
    out.field(F_HAS_ORDER, 0 if in_order else 1)
    if not in_order:
        out.seq(F_ORDER, order)
    return [
        [encode_identifier(d) for d in devices],
        [sorted(f) for f in list(flagsets)[1:]],
        streams,
        out.tables,
        out.packer.bigs,
        out.packer.finish(),
    ]


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"{value!r} is not text")
    return value


def _decode_flags(flag_col: Any, n: int, n_sets: int, where: str) -> list[int]:
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


def _decode_specials(column: Any, n: int, where: str) -> dict[int, str]:
    special_at: dict[int, str] = {}
    for i, code in _pairs(f"{where} specials", column, n):
        if type(code) is int and 0 <= code < len(SPECIAL_CODES):
            special_at[i] = SPECIAL_CODES[code]
        elif isinstance(code, str):
            special_at[i] = code
        else:
            raise _fail(where, f"special {code!r} is neither a known code nor text")
    return special_at


class _Tables:
    """What the streams of one column document refer to."""

    def __init__(
        self, devices: list[str], flagsets: list[frozenset[str]], base_ms: int, source: _Reader
    ) -> None:
        self.devices = devices
        self.flagsets = flagsets
        self.base_ms = base_ms
        self.source = source
        self.times: list[list[int]] = []
        #: Devices named by a stream so far (in table order), and the last stream's device.
        self.introduced = 0
        self.previous_device = -1


def _decode_stream(raw: Any, tables: _Tables, room: int, where: str) -> list[WireReading]:
    if not isinstance(raw, list) or not 3 <= len(raw) <= 7:
        raise _fail(where, "not a 3- to 7-item array")
    name, mdc, unit = raw[:3]
    specials_raw, flags_raw, extra, negative = [
        *raw[3:],
        *_DESCRIPTOR_DEFAULTS[len(raw) - 3 :],
    ]
    source = tables.source
    code = source.field(F_DEVICE, where)
    if code == DEVICE_SAME:
        device_i = tables.previous_device
    elif code == DEVICE_NEW:
        device_i = tables.introduced
        tables.introduced += 1
    else:
        device_i = code - 2 if code > DEVICE_NEW else -1
        if device_i >= tables.introduced:
            raise _fail(where, f"device {device_i} is named before its first stream")
    if not 0 <= device_i < len(tables.devices):
        raise _fail(where, f"device {device_i} is not in the device table")
    tables.previous_device = device_i
    device = tables.devices[device_i]
    if type(mdc) is not int or not 0 <= mdc <= MAX_MDC_CODE:
        raise _fail(where, f"MDC code {mdc!r} is not a uint32")
    stream_name = decode_name(name, device, mdc, where)
    unit = _text(where, unit)
    n = source.field(F_COUNT, where) + 1
    if not 0 < n <= room:
        raise _fail(where, f"reading count {n!r} does not fit the batch's count")
    back = source.field(F_TIME_REF, where)
    if back:
        times = earlier_times(tables.times, len(tables.times) - back, n, where)
    else:
        times = decode_times(source, n, tables.base_ms, where)
    tables.times.append(times)
    special_at = _decode_specials(specials_raw, n, where)
    row_flags = _decode_flags(flags_raw, n, len(tables.flagsets), where)
    n_values = n - len(special_at)
    if n_values:
        values = decode_values(source, n_values, extra, negative, where)
    else:
        if extra != [] or negative != []:
            raise _fail(where, "value extras for a stream of special values only")
        values = []
    return stream_readings(
        (stream_name, device, mdc, unit), times, values, special_at, row_flags, tables.flagsets
    )


def earlier_times(times: list[list[int]], index: int, n: int, where: str) -> list[int]:
    """The time column of stream ``index`` of the same document, which a stream of ``n``
    readings refers to instead of repeating it; a missing or other-length one raises."""
    if not 0 <= index < len(times) or len(times[index]) != n:
        raise _fail(where, f"times refer to stream {index}, which does not match")
    return times[index]


def stream_readings(
    key: Key,
    times: list[int],
    values: list[Decimal],
    special_at: dict[int, str],
    row_flags: list[int],
    flagsets: list[frozenset[str]],
) -> list[WireReading]:
    """The readings of one decoded stream: ``key`` is (stream name, device, MDC code, unit);
    a reading is special where ``special_at`` says, else takes the next value."""
    stream_name, device, mdc, unit = key
    value_iter = iter(values)
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


def decode_streams(
    streams_raw: list[Any], count: int, decode: Callable[..., list[WireReading]]
) -> list[list[WireReading]]:
    """Every stream's readings, ``decode(raw, room=..., where=...)`` decoding one stream with
    room for what is left of the header's ``count``, which the streams must fill exactly."""
    per_stream: list[list[WireReading]] = []
    total = 0
    for s, raw in enumerate(streams_raw):
        rows = decode(raw, room=count - total, where=f"stream {s}")
        total += len(rows)
        per_stream.append(rows)
    if total != count:
        raise _fail("columns", f"{total} readings in the streams, {count} in the header")
    return per_stream


def _decode_flagsets(flagsets_raw: Any) -> list[frozenset[str]]:
    if not isinstance(flagsets_raw, list):
        raise _fail("flag sets", "not an array")
    flagsets: list[frozenset[str]] = [frozenset()]
    for f in flagsets_raw:
        if not isinstance(f, list):
            raise _fail("flag sets", "a flag set is not an array")
        flagsets.append(frozenset(_text("flag", x) for x in f))
    return flagsets


def decode_columns(
    doc: Any, count: int, base_ms: int, model: Sequence[Table]
) -> tuple[WireReading, ...]:
    """The readings of a decoded column document, in the order they were encoded."""
    if not isinstance(doc, list) or len(doc) != 6:
        raise _fail("columns", "not a 6-item array")
    devices_raw, flagsets_raw, streams_raw, tables_raw, bigs, stream = doc
    if not isinstance(devices_raw, list) or not isinstance(streams_raw, list):
        raise _fail("columns", "devices or streams is not an array")
    if not isinstance(tables_raw, list) or not all(isinstance(t, bytes) for t in tables_raw):
        raise _fail("tables", "not an array of byte strings")
    bigs = _ints("big integers", bigs)
    if not isinstance(stream, bytes):
        raise _fail("rANS stream", "not a byte string")
    try:
        unpacker = Unpacker(stream, bigs)
    except RansError as exc:
        raise _fail("rANS stream", exc.reason) from None
    flagsets = _decode_flagsets(flagsets_raw)
    if len(streams_raw) > count:
        raise _fail("streams", f"{len(streams_raw)} streams for {count} readings")
    source = _Reader(model, unpacker, tables_raw)
    devices = [decode_identifier(d, "device") for d in devices_raw]
    tables = _Tables(devices, flagsets, base_ms, source)
    per_stream = decode_streams(streams_raw, count, partial(_decode_stream, tables=tables))
    if tables.introduced != len(devices):
        raise _fail("devices", f"{len(devices) - tables.introduced} devices have no stream")
    has_order = source.field(F_HAS_ORDER, "order")
    if has_order not in (0, 1):
        raise _fail("order", f"order flag {has_order} is neither 0 nor 1")
    stream_order = source.seq(F_ORDER, count, "order") if has_order else None
    if source.next_table != len(tables_raw):
        raise _fail("tables", f"{len(tables_raw) - source.next_table} tables are not used")
    try:
        unpacker.close()
    except RansError as exc:
        raise _fail("rANS stream", exc.reason) from None
    return _interleave(per_stream, tables.times, stream_order)


def _interleave(
    per_stream: list[list[WireReading]], times: list[list[int]], stream_order: list[int] | None
) -> tuple[WireReading, ...]:
    """The streams' readings in the order they were encoded: by (time, stream index), or as
    the order column says."""
    if stream_order is None:
        width = len(per_stream)
        keys = [t * width + s for s, stream_times in enumerate(times) for t in stream_times]
        flat = [r for rows in per_stream for r in rows]
        return tuple(flat[i] for i in sorted(range(len(flat)), key=keys.__getitem__))
    cursors = [0] * len(per_stream)
    out = []
    for s in stream_order:
        if not 0 <= s < len(per_stream) or cursors[s] >= len(per_stream[s]):
            raise _fail("order", f"stream index {s} is out of range or used too often")
        out.append(per_stream[s][cursors[s]])
        cursors[s] += 1
    return tuple(out)
