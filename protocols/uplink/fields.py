"""The integers of an uplink body and their contexts: limits, field contexts, and the
writer and reader of the rANS-coded fields (docs/protocols/uplink.md, "Fields").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from protocols.errors import DecodeError
from protocols.uplink.rans import (
    MIN_CODED,
    Packer,
    RansError,
    Table,
    Unpacker,
    own_table,
    symbols,
)

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
#: Special values with a short code on the wire (docs/protocols/phd.md section 1.3).
SPECIAL_CODES: tuple[str, ...] = ("nan", "nres", "+inf", "-inf", "reserved")

RULE_FIXED = 0
RULE_NORMALISED = 1
RULE_EXPLICIT = 2
TIMES_DELTA = 0
#: Largest lag of the time residuals (see :func:`encode_times`).
MAX_TIME_LAG = 8
#: Time modes above MAX_TIME_LAG are lag ``mode - MAX_TIME_LAG`` over a window of this many
#: periods (the earliest of them predicts: BLE notifications arrive late, never early).
TIME_WINDOW = 8
#: Times sampled to choose a stream's time mode.
_TIME_SAMPLE = 48

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


# -- fields: the integers of the document, entropy coded -------------------------------------

#: Contexts of the integers a batch codes in its rANS stream; each has a table in the shipped
#: model (:mod:`protocols.uplink.dictionary`). See the module docstring for their order.
F_DEVICE = 0
F_COUNT = 1
F_TIME_REF = 2
F_TIME_MODE = 3
F_TIME_FIRST = 4
F_TIME_PERIOD = 5
F_TIME_SEQ = 6
F_VALUE_RULE = 7
F_VALUE_LOW = 8
F_VALUE_SCALE = 9
F_VALUE_FIRST = 10
F_VALUE_SEQ = 11
F_SEQ_KIND = 12
F_HAS_ORDER = 13
F_ORDER = 14
F_TIME_LONG = 15
F_VALUE_LONG = 16
F_TIME_PERIOD_MS = 17
FIELDS = 18
#: The context whose shipped table a long column (MIN_CODED items or more) may use.
_LONG = {F_TIME_SEQ: F_TIME_LONG, F_VALUE_SEQ: F_VALUE_LONG, F_ORDER: F_ORDER}
#: F_TIME_PERIOD: common sampling periods (whole seconds) have a code of their own (their
#: index); any other number of seconds ``n`` is ``n + len(PERIODS)`` (``n`` if negative).
PERIODS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 300, 600, 900)
_PERIOD_CODE = {seconds: code for code, seconds in enumerate(PERIODS)}
#: F_DEVICE: the stream's device is the previous stream's, or the next new one; else 2 + index.
DEVICE_SAME = 0
DEVICE_NEW = 1
#: F_SEQ_KIND: the column's items use the context's shipped table, or the column's own.
SEQ_SHIPPED = 0
SEQ_OWN = 1


class _Writer:
    """Where the encoder puts the document's integers: a rANS packer and the own tables."""

    def __init__(self, model: Sequence[Table], *, training: bool = False) -> None:
        self.model = model
        self.packer = Packer()
        self.tables: list[bytes] = []
        #: Long columns always take the shipped table (to count what a model is trained on).
        self.training = training
        #: The context of each column run of the packer (fields carry their own tables).
        self.run_contexts: dict[int, int] = {}

    def field(self, ctx: int, value: int) -> None:
        self.packer.put(self.model[ctx], value)

    def seq(self, ctx: int, values: list[int]) -> None:
        """A column of integers: long ones choose their cheaper table, shipped or own."""
        packer = self.packer
        coded, unsigned = symbols(values, packer.bigs)
        if len(values) < MIN_CODED:
            self.run_contexts[len(packer.runs)] = ctx
            packer.push(self.model[ctx], coded, unsigned)
            return
        shipped = self.model[_LONG[ctx]]
        counts = Counter(coded)
        data, own = own_table(counts)
        if not self.training and 8 * len(data) + own.cost(counts) < shipped.cost(counts):
            self.field(F_SEQ_KIND, SEQ_OWN)
            self.tables.append(data)
            self.run_contexts[len(packer.runs)] = ctx
            packer.push(own, coded, unsigned)
        else:
            self.field(F_SEQ_KIND, SEQ_SHIPPED)
            self.run_contexts[len(packer.runs)] = ctx
            packer.push(shipped, coded, unsigned)


class _Reader:
    """Where the decoder takes the document's integers from, in the order they were put."""

    def __init__(self, model: Sequence[Table], unpacker: Unpacker, tables: list[bytes]) -> None:
        self.model = model
        self.unpacker = unpacker
        self.tables = tables
        self.next_table = 0

    def field(self, ctx: int, where: str) -> int:
        try:
            return self.unpacker.get(self.model[ctx])
        except RansError as exc:
            raise _fail(where, exc.reason) from None

    def seq(self, ctx: int, count: int, where: str) -> list[int]:
        table = self.model[ctx]
        if count >= MIN_CODED:
            table = self.model[_LONG[ctx]]
            kind = self.field(F_SEQ_KIND, where)
            if kind == SEQ_OWN:
                if self.next_table >= len(self.tables):
                    raise _fail(where, "a column names a table the batch does not have")
                try:
                    table = Table.from_bytes(self.tables[self.next_table])
                except RansError as exc:
                    raise _fail(where, exc.reason) from None
                self.next_table += 1
            elif kind != SEQ_SHIPPED:
                raise _fail(where, f"unknown column kind {kind}")
        try:
            return self.unpacker.take(table, count)
        except RansError as exc:
            raise _fail(where, exc.reason) from None
