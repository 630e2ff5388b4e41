"""Shipped zstd (RFC 8878 section 5) dictionaries for small batches, named by id in the header.

A 5-minute batch holds a few hundred readings, too few for zstd to learn the layout of the
column document and its entropy tables from; a dictionary gives it both. Dictionary 1 is
trained on reference days with seeds other than the benchmark's (``gateway/bench/zdict.py``
builds it). A shipped dictionary never changes: a new one gets a new id, and every decoder
keeps every id ever shipped, so old batches stay readable. Id 0 means "zstd, no dictionary".
"""

from __future__ import annotations

import base64
import functools
import hashlib

import zstandard

from protocols.uplink import _zdict1

#: Dictionary used when encoding unless the caller asks otherwise.
DEFAULT_DICTIONARY_ID: int | None = _zdict1.DICTIONARY_ID


def _load(encoded: str, sha256: str) -> bytes:
    data = base64.b64decode(encoded)
    if hashlib.sha256(data).hexdigest() != sha256:  # a damaged install, not peer input
        raise RuntimeError("the shipped zstd dictionary does not match its SHA-256")
    return data


#: Every dictionary this decoder knows, by id.
KNOWN_DICTIONARIES: dict[int, bytes] = {
    _zdict1.DICTIONARY_ID: _load(_zdict1.BASE64, _zdict1.SHA256),
}


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
