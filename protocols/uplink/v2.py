"""Uplink batch format 2, decode only: batches a hub signed before it moved to format 3.

``docs/protocols/uplink.md``, "Region side: typed errors" and "Format 2 (read only)". A hub
upgraded to format 3 may still hold signed format-2 batches in its outbox; the region reads
them so that no reading is lost. Nothing encodes format 2 any more. The layout::

    body    = [2, hub, boot, seq, created_ms, priority, count, zdict, payload]
    columns = [devices, flag sets, streams, order]

``zdict`` is ``null`` when ``payload`` is the column document as plain CBOR, ``0`` for a zstd
frame (RFC 8878, with its magic number) without a dictionary and ``1`` for one compressed with
the shipped dictionary 1 (:mod:`protocols.uplink._zdict1`). Each stream is
``[device, name, mdc, unit, n, times, values, specials?, flags?]``: times are
``[lag, first - base, ...]`` (deltas, or a period and residuals for a lag of 1..8) or the index
of an earlier stream with the same times; values ``[rule, E, g, q-deltas, exceptions?,
negative zeros?]`` (exact scaled decimals, as in format 3, but as plain CBOR integers). The
signature of a format-2 batch has an empty external AAD, and its header names the hub, which
must be the kid (:class:`HubMismatchError`; :mod:`protocols.uplink.signing`).

Decoding returns today's :class:`~protocols.uplink.batch.Batch` with ``header.version == 2``;
anything malformed raises :class:`~protocols.uplink.fields.MalformedBatchError` (``where``
says which part), never a bare ``IndexError`` or ``zstandard.ZstdError``.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from functools import partial
from itertools import accumulate
from typing import Any

import zstandard

from protocols.uplink import _zdict1
from protocols.uplink.batch import (
    MAX_BODY_BYTES,
    Batch,
    BatchHeader,
    UnsupportedVersionError,
    _loads,
    inflate_frame,
)
from protocols.uplink.columns import (
    _decode_flags,
    _decode_flagsets,
    _decode_specials,
    _interleave,
    _text,
    decode_identifier,
    decode_name,
    decode_streams,
    earlier_times,
    stream_readings,
)
from protocols.uplink.decimals import _exponent, _ints, restore_decimals
from protocols.uplink.dictionary import _load
from protocols.uplink.fields import (
    MAX_ABS_TIME_MS,
    MAX_DIGITS,
    MAX_MDC_CODE,
    MAX_READINGS,
    MAX_SPREAD,
    MAX_TIME_LAG,
    RULE_EXPLICIT,
    RULE_FIXED,
    RULE_NORMALISED,
    TIMES_DELTA,
    MalformedBatchError,
)
from protocols.uplink.wire_reading import Priority, WireReading

__all__ = ["FORMAT_VERSION", "HubMismatchError", "decode_body", "decode_document"]

FORMAT_VERSION = 2
_BODY_ITEMS = 9
_POW10 = [10**i for i in range(MAX_SPREAD + 1)]
_MAX_SCALED = 10 ** (MAX_DIGITS + MAX_SPREAD)


class HubMismatchError(MalformedBatchError):
    """A format-2 header names another hub than the kid that signed it (``hub_id``, ``kid``)."""

    def __init__(self, hub_id: str, kid: str) -> None:
        self.hub_id = hub_id
        self.kid = kid
        super().__init__(f"header names hub {hub_id!r}, not the kid {kid!r}", where="header")


def _fail(where: str, reason: str) -> MalformedBatchError:
    return MalformedBatchError(reason, where=where)


# -- the shipped zstd dictionary 1 -----------------------------------------------------------


@functools.cache
def _dictionary_1() -> zstandard.ZstdCompressionDict:
    """Dictionary 1, checked against its SHA-256 (loaded once, on the first batch using it)."""
    data = _load(_zdict1.BASE64, _zdict1.SHA256)
    return zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)


# -- header and payload ----------------------------------------------------------------------


def _header(doc: Any) -> tuple[BatchHeader, Any, Any]:
    if not isinstance(doc, list) or not doc:
        raise _fail("header", "not a CBOR array")
    if doc[0] != FORMAT_VERSION or type(doc[0]) is not int:
        raise UnsupportedVersionError(doc[0])
    if len(doc) != _BODY_ITEMS:
        raise _fail("header", f"{len(doc)} items, not {_BODY_ITEMS}")
    _, hub_id, boot, seq, created_ms, priority, count, zdict, payload = doc
    checks = (
        (isinstance(hub_id, str), "hub id is not text"),
        (type(seq) is int and seq >= 0, "seq is not an unsigned integer"),
        (type(created_ms) is int and abs(created_ms) < 2**63, "created_ms is not an int64"),
        (type(priority) is int and priority in Priority._value2member_map_, "unknown priority"),
        (type(count) is int and 0 <= count <= MAX_READINGS, f"count not in 0..{MAX_READINGS}"),
        (zdict is None or type(zdict) is int, "zdict is neither null nor an integer"),
        (isinstance(payload, bytes), "payload is not a byte string"),
    )
    for ok, reason in checks:
        if not ok:
            raise _fail("header", reason)
    boot_id = decode_identifier(boot, "header boot id")
    header = BatchHeader(
        hub_id, boot_id, seq, created_ms, Priority(priority), count, version=FORMAT_VERSION
    )
    return header, zdict, payload


def _inflate(zdict: int | None, payload: bytes) -> bytes:
    if zdict is None:
        return payload
    if zdict not in (0, _zdict1.DICTIONARY_ID):
        raise _fail("payload", f"unknown zstd dictionary {zdict}")
    return inflate_frame(payload, _dictionary_1() if zdict else None, zstandard.FORMAT_ZSTD1)


# -- columns ---------------------------------------------------------------------------------


def decode_values(column: Any, count: int, where: str) -> list[Decimal]:
    """The ``count`` exact values of one stream's value column
    ``[rule, E, g, q-deltas, exceptions?, negative zeros?]``."""
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
    negative = column[5] if len(column) > 5 else []
    return restore_decimals(rule, low, scaled, extra, negative, where)


def decode_times(column: Any, count: int, base_ms: int, where: str) -> list[int]:
    """The ``count`` times of one stream: ``[lag, first - base, deltas...]`` (lag 0) or
    ``[lag, first - base, P, deltas of the first lag - 1, residuals...]``."""
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
        times = earlier_times(tables.times, times_raw, n, where)
    else:
        times = decode_times(times_raw, n, tables.base_ms, where)
    tables.times.append(times)
    special_at = _decode_specials(raw[7] if len(raw) > 7 else [], n, where)
    row_flags = _decode_flags(raw[8] if len(raw) > 8 else 0, n, len(tables.flagsets), where)
    n_values = n - len(special_at)
    if values_raw is None:
        if n_values:
            raise _fail(where, f"{n_values} values but no value column")
        values: list[Decimal] = []
    else:
        if not n_values:
            raise _fail(where, "a value column for a stream of special values only")
        values = decode_values(values_raw, n_values, where)
    return stream_readings(
        (stream_name, device, mdc, unit), times, values, special_at, row_flags, tables.flagsets
    )


def decode_columns(doc: Any, count: int, base_ms: int) -> tuple[WireReading, ...]:
    """The readings of a format-2 column document, in the order they were encoded."""
    if not isinstance(doc, list) or len(doc) != 4:
        raise _fail("columns", "not a 4-item array")
    devices_raw, flagsets_raw, streams_raw, order = doc
    if not isinstance(devices_raw, list) or not isinstance(streams_raw, list):
        raise _fail("columns", "devices or streams is not an array")
    flagsets = _decode_flagsets(flagsets_raw)
    if len(streams_raw) > count:
        raise _fail("streams", f"{len(streams_raw)} streams for {count} readings")
    tables = _Tables([decode_identifier(d, "device") for d in devices_raw], flagsets, base_ms)
    per_stream = decode_streams(streams_raw, count, partial(_decode_stream, tables=tables))
    stream_order = None if order is None else _ints("order", order, length=count)
    return _interleave(per_stream, tables.times, stream_order)


# -- entry points ----------------------------------------------------------------------------


def decode_document(doc: Any, *, kid: str | None = None) -> Batch:
    """Decode a format-2 body already read as one CBOR item (``doc``).

    With ``kid`` (the hub that signed it), a header naming another hub raises
    :class:`HubMismatchError` before the columns are inflated."""
    header, zdict, payload = _header(doc)
    if kid is not None and header.hub_id != kid:
        raise HubMismatchError(header.hub_id, kid)
    columns = _loads(_inflate(zdict, payload), "columns")
    readings = decode_columns(columns, header.count, header.created_ms)
    return Batch(header, readings, zdict or None)


def decode_body(data: bytes, *, kid: str | None = None) -> Batch:
    """Decode a format-2 body: header checks, bounded decompression, every column
    type-checked; the hub id comes from the body (checked against ``kid`` when given)."""
    if len(data) > MAX_BODY_BYTES:
        raise _fail("body", f"{len(data)} bytes; the cap is {MAX_BODY_BYTES}")
    return decode_document(_loads(data, "header"), kid=kid)
