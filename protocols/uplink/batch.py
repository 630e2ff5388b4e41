"""Batch body: a versioned CBOR (RFC 8949) header and zstd-compressed (RFC 8878) columns.

Format version 2 (``docs/protocols/uplink.md`` has the CDDL and vectors)::

    body = [version, hub, boot, seq, created_ms, priority, count, zdict, payload]

The header stays uncompressed so that a receiver can check the version, the reading count and
the compression before inflating anything. ``zdict`` is ``null`` when ``payload`` is the
column document as plain CBOR, ``0`` for a zstd frame without a dictionary and ``n`` for a
frame compressed with the shipped dictionary ``n`` (:mod:`protocols.uplink.dictionary`).
The columns (:mod:`protocols.uplink.columns`) group readings by stream with SenML (RFC 8428)
base name, base time and base unit; values are exact scaled integers.

Version 1 (row-wise, walking skeleton) is no longer decoded: it raises
:class:`UnsupportedVersionError`, like any other version.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cbor2
import zstandard

from protocols.errors import EncodeError
from protocols.uplink import dictionary
from protocols.uplink.columns import (
    MAX_READINGS,
    MalformedBatchError,
    decode_columns,
    decode_identifier,
    encode_columns,
    encode_identifier,
)
from protocols.uplink.reading import CODED_FLAG, Priority, WireReading

__all__ = [
    "CODED_FLAG",
    "FORMAT_VERSION",
    "MAX_BODY_BYTES",
    "Batch",
    "BatchHeader",
    "MalformedBatchError",
    "Priority",
    "UnsupportedVersionError",
    "WireReading",
    "decode_body",
    "encode_body",
]

FORMAT_VERSION = 2
#: Hard cap on a signed message and on the inflated columns: a hostile batch (a
#: decompression bomb) cannot exhaust memory.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: zstd level: 19 is the best ratio that still seals a 5-minute batch in about a millisecond.
ZSTD_LEVEL = 19
_BODY_ITEMS = 9


class UnsupportedVersionError(MalformedBatchError):
    """A batch of a format version this decoder does not know (``version`` says which)."""

    def __init__(self, version: object) -> None:
        self.version = version
        super().__init__(
            f"unsupported format version {version!r} (this decoder reads {FORMAT_VERSION})",
            where="header",
        )


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """Who sent the batch, which one it is, and what it holds."""

    hub_id: str
    boot_id: str
    seq: int
    created_ms: int
    priority: Priority
    count: int
    version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class Batch:
    """A decoded batch; ``dictionary_id`` names the zstd dictionary used (``None``: none)."""

    header: BatchHeader
    readings: tuple[WireReading, ...]
    dictionary_id: int | None = None


def _compress(raw: bytes, dictionary_id: int | None, level: int) -> tuple[int | None, bytes]:
    params = zstandard.ZstdCompressionParameters.from_level(
        level, source_size=len(raw), write_checksum=0, write_content_size=1, write_dict_id=0
    )
    zdict = dictionary.compression_dict(dictionary_id, level) if dictionary_id else None
    frame = zstandard.ZstdCompressor(compression_params=params, dict_data=zdict).compress(raw)
    if len(frame) >= len(raw):
        return None, raw
    return dictionary_id or 0, frame


def encode_body(
    header: BatchHeader,
    readings: Sequence[WireReading],
    *,
    dictionary_id: int | None = dictionary.DEFAULT_DICTIONARY_ID,
    level: int = ZSTD_LEVEL,
) -> bytes:
    """The body of a batch (what gets signed): header, then compressed columns.

    ``dictionary_id`` selects a shipped zstd dictionary (``None``: no dictionary); whichever
    is smaller of the zstd frame and the plain columns is sent.
    """
    if header.version != FORMAT_VERSION:
        raise EncodeError("uplink batch", f"cannot encode format version {header.version}")
    if header.count != len(readings):
        raise EncodeError(
            "uplink batch", f"header counts {header.count} readings, {len(readings)} given"
        )
    if not isinstance(header.seq, int) or header.seq < 0:
        raise EncodeError("uplink batch", f"seq {header.seq!r} is not an unsigned integer")
    columns = cbor2.dumps(encode_columns(readings, header.created_ms))
    zdict, payload = _compress(columns, dictionary_id, level)
    body = cbor2.dumps(
        [
            FORMAT_VERSION,
            header.hub_id,
            encode_identifier(header.boot_id),
            header.seq,
            header.created_ms,
            int(header.priority),
            header.count,
            zdict,
            payload,
        ]
    )
    if len(body) > MAX_BODY_BYTES:
        raise EncodeError("uplink batch", f"{len(body)} bytes; the cap is {MAX_BODY_BYTES}")
    return body


def _loads(data: bytes, where: str) -> Any:
    """One CBOR item that fills ``data`` exactly (trailing bytes are an error)."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedBatchError(f"not CBOR: {exc}", where=where) from None
    if stream.tell() != len(data):
        raise MalformedBatchError(
            f"{len(data) - stream.tell()} trailing bytes after the CBOR item", where=where
        )
    return item


def _header(doc: Any) -> tuple[BatchHeader, Any, Any]:
    if not isinstance(doc, list) or not doc:
        raise MalformedBatchError("not a CBOR array", where="header")
    if doc[0] != FORMAT_VERSION or type(doc[0]) is not int:
        raise UnsupportedVersionError(doc[0])
    if len(doc) != _BODY_ITEMS:
        raise MalformedBatchError(f"{len(doc)} items, not {_BODY_ITEMS}", where="header")
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
            raise MalformedBatchError(reason, where="header")
    boot_id = decode_identifier(boot, "header boot id")
    header = BatchHeader(hub_id, boot_id, seq, created_ms, Priority(priority), count)
    return header, zdict, payload


def _inflate(zdict: int | None, payload: bytes) -> bytes:
    if zdict is None:
        return payload
    if zdict and zdict not in dictionary.KNOWN_DICTIONARIES:
        raise MalformedBatchError(f"unknown zstd dictionary {zdict}", where="payload")
    decompressor = zstandard.ZstdDecompressor(
        dict_data=dictionary.decompression_dict(zdict) if zdict else None
    )
    try:
        # The frame must state its size (encode_body always writes it): max_output_size
        # only applies to frames without one, so check the stated size first.
        size = zstandard.frame_content_size(payload)
        if size < 0 or size > MAX_BODY_BYTES:
            raise MalformedBatchError(
                f"zstd frame states {size} bytes (unknown or over {MAX_BODY_BYTES})",
                where="payload",
            )
        raw = decompressor.decompress(
            payload, max_output_size=MAX_BODY_BYTES, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise MalformedBatchError(f"not a zstd frame: {exc}", where="payload") from None
    if len(raw) != size:
        raise MalformedBatchError("zstd frame size disagrees with its content", where="payload")
    return raw


def decode_body(data: bytes) -> Batch:
    """Decode a body: header checks, bounded decompression, every column type-checked."""
    if len(data) > MAX_BODY_BYTES:
        raise MalformedBatchError(f"{len(data)} bytes; the cap is {MAX_BODY_BYTES}")
    header, zdict, payload = _header(_loads(data, "header"))
    doc = _loads(_inflate(zdict, payload), "columns")
    readings = decode_columns(doc, header.count, header.created_ms)
    return Batch(header, readings, zdict or None)
