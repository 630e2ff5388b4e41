"""COSE_Sign1 ES256 (RFC 9052 sections 4.2 and 4.4): the one implementation narhub signs and
verifies with, on the hub (batches; commands and firmware manifests it receives) and at the
region (batches it receives; commands and manifests it signs).

Why not ``cwt``: with ``pyhpke`` and ``cryptography`` (a second OpenSSL) it cost the running hub
about 10 MiB (the 60 MB budget, ``narhub bench footprint``), and narhub uses one fixed shape of
one structure. Keys are objects passed in (:mod:`protocols.es256`); the native ECDSA is at the
edge (:mod:`drivers.es256`). ``tests/uplink/test_uplink_signing.py`` holds this module to
``cwt`` byte for byte (every field but the randomised signature), both ways.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cbor2

from protocols.es256 import Es256Key, Es256PublicKey

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


@dataclass(frozen=True)
class Sign1:
    """A structurally valid COSE_Sign1 ES256 message, its signature not yet checked."""

    protected: bytes
    kid: bytes
    payload: bytes
    signature: bytes

    def verifies_with(self, key: Es256PublicKey, external_aad: bytes = b"") -> bool:
        """True when ``key`` verifies the signature over the Sig_structure (section 4.4)."""
        return key.verify(sig_structure(self.protected, self.payload, external_aad), self.signature)


def decode_sign1(message: bytes) -> Sign1:
    """The parts of a COSE_Sign1 ES256 message of exactly the accepted shape (module docstring);
    anything else raises :class:`CoseError`. The signature is not checked here."""
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
    return Sign1(protected, kid_bytes, payload, signature)


def verify_sign1(
    message: bytes,
    keys: Mapping[str, Es256PublicKey | Sequence[Es256PublicKey]],
    external_aad: bytes = b"",
) -> tuple[str, bytes]:
    """``(kid, payload)`` of a COSE_Sign1 ES256 message whose kid names one of ``keys`` and
    whose signature that key (or one of that kid's keys, tried in order) verifies; anything
    else raises :class:`CoseError`."""
    sign1 = decode_sign1(message)
    try:
        kid = sign1.kid.decode()
    except UnicodeDecodeError:
        raise CoseError("kid names no pinned key") from None
    pinned = keys.get(kid)
    if pinned is None:
        raise CoseError(f"kid {kid!r} names no pinned key")
    candidates = pinned if isinstance(pinned, Sequence) else (pinned,)
    if not any(sign1.verifies_with(key, external_aad) for key in candidates):
        raise CoseError(f"signature does not verify with the pinned key {kid!r}")
    return kid, sign1.payload
