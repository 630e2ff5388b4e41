"""Batch body: a versioned CBOR (RFC 8949) header and zstd-compressed (RFC 8878) columns.

Format version 3 (``docs/protocols/uplink.md`` has the CDDL and vectors)::

    body = [version, boot, seq, created_s, priority, count, dictionary, payload]

The hub id is not repeated in the body: it is the COSE kid, and the signature covers it as
external AAD (:mod:`protocols.uplink.signing`), so a body cannot be passed off as another
hub's. ``created_s`` is whole seconds; ``created_s x 1000`` is the SenML base time of the
columns. The header stays uncompressed so that a receiver can check the version, the reading
count and the dictionary before inflating anything. ``payload`` is the column document,
compressed into one zstd frame written without the 4-byte magic number (RFC 8878 section
3.1.1, "magicless"), or the document itself (a CBOR array, for readable test vectors);
``dictionary`` names the shipped dictionary (zstd dictionary and rANS
field model, :mod:`protocols.uplink.dictionary`) it was coded with, 0 for none.
The columns (:mod:`protocols.uplink.columns`) group readings by stream with SenML (RFC 8428)
base name, base time and base unit; values are exact scaled integers, long columns entropy
coded (:mod:`protocols.uplink.rans`).

Version 2 (hub id in the body, millisecond creation time, no entropy-coded columns) is still
read, for batches a hub queued before its upgrade: :func:`decode_body` hands it to
:mod:`protocols.uplink.v2`. Version 1 (row-wise, walking skeleton) is no longer decoded: it
raises :class:`UnsupportedVersionError`, like any other version.
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
    decode_columns,
    decode_identifier,
    encode_columns,
    encode_identifier,
)
from protocols.uplink.fields import MAX_READINGS, MalformedBatchError
from protocols.uplink.wire_reading import CODED_FLAG, Priority, WireReading

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
    "encode_body",
]

FORMAT_VERSION = 3
#: Hard cap on a signed message and on the inflated columns: a hostile batch (a
#: decompression bomb) cannot exhaust memory.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: zstd level: measured on the reference day, 9 compresses the column documents as well as 19
#: (their bulk is already entropy coded) in a fifth of the time.
ZSTD_LEVEL = 9
_BODY_ITEMS = 8
#: Bytes a CBOR byte string's head takes for a frame of up to 65535 bytes (at most).
_BSTR_HEAD = 3
_FRAME_FORMAT = zstandard.FORMAT_ZSTD1_MAGICLESS


class UnsupportedVersionError(MalformedBatchError):
    """A batch of a format version this decoder does not know (``version`` says which)."""

    def __init__(self, version: object) -> None:
        self.version = version
        super().__init__(
            f"unsupported format version {version!r} (this decoder reads 2 and {FORMAT_VERSION})",
            where="header",
        )


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """Who sent the batch, which one it is, and what it holds.

    ``created_ms`` travels in whole seconds: a decoded header has it rounded down."""

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


def _compress(raw: bytes, dictionary_id: int, level: int) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(
        level,
        source_size=len(raw),
        write_checksum=0,
        write_content_size=1,
        write_dict_id=0,
        format=_FRAME_FORMAT,
    )
    zdict = dictionary.compression_dict(dictionary_id, level) if dictionary_id else None
    return zstandard.ZstdCompressor(compression_params=params, dict_data=zdict).compress(raw)


def encode_body(
    header: BatchHeader,
    readings: Sequence[WireReading],
    *,
    dictionary_id: int | None = dictionary.DEFAULT_DICTIONARY_ID,
    level: int = ZSTD_LEVEL,
    compress: bool = True,
) -> bytes:
    """The body of a batch (what gets signed): header, then compressed columns.

    ``dictionary_id`` selects a shipped dictionary (``None``: none, id 0). The column
    document travels as a zstd frame, or as it is when that is smaller (a batch of one or two
    readings) or ``compress`` is false (readable test vectors).
    """
    zdict = dictionary_id or 0
    if not dictionary.is_known(zdict):
        raise EncodeError("uplink batch", f"no shipped dictionary {zdict}")
    if header.version != FORMAT_VERSION:
        raise EncodeError("uplink batch", f"cannot encode format version {header.version}")
    if header.count != len(readings):
        raise EncodeError(
            "uplink batch", f"header counts {header.count} readings, {len(readings)} given"
        )
    if not isinstance(header.seq, int) or header.seq < 0:
        raise EncodeError("uplink batch", f"seq {header.seq!r} is not an unsigned integer")
    created_s = header.created_ms // 1000
    model = dictionary.field_model(zdict)
    doc = encode_columns(readings, created_s * 1000, model)
    payload: bytes | list[Any] = doc
    if compress:
        raw = cbor2.dumps(doc)
        frame = _compress(raw, zdict, level)
        if len(frame) + _BSTR_HEAD < len(raw):  # a tiny batch is smaller as it is
            payload = frame
    body = cbor2.dumps(
        [
            FORMAT_VERSION,
            encode_identifier(header.boot_id),
            header.seq,
            created_s,
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


def _header(doc: Any, hub_id: str) -> tuple[BatchHeader, int, Any]:
    if not isinstance(doc, list) or not doc:
        raise MalformedBatchError("not a CBOR array", where="header")
    if doc[0] != FORMAT_VERSION or type(doc[0]) is not int:
        raise UnsupportedVersionError(doc[0])
    if len(doc) != _BODY_ITEMS:
        raise MalformedBatchError(f"{len(doc)} items, not {_BODY_ITEMS}", where="header")
    _, boot, seq, created_s, priority, count, zdict, payload = doc
    checks = (
        (type(seq) is int and seq >= 0, "seq is not an unsigned integer"),
        (type(created_s) is int and abs(created_s) < 2**63 // 1000, "created_s is out of range"),
        (type(priority) is int and priority in Priority._value2member_map_, "unknown priority"),
        (type(count) is int and 0 <= count <= MAX_READINGS, f"count not in 0..{MAX_READINGS}"),
        (type(zdict) is int, "dictionary is not an integer"),
        (isinstance(payload, bytes | list), "payload is neither a byte string nor an array"),
    )
    for ok, reason in checks:
        if not ok:
            raise MalformedBatchError(reason, where="header")
    boot_id = decode_identifier(boot, "header boot id")
    header = BatchHeader(hub_id, boot_id, seq, created_s * 1000, Priority(priority), count)
    return header, zdict, payload


def _inflate(zdict: int, payload: bytes) -> bytes:
    return inflate_frame(payload, dictionary.decompression_dict(zdict) if zdict else None)


def inflate_frame(
    payload: bytes,
    zdict: zstandard.ZstdCompressionDict | None,
    frame_format: int = _FRAME_FORMAT,
) -> bytes:
    """One zstd frame (``frame_format``: magicless, or with its magic number as format 2
    wrote it), inflated within :data:`MAX_BODY_BYTES`; :class:`MalformedBatchError` else."""
    decompressor = zstandard.ZstdDecompressor(dict_data=zdict, format=frame_format)
    try:
        # The frame must state its size (the encoders always write it): max_output_size
        # only applies to frames without one, so check the stated size first.
        size = zstandard.get_frame_parameters(payload, format=frame_format).content_size
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


def decode_document(doc: object, hub_id: str) -> Batch:
    """A format-3 body's decoded CBOR document (header checks, bounded decompression, every
    column type-checked); :func:`protocols.uplink.body.decode_body` picks the format."""
    header, zdict, payload = _header(doc, hub_id)
    if not dictionary.is_known(zdict):
        raise MalformedBatchError(f"unknown dictionary {zdict}", where="header")
    doc = payload if isinstance(payload, list) else _loads(_inflate(zdict, payload), "columns")
    readings = decode_columns(doc, header.count, header.created_ms, dictionary.field_model(zdict))
    return Batch(header, readings, zdict or None)
