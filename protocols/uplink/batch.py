"""Batch body encoding: a versioned header and readings, CBOR (RFC 8949) then zstd.

Version 1 (the walking skeleton) encodes readings row by row; values are exact scaled integers
(mantissa, decimal exponent) so that a decoded value equals the value that went in.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cbor2
import zstandard

from protocols.errors import DecodeError, EncodeError

FORMAT_VERSION = 1
#: Flag of a reading whose value is an MDC code (a coded enumeration, PHD IG), not a quantity.
CODED_FLAG = "coded"
#: Hard cap on a decompressed body, so a hostile batch cannot exhaust memory.
MAX_BODY_BYTES = 16 * 1024 * 1024


class MalformedBatchError(DecodeError):
    """A batch whose bytes are not a valid batch of this format."""

    def __init__(self, reason: str) -> None:
        super().__init__("uplink batch", reason)


class Priority(enum.IntEnum):
    """Forwarding priority; lower numbers leave first (alerts first)."""

    ALERT = 0
    CLINICAL = 1
    ENVIRONMENTAL = 2
    TELEMETRY = 3

    @property
    def topic_name(self) -> str:
        """The topic level for this priority (``narhub/v1/{hub}/up/{name}``)."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class WireReading:
    """One reading as it travels: exact value or special, UCUM unit, epoch-ms time."""

    stream: str
    mdc_code: int
    unit: str
    t_ms: int
    value: Decimal | None
    special: str | None = None
    flags: frozenset[str] = frozenset()
    device: str = ""


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
    """A decoded batch."""

    header: BatchHeader
    readings: tuple[WireReading, ...]


def _split(value: Decimal) -> tuple[int, int]:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"value {value} is not finite")
    mantissa = int("".join(map(str, digits)) or "0")
    return (-mantissa if sign else mantissa), exponent


def encode_body(header: BatchHeader, readings: Sequence[WireReading]) -> bytes:
    """CBOR-encode and zstd-compress a batch; the result is what gets signed."""
    rows: list[list[Any]] = []
    for r in readings:
        if (r.value is None) == (r.special is None):
            raise EncodeError("uplink batch", f"reading on {r.stream!r} needs a value or a special")
        mantissa, exponent = (0, 0) if r.value is None else _split(r.value)
        rows.append(
            [
                r.stream,
                r.device,
                r.mdc_code,
                r.unit,
                r.t_ms,
                mantissa,
                exponent,
                r.special,
                sorted(r.flags),
            ]
        )
    doc = [
        header.version,
        header.hub_id,
        header.boot_id,
        header.seq,
        header.created_ms,
        int(header.priority),
        len(rows),
        rows,
    ]
    return zstandard.ZstdCompressor(level=9).compress(cbor2.dumps(doc))


def _field(ok: bool, reason: str) -> None:
    if not ok:
        raise MalformedBatchError(reason)


def decode_body(data: bytes) -> Batch:
    """Decompress and decode a body; every field is type-checked."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_BODY_BYTES)
    except zstandard.ZstdError as exc:
        raise MalformedBatchError(f"not zstd: {exc}") from None
    try:
        doc = cbor2.loads(raw)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedBatchError(f"not CBOR: {exc}") from None
    _field(isinstance(doc, list) and len(doc) == 8, "header is not an 8-item array")
    version, hub_id, boot_id, seq, created_ms, priority, count, rows = doc
    _field(version == FORMAT_VERSION, f"unsupported format version {version!r}")
    _field(isinstance(hub_id, str) and isinstance(boot_id, str), "hub_id/boot_id not text")
    _field(isinstance(seq, int) and seq >= 0, "seq not a non-negative integer")
    _field(isinstance(created_ms, int), "created_ms not an integer")
    _field(priority in {p.value for p in Priority}, f"unknown priority {priority!r}")
    _field(isinstance(rows, list) and count == len(rows), "reading count mismatch")
    readings = []
    for i, row in enumerate(rows):
        _field(isinstance(row, list) and len(row) == 9, f"reading {i} is not a 9-item array")
        stream, device, mdc, unit, t_ms, mantissa, exponent, special, flags = row
        _field(
            isinstance(stream, str)
            and isinstance(device, str)
            and isinstance(unit, str)
            and isinstance(mdc, int)
            and isinstance(t_ms, int)
            and isinstance(mantissa, int)
            and isinstance(exponent, int)
            and (special is None or isinstance(special, str))
            and isinstance(flags, list)
            and all(isinstance(f, str) for f in flags),
            f"reading {i} has a field of the wrong type",
        )
        readings.append(
            WireReading(
                stream=stream,
                device=device,
                mdc_code=mdc,
                unit=unit,
                t_ms=t_ms,
                value=None if special is not None else Decimal(f"{mantissa}E{exponent}"),
                special=special,
                flags=frozenset(flags),
            )
        )
    header = BatchHeader(hub_id, boot_id, seq, created_ms, Priority(priority), count)
    return Batch(header, tuple(readings))
