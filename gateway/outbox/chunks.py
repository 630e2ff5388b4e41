"""Chunks: the readings of one commit and priority in one row of columnar CBOR.

One commit stores the readings of each priority as one row of ``chunks`` (at most
:data:`CHUNK_MAX_READINGS`), not one row per reading: one B-tree insert per chunk, few pages
per commit (docs/pipeline.md, "The store"). The payload is the CBOR array
``[stream ids, time deltas (epoch ms), values as exact text, specials, flags]``; a *held*
chunk (the hub's clock not trusted yet) has two more columns, each reading's monotonic ns and
its effective time minus the hub's wall stamp, for the back-fill (:mod:`gateway.outbox.held`).
The ``keys`` column holds the readings' source keys (CBOR list, NULL if none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import cbor2

from gateway.outbox.batching import Kind
from gateway.outbox.streams import Streams
from gateway.outbox.transaction import Transaction
from gateway.reading import Reading
from gateway.validate import FLAG_HUB_CLOCK
from protocols.uplink import Priority, WireReading

#: Readings per chunk row, at most (a commit of more writes several chunks).
CHUNK_MAX_READINGS = 4096
#: Separates flag names in a chunk's flags column.
_FLAG_SEPARATOR = "\x1f"

Columns = list[list[Any]]


@dataclass
class Written:
    """What :func:`write` stored."""

    readings: int = 0
    #: The kinds of reading stored (their batching deadlines, :mod:`gateway.outbox.batching`).
    kinds: set[Kind] = field(default_factory=set)


def hub_relative_offset(r: Reading) -> int | None:
    """For a held reading: its time minus the hub's wall stamp, which the back-fill keeps
    (the time is on the hub's clock: reception, a board synced by the hub, a BLE stamp
    corrected by an offset observed against the hub's clock); ``None`` when the time comes
    from a device's own clock the hub never observed (a stamp taken as it is,
    gateway.pipeline.device_wall_ms): the back-fill leaves it alone."""
    if r.device_time is not None and r.clock_offset_ms is None and r.source_wall_ms is not None:
        return None
    return r.effective_ms() - r.hub_wall_ms


def write(
    tx: Transaction, readings: Iterable[Reading], streams: Streams, *, held_boot: str | None
) -> Written:
    """Write readings as chunks (one per priority per :data:`CHUNK_MAX_READINGS`).

    ``held_boot``: the wall clock is not trusted; the chunks are held (never sealed) and
    carry each reading's monotonic time and its effective - hub wall ms for the back-fill.
    """
    by_priority: dict[int, list[Reading]] = {}
    for r in readings:
        bucket = by_priority.get(r.priority)
        if bucket is None:
            by_priority[r.priority] = bucket = []
        bucket.append(r)
    written = Written()
    rows = []
    for priority, bucket in by_priority.items():
        for start in range(0, len(bucket), CHUNK_MAX_READINGS):
            part = bucket[start : start + CHUNK_MAX_READINGS]
            payload, keys = _encode(tx, part, streams, held=held_boot is not None)
            rows.append((priority, len(part), part[0].effective_ms(), payload, held_boot, keys))
        written.kinds.update((Priority(priority), c) for c in {r.continuous for r in bucket})
        written.readings += len(bucket)
    tx.executemany(
        "INSERT INTO chunks(priority, n, first_ms, payload, held_boot, keys) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    return written


def _encode(
    tx: Transaction, part: list[Reading], streams: Streams, *, held: bool
) -> tuple[bytes, bytes | None]:
    """One chunk's payload and keys column (the hot path of a commit)."""
    ids = streams.ids
    sids = []
    deltas = []
    values: list[str | None] = []
    specials: list[str | None] = []
    flags: list[str | None] = []
    keys: list[str] = []
    last = 0
    for r in part:
        key = (r.stream, r.device, r.mdc_code, r.unit)
        sid = ids.get(key)
        sids.append(sid if sid is not None else streams.add(tx, key))
        t = r.effective_ms()
        deltas.append(t - last)
        last = t
        v = r.value
        values.append(None if v is None else str(v))
        specials.append(r.special)
        flags.append(_FLAG_SEPARATOR.join(sorted(r.flags)) if r.flags else None)
        if r.source_key is not None:
            keys.append(r.source_key)
    columns: Columns = [sids, deltas, values, specials, flags]
    if held:
        columns.append([r.hub_mono_ns for r in part])
        columns.append([hub_relative_offset(r) for r in part])
    return cbor2.dumps(columns), cbor2.dumps(keys) if keys else None


def chunk_times(columns: Columns) -> list[int]:
    """The times (epoch ms) a chunk's delta column holds."""
    times = []
    t = 0
    for d in columns[1]:
        t += d
        times.append(t)
    return times


def unpack(payload: bytes) -> tuple[list[int], list[int], list[Any], list[Any], list[Any]]:
    """(stream ids, times, values, specials, flags) of a chunk (a held one's extra columns
    left out)."""
    columns = cbor2.loads(payload)
    sids, _deltas, values, specials, flags = columns[:5]
    return sids, chunk_times(columns), values, specials, flags


def to_wire(payload: bytes, streams: Streams) -> list[WireReading]:
    """A chunk's readings as they travel in a batch."""
    sids, times, values, specials, flags = unpack(payload)
    rows = streams.rows
    out = []
    for sid, t, v, special, f in zip(sids, times, values, specials, flags, strict=True):
        stream, device, mdc, unit = rows[sid]
        out.append(
            WireReading(
                stream=stream,
                mdc_code=mdc,
                unit=unit,
                t_ms=t,
                value=None if v is None else Decimal(v),
                special=special,
                flags=frozenset(f.split(_FLAG_SEPARATOR)) if f else frozenset(),
                device=device,
            )
        )
    return out


def retimed(columns: Columns, times: list[int], flag: str) -> tuple[bytes, int]:
    """A held chunk as a waiting one: (payload with the new times and ``flag``, first ms)."""
    sids, _deltas, values, specials, flags = columns[:5]
    deltas = []
    last = 0
    for t in times:
        deltas.append(t - last)
        last = t
    marked = [_retimed_flags(f, flag) for f in flags]
    return cbor2.dumps([sids, deltas, values, specials, marked]), times[0]


def _retimed_flags(flags: str | None, add: str) -> str:
    """A chunk's flags text for a reading whose hub time was back-filled or estimated."""
    names = set(flags.split(_FLAG_SEPARATOR)) if flags else set()
    names.discard(FLAG_HUB_CLOCK)  # its time no longer comes from the unsynced clock
    names.add(add)
    return _FLAG_SEPARATOR.join(sorted(names))
