"""Shipped dictionaries for small batches, named by id in the header.

A 5-minute batch holds a few hundred readings, too few for a coder to learn from. A shipped
dictionary gives it what it would have learnt:

- a zstd dictionary (RFC 8878 section 5): the layout of the column document (stream
  descriptors, units, device table) and zstd's entropy tables;
- the field model: one rANS table (:class:`protocols.uplink.rans.Table`) per field context of
  :mod:`protocols.uplink.columns` (device index, reading count, time mode, first time,
  period, value scale, first value, short columns ...).

Dictionary 2 is trained on reference days with seeds other than the benchmark's
(``rig/wiregen/zdict.py`` builds it). A shipped dictionary never changes: a new one gets a
new id, and every decoder keeps every id shipped for the format versions it reads, so old
batches stay readable. Id 0 means "no dictionary": zstd without one, and a field model that
gives every symbol the same frequency. (Dictionary 1 belonged to format version 2.)
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Sequence

import zstandard

from protocols.uplink import _zdict2
from protocols.uplink.fields import FIELDS
from protocols.uplink.rans import ALPHABET, Table, uniform_frequencies

#: Dictionary used when encoding unless the caller asks otherwise.
DEFAULT_DICTIONARY_ID: int = _zdict2.DICTIONARY_ID
#: Field contexts every model has a table for.
FIELD_CONTEXTS = FIELDS


def _load(encoded: str, sha256: str) -> bytes:
    data = base64.b64decode(encoded)
    if hashlib.sha256(data).hexdigest() != sha256:  # a damaged install, not peer input
        raise RuntimeError("a shipped dictionary does not match its SHA-256")
    return data


#: Every zstd dictionary this decoder knows, by id (0: none).
KNOWN_DICTIONARIES: dict[int, bytes] = {
    _zdict2.DICTIONARY_ID: _load(_zdict2.BASE64, _zdict2.SHA256),
}


def _frequencies(encoded: str, sha256: str) -> list[list[int]]:
    data = _load(encoded, sha256)
    values = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if len(values) != FIELD_CONTEXTS * ALPHABET:  # a damaged install, not peer input
        raise RuntimeError("the shipped field model does not have a table per context")
    return [values[i : i + ALPHABET] for i in range(0, len(values), ALPHABET)]


#: Every field model, by dictionary id: the frequencies of each context's table.
_FIELD_FREQUENCIES: dict[int, Sequence[Sequence[int]]] = {
    _zdict2.DICTIONARY_ID: _frequencies(_zdict2.FIELD_BASE64, _zdict2.FIELD_SHA256),
}


def is_known(dictionary_id: int) -> bool:
    """Whether this decoder has dictionary ``dictionary_id`` (0, no dictionary, always)."""
    return dictionary_id == 0 or dictionary_id in KNOWN_DICTIONARIES


@functools.cache
def field_model(dictionary_id: int) -> tuple[Table, ...]:
    """The rANS table of each field context under dictionary ``dictionary_id``."""
    if dictionary_id == 0:
        return tuple(Table(uniform_frequencies()) for _ in range(FIELD_CONTEXTS))
    return tuple(Table(freqs) for freqs in _FIELD_FREQUENCIES[dictionary_id])


@functools.cache
def compression_dict(dictionary_id: int, level: int) -> zstandard.ZstdCompressionDict:
    """The dictionary, precomputed for compression at ``level`` (built once per process)."""
    zdict = zstandard.ZstdCompressionDict(
        KNOWN_DICTIONARIES[dictionary_id], dict_type=zstandard.DICT_TYPE_FULLDICT
    )
    zdict.precompute_compress(level=level)
    return zdict


@functools.cache
def decompression_dict(dictionary_id: int) -> zstandard.ZstdCompressionDict:
    """The dictionary for decompression."""
    return zstandard.ZstdCompressionDict(
        KNOWN_DICTIONARIES[dictionary_id], dict_type=zstandard.DICT_TYPE_FULLDICT
    )
