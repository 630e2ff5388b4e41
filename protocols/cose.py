"""A strict COSE_Sign1 ES256 verifier (RFC 9052 sections 4.2 and 4.4), without ``cwt``.

The hub verifies what the region signs (commands, firmware manifests) with pinned P-256 keys.
``cwt`` (with ``pyhpke`` and ``cryptography``, a second OpenSSL) would cost the running hub
about 10 MiB (issue #11: the 60 MB budget); the signature is checked by
:mod:`protocols.uplink.es256` through the OpenSSL the ``ssl`` module already holds.

Accepted, and nothing else (the exact shape ``cwt`` encodes for ``protected={"alg": "ES256"},
unprotected={"kid": kid}``):

- a CBOR tag 18 (RFC 9052 section 4.2) holding an array of exactly four items, no trailing bytes;
- protected: the bstr ``a1 01 26``, the map ``{1: -7}`` (alg ES256, RFC 9053 section 2.1):
  no other algorithm, no other (critical or not) protected parameter;
- unprotected: the map ``{4: kid}`` with kid a bstr (RFC 9052 section 3.1) naming a pinned key;
- payload: a bstr (not nil: no detached payload);
- signature: a bstr of 64 bytes, ``r || s`` with r and s in 1..n-1.

The signature is verified over ``Sig_structure = ["Signature1", protected, h'', payload]``
(RFC 9052 section 4.4). Sans-I/O: no sockets, files or clocks.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

import cbor2

if TYPE_CHECKING:  # types only: protocols.uplink.signing imports this module
    from protocols.uplink.es256 import Es256Key, Es256PublicKey

#: COSE_Sign1's CBOR tag (RFC 9052 section 4.2).
COSE_SIGN1_TAG = 18
#: The protected header ``{1: -7}`` (alg: ES256) as the one encoding accepted.
ES256_PROTECTED = b"\xa1\x01\x26"
#: The kid label (RFC 9052 section 3.1).
_KID = 4


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """What a COSE_Sign1 signature covers (RFC 9052 section 4.4): ``["Signature1",
    protected, external_aad, payload]`` (external AAD: section 4.3, empty by default)."""
    return cbor2.dumps(["Signature1", protected, external_aad, payload], canonical=True)


def encode_sign1(key: Es256Key, kid: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """A tagged COSE_Sign1 ES256 message: the shape :func:`verify_sign1` accepts and ``cwt``
    encodes for ``protected={"alg": "ES256"}, unprotected={"kid": kid}``."""
    signature = key.sign(sig_structure(ES256_PROTECTED, payload, external_aad))
    return cbor2.dumps(
        cbor2.CBORTag(COSE_SIGN1_TAG, [ES256_PROTECTED, {_KID: kid}, payload, signature])
    )


class CoseError(ValueError):
    """The message is not a COSE_Sign1 ES256 message signed by a pinned key; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _loads_exactly(data: bytes) -> object:
    """One CBOR item that is all of ``data`` (RFC 8949 section 5.1: no trailing bytes)."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise CoseError(f"not CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise CoseError("trailing bytes after the COSE_Sign1 message")
    return item


def verify_sign1(message: bytes, keys: Mapping[str, Es256PublicKey]) -> tuple[str, bytes]:
    """``(kid, payload)`` of a COSE_Sign1 ES256 message whose kid names one of ``keys`` and
    whose signature that key verifies; anything else raises :class:`CoseError`."""
    item = _loads_exactly(message)
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise CoseError("not a tagged COSE_Sign1 message (tag 18)")
    fields = item.value
    if not isinstance(fields, list) or len(fields) != 4:
        raise CoseError("COSE_Sign1 is not an array of 4 items")
    protected, unprotected, payload, signature = fields
    if type(protected) is not bytes or protected != ES256_PROTECTED:
        raise CoseError("protected header is not exactly {alg: ES256}")
    if not isinstance(unprotected, dict) or set(unprotected) != {_KID}:
        raise CoseError("unprotected header is not exactly {kid}")
    kid_bytes = unprotected[_KID]
    if type(kid_bytes) is not bytes:
        raise CoseError("kid is not a byte string")
    if type(payload) is not bytes:
        raise CoseError("payload is not a byte string (detached payloads are not accepted)")
    if type(signature) is not bytes or len(signature) != 64:
        raise CoseError("signature is not a 64-byte ES256 signature")
    try:
        kid = kid_bytes.decode()
    except UnicodeDecodeError:
        raise CoseError("kid names no pinned key") from None
    key = keys.get(kid)
    if key is None:
        raise CoseError(f"kid {kid!r} names no pinned key")
    if not key.verify(sig_structure(protected, payload), signature):
        raise CoseError(f"signature does not verify with the pinned key {kid!r}")
    return kid, payload
