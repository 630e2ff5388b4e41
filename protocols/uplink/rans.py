"""Entropy coding of a batch's integers: a static-table range asymmetric numeral system (rANS).

zstd codes a column of small deltas through byte-wise Huffman, never under one bit per item
and with a table description per frame; an overnight SpO2 column is 88 % zeros, about half a
bit per item, and a batch's single numbers (first times, first values, counts) cost whole
bytes in CBOR. Every integer of a batch's column document is therefore coded here, into one
rANS stream per batch (J. Duda, "Asymmetric numeral systems", arXiv:1311.2540, 2013; the
byte-wise variant of F. Giesen's ``rans_byte.h``, with a 24-bit state): single fields with
the table of their context in the shipped field model (:mod:`protocols.uplink.dictionary`),
columns of :data:`MIN_CODED` or more integers with the cheaper of the model's table and one
of their own. ``docs/protocols/uplink.md`` ("The rANS coder") is the wire description.

Symbols. An integer ``v`` is zigzag-mapped to ``u`` (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...,
as protobuf does). ``u < 16`` is its own symbol; larger ``u`` with ``b = u.bit_length()`` is
symbol ``b + 11`` followed by the ``b - 1`` bits below its top bit, sent raw (the scheme of
DEFLATE's length codes, RFC 1951 section 3.2.5), for ``|v| < 2**63`` (symbols 0..75).
Symbol 76 (:data:`ESCAPE`) stands for an integer outside [-2**63, 2**63) taken, in order,
from the batch's list of big integers (a CBOR array beside the stream); an escaped integer a
symbol could code is refused, so every batch has one encoding.

Table. A column's own table is one byte ``S`` (the largest symbol used), then ``S + 1``
four-bit codes, high nibble first, each naming a weight of :data:`WEIGHTS` (code 0: the
symbol does not occur). The weights are scaled to :data:`PROB_SCALE` by :func:`frequencies`,
the same integer procedure on both sides, so a table is exact in a few bytes. A shipped
table gives every symbol a frequency of at least 1 (:func:`trained_frequencies`).

Stream. The integers of a batch are coded in document order into one stream: a 3-byte
big-endian final state, then the renormalisation bytes in decoding order. The decoder must
end in the initial state :data:`RANS_L` with every byte consumed; anything else is a
malformed batch. Decoding costs O(1) per item, so a hostile stream cannot cost more than its
declared item counts (bounded by ``MAX_READINGS``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from protocols.errors import DecodeError

#: Columns shorter than this stay plain CBOR arrays (the table would cost more than it saves).
MIN_CODED = 16
PROB_BITS = 12
PROB_SCALE = 1 << PROB_BITS
#: Lower bound of the normalised state; the state lives in [RANS_L, RANS_L << 8).
RANS_L = 1 << 16
#: Symbols below this are the zigzag value itself; above, a bit-length bucket.
DIRECT = 16
_BUCKET_OFFSET = DIRECT - 5
#: The bucket of a 64-bit zigzag value, and the escape to a big integer after it.
ESCAPE = 64 + _BUCKET_OFFSET + 1
MAX_SYMBOL = ESCAPE
ALPHABET = MAX_SYMBOL + 1
#: Weight of each 4-bit table code (about sqrt(2) apart; code 0: absent).
WEIGHTS: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192)
#: Largest raw-bit chunk pushed at once (keeps the state within 32 bits).
_RAW_CHUNK = 16
_LIMIT = 1 << 63
#: Geometric means of neighbouring weights: a count ratio is rounded to the nearest weight.
_THRESHOLDS = [(WEIGHTS[q] * WEIGHTS[q + 1]) ** 0.5 for q in range(1, len(WEIGHTS) - 1)]
_STATE_BYTES = 3
#: State bound below which ``n`` raw bits can be pushed (state stays under RANS_L << 8).
_RAW_LIMITS = [(RANS_L >> n) << 8 for n in range(_RAW_CHUNK + 1)]


class RansError(DecodeError):
    """A coded column or rANS stream that is not valid (``reason`` says how)."""

    def __init__(self, reason: str) -> None:
        super().__init__("uplink batch rANS", reason)


def frequencies(codes: Sequence[int]) -> list[int]:
    """The frequency of each symbol (summing to :data:`PROB_SCALE`) for a table's codes.

    Raises :class:`RansError` when the codes name no symbol or cannot be scaled (every used
    symbol keeps a frequency of at least 1)."""
    weights = [WEIGHTS[q] for q in codes]
    total = sum(weights)
    if not total:
        raise RansError("a table names no symbol")
    freqs = [max(1, w * PROB_SCALE // total) if w else 0 for w in weights]
    top = freqs.index(max(freqs))
    freqs[top] += PROB_SCALE - sum(freqs)
    if freqs[top] < 1:
        raise RansError("a table's weights cannot be scaled to the probability range")
    return freqs


def uniform_frequencies() -> list[int]:
    """Frequencies giving every symbol the same share (the remainder to symbol 0)."""
    freqs = [PROB_SCALE // ALPHABET] * ALPHABET
    freqs[0] += PROB_SCALE - sum(freqs)
    return freqs


def trained_frequencies(counts: Counter[int]) -> list[int]:
    """Frequencies for symbols seen with ``counts``: every symbol keeps at least 1, so any
    integer stays codable; the rest is shared in proportion to the counts."""
    spare = PROB_SCALE - ALPHABET
    total = sum(counts.values())
    freqs = [1 + (counts.get(s, 0) * spare // total if total else 0) for s in range(ALPHABET)]
    top = freqs.index(max(freqs))
    freqs[top] += PROB_SCALE - sum(freqs)
    return freqs


class Table:
    """A static model: the frequency of each symbol, summing to :data:`PROB_SCALE`."""

    __slots__ = ("_lookup", "bits", "coding", "complete", "freqs", "limits", "starts")

    def __init__(self, freqs: Sequence[int]) -> None:
        if sum(freqs) != PROB_SCALE or min(freqs) < 0 or len(freqs) > ALPHABET:
            raise RansError("a table's frequencies do not sum to the probability range")
        self.freqs = list(freqs)
        self.starts = [0] * len(freqs)
        total = 0
        for s, f in enumerate(freqs):
            self.starts[s] = total
            total += f
        self.limits = [(RANS_L >> PROB_BITS << 8) * f for f in freqs]
        #: ``(frequency, start, renormalisation limit)`` of each symbol, for the encoder.
        self.coding = list(zip(self.freqs, self.starts, self.limits, strict=True))
        #: Cost of each symbol in bits (an absent symbol costs infinitely much).
        self.bits = [PROB_BITS - math.log2(f) if f else math.inf for f in freqs]
        self._lookup: list[int] | None = None
        #: Every symbol has a frequency: any integer can be coded without a check.
        self.complete = len(freqs) == ALPHABET and min(freqs) > 0

    @classmethod
    def from_bytes(cls, table: bytes) -> Table:
        """The table a column sends (see the module docstring)."""
        return cls(frequencies(parse_table(table)))

    def lookup(self) -> list[int]:
        """Symbol of each of the :data:`PROB_SCALE` slots."""
        if self._lookup is None:
            slots: list[int] = []
            for s, f in enumerate(self.freqs):
                slots += [s] * f
            self._lookup = slots
        return self._lookup

    def cost(self, counts: Counter[int]) -> float:
        """Bits to code symbols with these counts (infinite if one cannot be coded)."""
        bits = self.bits
        size = len(bits)
        return sum(n * bits[s] if s < size else math.inf for s, n in counts.items())


def symbols(values: Sequence[int], bigs: list[int]) -> tuple[list[int], list[int]]:
    """``(symbols, zigzag values)`` of ``values``; integers of 64 bits or more escape to
    ``bigs`` (appended in order)."""
    unsigned = [v << 1 if v >= 0 else (-v << 1) - 1 for v in values]
    out = [u if u < DIRECT else u.bit_length() + _BUCKET_OFFSET for u in unsigned]
    if out and max(out) >= ESCAPE:
        for i, s in enumerate(out):
            if s >= ESCAPE:
                out[i] = ESCAPE
                bigs.append(values[i])
    return out, unsigned


def own_table(counts: Counter[int]) -> tuple[bytes, Table]:
    """The table a column would send for symbols with ``counts``, and its model."""
    top = max(counts.values())
    codes = [0] * (max(counts) + 1)
    for s, n in counts.items():
        codes[s] = bisect_right(_THRESHOLDS, n * 192 / top) + 1
    padded = codes if len(codes) % 2 == 0 else [*codes, 0]
    data = bytes(
        [len(codes) - 1, *(hi << 4 | lo for hi, lo in zip(padded[::2], padded[1::2], strict=True))]
    )
    return data, Table(frequencies(codes))


def parse_table(table: bytes) -> list[int]:
    """The codes of a table (see the module docstring); :class:`RansError` if malformed."""
    if not table or table[0] > MAX_SYMBOL:
        raise RansError("table does not start with a symbol count within range")
    size = table[0] + 1
    if len(table) != 1 + (size + 1) // 2:
        raise RansError(f"table of {size} symbols is {len(table)} bytes")
    codes = [n for byte in table[1:] for n in (byte >> 4, byte & 15)]
    if size % 2 and codes[-1]:
        raise RansError("table padding nibble is not zero")
    codes = codes[:size]
    if not codes[-1]:
        raise RansError("table's last symbol has weight 0")
    return codes


class Packer:
    """Collects a batch's coded integers (in document order) and writes their stream."""

    def __init__(self) -> None:
        #: ``(table, symbols, zigzag values)`` of every queued column, in order; a run of
        #: single fields has table ``None`` and ``(table, symbol, zigzag value)`` items.
        self.runs: list[tuple[Table | None, list[Any], list[int]]] = []
        self._fields: list[Any] | None = None
        #: Integers of 64 bits or more, in order (they travel beside the stream).
        self.bigs: list[int] = []

    def put(self, table: Table, value: int) -> None:
        """Queue one integer coded with ``table``."""
        u = value << 1 if value >= 0 else (-value << 1) - 1
        s = min(ESCAPE, u if u < DIRECT else u.bit_length() + _BUCKET_OFFSET)
        if not table.complete and (s >= len(table.freqs) or not table.freqs[s]):
            raise RansError("a symbol the table cannot code")
        if s == ESCAPE:
            self.bigs.append(value)
        fields = self._fields
        if fields is None:
            fields = self._fields = []
            self.runs.append((None, fields, []))
        fields.append((table, s, u))

    def push(self, table: Table, coded: list[int], unsigned: list[int]) -> None:
        """Queue integers already turned into :func:`symbols` (with this packer's ``bigs``)."""
        if not coded:
            return
        size = len(table.freqs)
        if not table.complete and (
            max(coded) >= size or not all(table.freqs[s] for s in set(coded))
        ):
            raise RansError("a symbol the table cannot code")
        self._fields = None
        self.runs.append((table, coded, unsigned))

    def finish(self) -> bytes:
        """The rANS stream of every queued integer."""
        out = bytearray()
        emit = out.append
        x = RANS_L
        raw_limits = _RAW_LIMITS
        for table, coded, unsigned in reversed(self.runs):
            items: Iterable[tuple[tuple[int, int, int], int, int]]
            if table is None:  # single fields, each with its table
                items = [(t.coding[s], s, u) for t, s, u in reversed(coded)]
            else:
                backwards = coded[::-1]
                items = zip(
                    map(table.coding.__getitem__, backwards),
                    backwards,
                    reversed(unsigned),
                    strict=True,
                )
            for (f, start, limit), s, u in items:
                if DIRECT <= s < ESCAPE:
                    nbits = s - _BUCKET_OFFSET - 1
                    if nbits <= _RAW_CHUNK:
                        raw_limit = raw_limits[nbits]
                        while x >= raw_limit:
                            emit(x & 255)
                            x >>= 8
                        x = (x << nbits) | (u - (1 << nbits))
                    else:
                        x = _push_bits(x, u, emit)
                while x >= limit:
                    emit(x & 255)
                    x >>= 8
                x = ((x // f) << PROB_BITS) + x % f + start
        out.reverse()
        return x.to_bytes(_STATE_BYTES, "big") + bytes(out)


def _push_bits(x: int, u: int, emit: Any) -> int:
    """Push the bits of ``u`` below its top bit (a bucket symbol's extra bits) onto state
    ``x``; the decoder reads them high chunk first, so the low chunk goes first."""
    nbits = u.bit_length() - 1
    extra = u - (1 << nbits)
    chunks = []
    while nbits:
        take = min(nbits, _RAW_CHUNK)
        nbits -= take
        chunks.append((take, (extra >> nbits) & ((1 << take) - 1)))
    for take, bits in reversed(chunks):
        limit = (RANS_L >> take) << 8
        while x >= limit:
            emit(x & 255)
            x >>= 8
        x = (x << take) | bits
    return x


class Unpacker:
    """Reads coded integers back from a batch's rANS stream, in document order."""

    def __init__(self, stream: bytes, bigs: Sequence[int] = ()) -> None:
        if len(stream) < _STATE_BYTES:
            raise RansError(f"stream of {len(stream)} bytes has no state")
        self._data = stream
        self._pos = _STATE_BYTES
        self._x = int.from_bytes(stream[:_STATE_BYTES], "big")
        if not RANS_L <= self._x < RANS_L << 8:
            raise RansError("stream's state is out of range")
        self._bigs = list(bigs)
        self._big = 0

    def get(self, table: Table) -> int:
        """The next integer, coded with ``table``."""
        return self.take(table, 1)[0]

    def take(self, table: Table, count: int) -> list[int]:
        """The next ``count`` integers, coded with ``table``."""
        freqs = table.freqs
        starts = table.starts
        lookup = table.lookup()
        data = self._data
        end = len(data)
        pos = self._pos
        x = self._x
        mask = PROB_SCALE - 1
        out: list[int] = []
        append = out.append
        for _ in range(count):
            slot = x & mask
            s = lookup[slot]
            x = freqs[s] * (x >> PROB_BITS) + slot - starts[s]
            while x < RANS_L:
                if pos >= end:
                    raise RansError("stream ends early")
                x = (x << 8) | data[pos]
                pos += 1
            if s < DIRECT:
                u = s
            elif s == ESCAPE:
                if self._big >= len(self._bigs):
                    raise RansError("more escapes than big integers")
                big = self._bigs[self._big]
                if -_LIMIT <= big < _LIMIT:
                    raise RansError("an escaped integer that a symbol could code")
                append(big)
                self._big += 1
                continue
            else:
                nbits = s - _BUCKET_OFFSET - 1
                u = 1
                while nbits:
                    take = min(nbits, _RAW_CHUNK)
                    nbits -= take
                    u = (u << take) | (x & ((1 << take) - 1))
                    x >>= take
                    while x < RANS_L:
                        if pos >= end:
                            raise RansError("stream ends early")
                        x = (x << 8) | data[pos]
                        pos += 1
            append(u >> 1 if not u & 1 else -(u >> 1) - 1)
        self._pos = pos
        self._x = x
        return out

    def close(self) -> None:
        """Check the stream ended exactly: initial state, every byte and big integer read."""
        if self._x != RANS_L or self._pos != len(self._data):
            raise RansError(
                f"stream does not end cleanly ({len(self._data) - self._pos} bytes left)"
            )
        if self._big != len(self._bigs):
            raise RansError(f"{len(self._bigs) - self._big} big integers left over")
