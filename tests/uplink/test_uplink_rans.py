"""rANS coding of integer columns (``protocols/uplink/rans.py``, ``docs/protocols/uplink.md``
"Coded columns"): lossless for any integers, typed errors for any bad bytes, spec vectors
derived by hand from the module docstring, and a compression bound that can fail."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError
from protocols.uplink.dictionary import FIELD_CONTEXTS, field_model
from protocols.uplink.rans import (
    ALPHABET,
    DIRECT,
    ESCAPE,
    PROB_SCALE,
    RANS_L,
    WEIGHTS,
    Packer,
    RansError,
    Table,
    Unpacker,
    frequencies,
    own_table,
    parse_table,
    symbols,
    uniform_frequencies,
)

TRAINED = field_model(2)
UNIFORM = Table(uniform_frequencies())
#: Values around every boundary of the symbol mapping (direct/bucket, 64 bits, escape).
BOUNDARIES = [
    0,
    -1,
    1,
    7,
    -8,
    8,
    -9,
    2**62,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    2**64,
    -(2**64),
    2**200,
    -(2**200) + 3,
]
integers = st.one_of(
    st.integers(-8, 7),
    st.integers(-(2**64), 2**64),
    st.integers(-(2**300), 2**300),
    st.sampled_from(BOUNDARIES),
)
#: A field's table: the uniform one or one of the shipped trained contexts (both code anything).
field_tables = st.one_of(st.just(UNIFORM), st.sampled_from(TRAINED))


def escapes(value: int) -> bool:
    """Whether ``value`` goes to the big integers: its zigzag value has more than 64 bits."""
    return not -(2**63) <= value < 2**63


# -- 1. round trip ---------------------------------------------------------------------------

column = st.tuples(
    st.sampled_from(["own", "uniform", "trained"]),
    st.integers(0, FIELD_CONTEXTS - 1),
    st.lists(integers, max_size=40),
    st.lists(st.tuples(field_tables, integers), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(column, max_size=6))
def test_columns_and_fields_round_trip(
    batch: list[tuple[str, int, list[int], list[tuple[Table, int]]]],
) -> None:
    packer = Packer()
    decoder_tables: list[Table] = []
    for kind, context, values, fields in batch:
        coded, unsigned = symbols(values, packer.bigs)
        if kind == "own" and values:
            data, table = own_table(Counter(coded))
            # The decoder only sees the table bytes: it must rebuild the same model.
            decoder_table = Table.from_bytes(data)
            assert decoder_table.freqs == table.freqs
        else:
            table = UNIFORM if kind == "uniform" else TRAINED[context]
            decoder_table = table
        decoder_tables.append(decoder_table)
        packer.push(table, coded, unsigned)
        for field_table, value in fields:
            packer.put(field_table, value)
    stream = packer.finish()
    everything = [v for _, _, values, fields in batch for v in [*values, *(f[1] for f in fields)]]
    assert packer.bigs == [v for v in everything if escapes(v)]

    unpacker = Unpacker(stream, packer.bigs)
    for (_, _, values, fields), decoder_table in zip(batch, decoder_tables, strict=True):
        assert unpacker.take(decoder_table, len(values)) == values
        for field_table, value in fields:
            assert unpacker.get(field_table) == value
    unpacker.close()


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(0, ESCAPE), st.integers(1, 10**6), min_size=1))
def test_own_table_names_exactly_the_used_symbols(counts: dict[int, int]) -> None:
    data, table = own_table(Counter(counts))
    codes = parse_table(data)
    assert len(codes) == max(counts) + 1
    assert [s for s, q in enumerate(codes) if q] == sorted(counts)
    assert table.freqs == frequencies(codes)
    assert [s for s, f in enumerate(table.freqs) if f] == sorted(counts)


# -- 2. arbitrary bytes never escape as anything but RansError -------------------------------

FUZZ_TABLES = [
    UNIFORM,
    TRAINED[0],
    TRAINED[7],
    Table.from_bytes(bytes([2, 0xB1, 0x40])),
    Table.from_bytes(bytes([0, 0x10])),
    Table.from_bytes(bytes([ESCAPE, *([0x11] * 38), 0x10])),
]


def test_rans_error_is_a_decode_error_and_value_error() -> None:
    assert issubclass(RansError, DecodeError)
    assert issubclass(RansError, ValueError)
    assert RansError("x").reason == "x"


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=64),
    st.lists(st.integers(), max_size=3),
    st.lists(st.tuples(st.integers(0, len(FUZZ_TABLES) - 1), st.integers(0, 20)), max_size=6),
)
def test_arbitrary_stream_gives_values_or_rans_error(
    stream: bytes, bigs: list[int], takes: list[tuple[int, int]]
) -> None:
    try:
        unpacker = Unpacker(stream, bigs)
        for index, count in takes:
            got = unpacker.take(FUZZ_TABLES[index], count)
            assert len(got) == count
            assert all(type(v) is int for v in got)
        unpacker.close()
    except RansError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=48))
def test_arbitrary_table_bytes_give_a_table_or_rans_error(data: bytes) -> None:
    try:
        table = Table.from_bytes(data)
    except RansError:
        return
    codes = parse_table(data)
    assert table.freqs == frequencies(codes)
    assert len(data) == 1 + (len(codes) + 1) // 2


# -- 3. every accepted table scales exactly --------------------------------------------------


@st.composite
def well_formed_tables(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Table bytes built per the docstring: ``S``, then ``S + 1`` nibbles, zero padding."""
    top = draw(st.integers(0, ESCAPE))
    codes = draw(st.lists(st.integers(0, 15), min_size=top, max_size=top))
    codes.append(draw(st.integers(1, 15)))
    nibbles = codes + [0] * (len(codes) % 2)
    body = bytes(hi << 4 | lo for hi, lo in zip(nibbles[::2], nibbles[1::2], strict=True))
    return bytes([top]) + body, codes


def check_scaled(codes: list[int]) -> None:
    try:
        freqs = frequencies(codes)
    except RansError:
        return
    assert sum(freqs) == PROB_SCALE
    assert len(freqs) == len(codes)
    for q, f in zip(codes, freqs, strict=True):
        assert (f > 0) if q else (f == 0)
    assert Table(freqs).freqs == freqs


@settings(max_examples=300, deadline=None)
@given(well_formed_tables())
def test_well_formed_table_parses_and_scales(table: tuple[bytes, list[int]]) -> None:
    data, codes = table
    assert parse_table(data) == codes
    check_scaled(codes)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=48))
def test_any_accepted_table_scales(data: bytes) -> None:
    try:
        codes = parse_table(data)
    except RansError:
        return
    check_scaled(codes)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(range(1, 16)), min_size=1, max_size=ALPHABET))
def test_any_nonzero_codes_scale(codes: list[int]) -> None:
    check_scaled(codes)


# -- 4. spec vectors, derived by hand from the docstring --------------------------------------


@pytest.mark.parametrize(
    ("value", "symbol", "unsigned"),
    [
        (0, 0, 0),
        (-1, 1, 1),
        (1, 2, 2),
        (-2, 3, 3),
        (7, 14, 14),
        (-8, 15, 15),
        # u = 16 has b = 5 bits: symbol 5 + 11 = 16, then 4 raw bits.
        (8, 16, 16),
        # u = 17: b = 5, symbol 16 as well (raw bits 0001).
        (-9, 16, 17),
        # u = 32: b = 6, symbol 17.
        (16, 17, 32),
        # u = 2**64 - 2 has 64 bits: symbol 64 + 11 = 75, the last bucket.
        (2**63 - 1, 75, 2**64 - 2),
        # u = 2**64 - 1, still 64 bits.
        (-(2**63), 75, 2**64 - 1),
    ],
)
def test_symbol_mapping(value: int, symbol: int, unsigned: int) -> None:
    bigs: list[int] = []
    assert symbols([value], bigs) == ([symbol], [unsigned])
    assert bigs == []


def test_symbols_of_64_bits_or_more_escape_in_order() -> None:
    bigs: list[int] = [123]
    coded, _ = symbols([2**63, 5, -(2**63) - 1, 2**64, -(2**63)], bigs)
    assert ESCAPE == 76
    assert coded == [76, 10, 76, 76, 75]
    assert bigs == [123, 2**63, -(2**63) - 1, 2**64]


def test_constants_match_the_docstring() -> None:
    assert (DIRECT, ESCAPE, ALPHABET, PROB_SCALE, RANS_L) == (16, 76, 77, 4096, 65536)
    assert len(WEIGHTS) == 16
    assert WEIGHTS[0] == 0


def test_table_vector() -> None:
    data = bytes([2, 0xB1, 0x40])  # S = 2; nibbles B, 1, 4 and the zero padding nibble
    assert parse_table(data) == [11, 1, 4]
    # Weights 48, 1, 4 (total 53). Scaled: 48 * 4096 // 53 = 3709, 4096 // 53 = 77,
    # 4 * 4096 // 53 = 309; they sum to 4095, so the largest (symbol 0) gets the 1 left.
    assert frequencies([11, 1, 4]) == [3710, 77, 309]
    table = Table.from_bytes(data)
    assert table.freqs == [3710, 77, 309]
    assert table.starts == [0, 3710, 3787]


def test_table_vector_with_a_tiny_symbol() -> None:
    # 76 symbols of weight 192 (code 15) and one of weight 1 (code 1), total 14593:
    # 192 * 4096 // 14593 = 53 each and 4096 // 14593 = 0, raised to 1. The sum is
    # 76 * 53 + 1 = 4029, so symbol 0 (the first largest) gets 4096 - 4029 = 67 more.
    freqs = frequencies([15] * 76 + [1])
    assert freqs == [120] + [53] * 75 + [1]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "symbol count"),
        (bytes([2, 0xB1, 0x41]), "padding nibble"),
        (bytes([2, 0xB1, 0x00]), "last symbol has weight 0"),
        (bytes([1, 0x10]), "last symbol has weight 0"),
        (bytes([2, 0xB1]), "is 2 bytes"),
        (bytes([2, 0xB1, 0x40, 0x00]), "is 4 bytes"),
        (bytes([1]), "is 1 bytes"),
        (bytes([77, *([0x11] * 39)]), "symbol count"),
        (bytes([255, *([0x11] * 128)]), "symbol count"),
    ],
)
def test_malformed_tables(data: bytes, reason: str) -> None:
    with pytest.raises(RansError, match=reason):
        parse_table(data)
    with pytest.raises(RansError):
        Table.from_bytes(data)


def test_codes_naming_no_symbol() -> None:
    with pytest.raises(RansError, match="names no symbol"):
        frequencies([0, 0, 0])


@pytest.mark.parametrize(
    ("table", "values", "stream"),
    [
        # One symbol of frequency 4096: coding it maps x = 65536 to
        # (65536 // 4096 << 12) + 0 = 65536, so the stream is the initial state alone.
        (bytes([0, 0x10]), [0, 0, 0], bytes([0x01, 0x00, 0x00])),
        # Table [3710, 77, 309], value -1 (symbol 1): 65536 = 851 * 77 + 9, so
        # x = (851 << 12) + 9 + 3710 = 3489415 = 0x353E87 (below 77 * 4096 << 8: no byte out).
        (bytes([2, 0xB1, 0x40]), [-1], bytes([0x35, 0x3E, 0x87])),
        # Symbol 16 alone (S = 16, nibbles 0 * 16, 1, pad 0). Value 9: u = 18 = 0b10010,
        # raw bits 0010 pushed first: x = 65536 << 4 | 2 = 0x100002; then the symbol with
        # f = 4096 keeps x (0x100002 // 4096 << 12 plus the remainder 2).
        (bytes([16, *([0] * 8), 0x10]), [9], bytes([0x10, 0x00, 0x02])),
        # Value 8: u = 16, raw bits 0000: x = 0x100000.
        (bytes([16, *([0] * 8), 0x10]), [8], bytes([0x10, 0x00, 0x00])),
        # Symbol 29 alone (S = 29: 30 nibbles, no padding). Value -65539:
        # u = 2 * 65539 - 1 = 2**17 + 5, b = 18, symbol 29, 17 raw bits 0...0101 in chunks
        # of at most 16, the high chunk (16 bits: 2) decoded first, so the low chunk (1 bit:
        # 1) is pushed first: x = 65536 << 1 | 1 = 0x20001. Pushing 16 bits needs x < 256:
        # bytes 0x01, 0x00 go out (x = 2), then x = 2 << 16 | 2 = 0x20002, kept by the
        # symbol (f = 4096). Stream: state 02 00 02, then the bytes in decoding order 00 01.
        (bytes([29, *([0] * 14), 0x01]), [-65539], bytes([0x02, 0x00, 0x02, 0x00, 0x01])),
    ],
)
def test_stream_vectors(table: bytes, values: list[int], stream: bytes) -> None:
    model = Table.from_bytes(table)
    packer = Packer()
    coded, unsigned = symbols(values, packer.bigs)
    packer.push(model, coded, unsigned)
    assert packer.finish() == stream
    unpacker = Unpacker(stream)
    assert unpacker.take(model, len(values)) == values
    unpacker.close()


def test_empty_packer_gives_the_initial_state() -> None:
    packer = Packer()
    assert not packer.runs
    assert packer.finish() == RANS_L.to_bytes(3, "big")
    Unpacker(packer.finish()).close()


# -- 5. exactness: every kind of damage is caught ---------------------------------------------


def packed(values: list[int], table: Table = UNIFORM) -> tuple[bytes, list[int]]:
    packer = Packer()
    coded, unsigned = symbols(values, packer.bigs)
    packer.push(table, coded, unsigned)
    return packer.finish(), packer.bigs


NOISY = [random.Random(7).randrange(-(2**40), 2**40) for _ in range(40)]


def decodes_cleanly(stream: bytes, bigs: list[int], table: Table, values: list[int]) -> bool:
    try:
        unpacker = Unpacker(stream, bigs)
        got = unpacker.take(table, len(values))
        unpacker.close()
    except RansError:
        return False
    return got == values


def test_original_noisy_stream_decodes() -> None:
    stream, bigs = packed(NOISY)
    assert len(stream) > 100
    assert decodes_cleanly(stream, bigs, UNIFORM, NOISY)


@pytest.mark.parametrize("cut", [1, 2, 17])
def test_truncated_stream_ends_early(cut: int) -> None:
    stream, bigs = packed(NOISY)
    unpacker = Unpacker(stream[:-cut], bigs)
    with pytest.raises(RansError, match="ends early"):
        unpacker.take(UNIFORM, len(NOISY))


@pytest.mark.parametrize("length", [0, 1, 2])
def test_stream_without_state(length: int) -> None:
    with pytest.raises(RansError, match="no state"):
        Unpacker(bytes(length))


@pytest.mark.parametrize("state", [b"\x00\x00\x00", b"\x00\xff\xff"])
def test_state_out_of_range(state: bytes) -> None:
    with pytest.raises(RansError, match="out of range"):
        Unpacker(state)


def test_trailing_byte_fails_close() -> None:
    stream, bigs = packed(NOISY)
    unpacker = Unpacker(stream + b"\x00", bigs)
    assert unpacker.take(UNIFORM, len(NOISY)) == NOISY
    with pytest.raises(RansError, match="1 bytes left"):
        unpacker.close()


def test_reading_too_few_items_fails_close() -> None:
    stream, bigs = packed([0, 1, 2, 3])
    unpacker = Unpacker(stream, bigs)
    unpacker.take(UNIFORM, 3)
    with pytest.raises(RansError, match="does not end cleanly"):
        unpacker.close()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**24 - 1))
def test_altered_state_is_never_silently_accepted(mask: int) -> None:
    stream, bigs = packed(NOISY)
    state = int.from_bytes(stream[:3], "big") ^ mask
    altered = state.to_bytes(3, "big") + stream[3:]
    assert not decodes_cleanly(altered, bigs, UNIFORM, NOISY)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_altered_body_byte_is_never_silently_accepted(data: st.DataObject) -> None:
    stream, bigs = packed(NOISY)
    position = data.draw(st.integers(3, len(stream) - 1))
    mask = data.draw(st.integers(1, 255))
    altered = bytearray(stream)
    altered[position] ^= mask
    assert not decodes_cleanly(bytes(altered), bigs, UNIFORM, NOISY)


def test_more_escapes_than_bigs() -> None:
    stream, bigs = packed([2**70, 1, -(2**70)])
    assert bigs == [2**70, -(2**70)]
    unpacker = Unpacker(stream, bigs[:1])
    with pytest.raises(RansError, match="more escapes than big integers"):
        unpacker.take(UNIFORM, 3)


def test_leftover_bigs_fail_close() -> None:
    stream, bigs = packed([2**70, 1])
    unpacker = Unpacker(stream, [*bigs, 5])
    assert unpacker.take(UNIFORM, 2) == [2**70, 1]
    with pytest.raises(RansError, match="1 big integers left over"):
        unpacker.close()


def test_packer_refuses_a_symbol_its_table_cannot_code() -> None:
    _, table = own_table(Counter({0: 5, 2: 1}))
    packer = Packer()
    with pytest.raises(RansError, match="cannot code"):
        packer.push(table, [1], [1])
    with pytest.raises(RansError, match="cannot code"):
        packer.push(table, [3], [3])
    with pytest.raises(RansError, match="cannot code"):
        packer.put(table, -1)
    with pytest.raises(RansError, match="cannot code"):
        packer.put(table, 2**70)


# -- 6. compression -------------------------------------------------------------------------


def test_skewed_column_codes_near_its_entropy() -> None:
    rng = random.Random(2026)
    values = rng.choices([0, 1, -1], weights=[88, 6, 6], k=600)
    counts = Counter(values)
    n = len(values)
    entropy_bits = -sum(c * math.log2(c / n) for c in counts.values())
    packer = Packer()
    coded, unsigned = symbols(values, packer.bigs)
    table_bytes, table = own_table(Counter(coded))
    packer.push(table, coded, unsigned)
    stream = packer.finish()
    # About 0.65 bits an item: ~49 bytes. Byte-wise Huffman (>= 1 bit an item) would need 75.
    bound = 1.10 * entropy_bits / 8 + len(table_bytes) + 3
    assert len(stream) + len(table_bytes) <= bound, (len(stream), entropy_bits / 8)
    unpacker = Unpacker(stream, packer.bigs)
    assert unpacker.take(Table.from_bytes(table_bytes), n) == values
    unpacker.close()
