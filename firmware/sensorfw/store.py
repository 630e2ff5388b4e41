"""Unacknowledged readings: a RAM ring mirrored slot-for-slot in a bounded flash log.

Every reading gets a log sequence number (``lsn``, monotonic across boots) and lives in slot
``lsn % capacity`` of both the RAM ring and the flash file, as one 40-byte record::

    <I lsn  <I boot_id  <I seq  <Q mono_ms  <Q wall_ms+1 (0 = none)  <i value
    <B kind  <B index  2 pad  <I CRC-32 of the 36 bytes before it

A reading is written to flash (and flushed) before it can be sent, so a power cut loses
nothing the board could have sent. A slot is freed only by an ACK; the oldest freed ``lsn``
boundary goes to ``<path>.ack`` (written to a temporary file, then renamed). A torn write
breaks only that record's CRC: at boot the valid records at or after the ACK boundary are
loaded in ``lsn`` order, up to the first gap.

When all ``capacity`` slots hold unacknowledged readings (the hub has been away for a long
time), the oldest reading is overwritten and ``dropped`` counts it (reported in PONG).
Flash wear: one record write per reading plus one small file per ACK; at one reading per
10 s that is about 8,640 record writes a day, spread by LittleFS wear levelling.
"""

import os
import struct

from micropython import const

from sensorfw.frame import crc32

REC_BYTES = const(40)
_BODY = const(36)
_FMT = "<IIIQQiBB2x"
_U32 = const(0xFFFFFFFF)


class Store:
    def __init__(self, capacity: int, path: str | None) -> None:
        self.capacity = capacity
        self.ring = bytearray(capacity * REC_BYTES)
        self._mv = memoryview(self.ring)
        self.tail = 0  # lsn of the oldest unacknowledged reading
        self.head = 0  # lsn the next reading gets
        self.dropped = 0
        self.path = path
        self._f = None
        self.flash_ok = path is not None
        self.seq = 0  # next sequence number of this boot
        self.boot_id = 0

    # --- persistence -----------------------------------------------------------------
    def open(self) -> None:
        """Load the flash log (if any) into the ring; raise OSError if flash is unusable."""
        path = self.path
        if path is None:
            return
        acked = 0
        try:
            with open(path + ".ack", "rb") as f:
                raw = f.read()
            if len(raw) == 8 and crc32(raw[:4]) == struct.unpack("<I", raw[4:])[0]:
                acked = struct.unpack("<I", raw[:4])[0]
        except OSError:
            pass
        size = self.capacity * REC_BYTES
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        data = f.read(size)
        if len(data) < size:
            f.seek(len(data))
            f.write(bytes(size - len(data)))
            f.flush()
        found = []
        for slot in range(len(data) // REC_BYTES):
            rec = data[slot * REC_BYTES : (slot + 1) * REC_BYTES]
            if rec == bytes(REC_BYTES):
                continue
            if crc32(rec[:_BODY]) != struct.unpack_from("<I", rec, _BODY)[0]:
                continue
            lsn = struct.unpack_from("<I", rec, 0)[0]
            if lsn % self.capacity != slot or lsn < acked:
                continue
            found.append((lsn, rec))
        found.sort(key=lambda x: x[0])
        self.tail = self.head = acked
        if found:
            self.tail = self.head = found[0][0]
            for lsn, rec in found:
                if lsn != self.head:
                    break  # a gap: nothing after it can be trusted in order
                slot = lsn % self.capacity
                self._mv[slot * REC_BYTES : (slot + 1) * REC_BYTES] = rec
                self.head = lsn + 1
        self._f = f

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            self._f.close()
            self._f = None

    def _write_slot(self, slot: int) -> None:
        f = self._f
        if f is None:
            return
        try:
            f.seek(slot * REC_BYTES)
            f.write(self._mv[slot * REC_BYTES : (slot + 1) * REC_BYTES])
            f.flush()
        except OSError:
            self.flash_ok = False

    def _write_ack(self) -> None:
        if self._f is None or self.path is None:
            return
        raw = struct.pack("<I", self.tail & _U32)
        tmp = self.path + ".ack.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(raw + struct.pack("<I", crc32(raw)))
            os.rename(tmp, self.path + ".ack")
        except OSError:
            self.flash_ok = False

    # --- ring ------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return self.head - self.tail

    def append(self, kind: int, index: int, mono_ms: int, value: int, wall_ms: int | None) -> int:
        """Log one reading of this boot; return its sequence number."""
        if self.count >= self.capacity:
            self.tail += 1
            self.dropped += 1
        lsn = self.head
        slot = lsn % self.capacity
        off = slot * REC_BYTES
        seq = self.seq
        struct.pack_into(
            _FMT,
            self.ring,
            off,
            lsn & _U32,
            self.boot_id,
            seq,
            mono_ms,
            0 if wall_ms is None else wall_ms + 1,
            value,
            kind,
            index,
        )
        struct.pack_into("<I", self.ring, off + _BODY, crc32(self._mv[off : off + _BODY]))
        self.head = lsn + 1
        self.seq = seq + 1
        self._write_slot(slot)
        return seq

    def record(self, lsn: int) -> tuple:
        """``(boot_id, seq, kind, index, mono_ms, value, wall_ms)`` of a held reading."""
        _, boot, seq, mono, wall, value, kind, index = struct.unpack_from(
            _FMT, self.ring, (lsn % self.capacity) * REC_BYTES
        )
        return boot, seq, kind, index, mono, value, (wall - 1 if wall else None)

    def boot_and_seq(self, lsn: int) -> tuple:
        off = (lsn % self.capacity) * REC_BYTES
        return struct.unpack_from("<II", self.ring, off + 4)

    def base_seq(self, boot_id: int, lsn: int) -> int:
        """Oldest held sequence number of ``boot_id`` (readings at ``lsn`` belong to it)."""
        i = self.tail
        while i < lsn:
            b, s = self.boot_and_seq(i)
            if b == boot_id:
                return s
            i += 1
        return self.boot_and_seq(lsn)[1]

    def ack(self, boot_id: int, seq: int) -> int:
        """Free readings of ``boot_id`` up to ``seq`` at the tail; return how many."""
        freed = 0
        while self.tail < self.head:
            b, s = self.boot_and_seq(self.tail)
            if b != boot_id or s > seq:
                break
            self.tail += 1
            freed += 1
        if freed:
            self._write_ack()
        return freed
