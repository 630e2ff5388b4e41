"""ES256 (ECDSA P-256 with SHA-256, RFC 9053 section 2.1): what COSE needs of a key, pure.

The signature is ``r || s``, two 32-byte big-endian integers (RFC 9053 section 2.1: I2OSP of
each to the curve's size), not the DER ``ECDSA-Sig-Value`` (RFC 3279 section 2.2.3) that
OpenSSL produces; :func:`der_to_raw` and :func:`raw_to_der` convert, strictly.

Keys are objects passed in (:class:`Es256Key`, :class:`Es256PublicKey`): the implementations
call native code and live at the edge, in :mod:`drivers.es256`.
"""

from __future__ import annotations

from typing import Protocol

#: Bytes of each of r and s (RFC 9053 section 2.1: the P-256 curve's size).
P256_SCALAR_BYTES = 32


class Es256Error(ValueError):
    """The key cannot sign ES256 (not a PEM private key, not P-256), or signing failed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Es256PublicKey(Protocol):
    """A P-256 public key that verifies raw ``r || s`` signatures over SHA-256 of ``data``."""

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True only if ``signature`` is a valid ES256 signature of ``data`` by this key."""
        ...


class Es256Key(Protocol):
    """A P-256 private key that signs: raw ``r || s`` over SHA-256 of ``data``."""

    def sign(self, data: bytes) -> bytes:
        """The 64-byte signature of ``data``."""
        ...


def der_to_raw(der: bytes) -> bytes:
    """``r || s`` (32 bytes each) of a DER ``ECDSA-Sig-Value`` (``SEQUENCE {r INTEGER, s
    INTEGER}``, RFC 3279 section 2.2.3) of a P-256 signature; strict: anything else raises."""
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise Es256Error("not a DER ECDSA signature (SEQUENCE)")
    out = b""
    at = 2
    for name in ("r", "s"):
        if at + 2 > len(der) or der[at] != 0x02:
            raise Es256Error(f"DER ECDSA signature: {name} is not an INTEGER")
        size = der[at + 1]
        value = der[at + 2 : at + 2 + size]
        at += 2 + size
        if size == 0 or len(value) != size or value[0] & 0x80:
            raise Es256Error(f"DER ECDSA signature: {name} is not a positive INTEGER")
        if size > 1 and value[0] == 0 and not value[1] & 0x80:
            raise Es256Error(f"DER ECDSA signature: {name} is not minimally encoded")
        number = int.from_bytes(value, "big")
        if number == 0 or number.bit_length() > P256_SCALAR_BYTES * 8:
            raise Es256Error(f"DER ECDSA signature: {name} is out of range for P-256")
        out += number.to_bytes(P256_SCALAR_BYTES, "big")
    if at != len(der):
        raise Es256Error("DER ECDSA signature: trailing bytes")
    return out


#: The order n of the P-256 group (SEC 2 section 2.4.2; FIPS 186-4 D.1.2.3).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _der_integer(value: int) -> bytes:
    """A minimal DER INTEGER (X.690 section 8.3) of a positive ``value`` below 2**256."""
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return bytes((0x02, len(body))) + body


def raw_to_der(raw: bytes) -> bytes:
    """The minimal DER ``ECDSA-Sig-Value`` (RFC 3279 section 2.2.3) of ``r || s``.

    Strict (RFC 9053 section 2.1, SEC 1 section 4.1.4 step 1): exactly 64 bytes, and r and s
    each in 1..n-1 for P-256's order n; anything else raises :class:`Es256Error`."""
    if len(raw) != 2 * P256_SCALAR_BYTES:
        raise Es256Error(f"an ES256 signature is 64 bytes, not {len(raw)}")
    r = int.from_bytes(raw[:P256_SCALAR_BYTES], "big")
    s = int.from_bytes(raw[P256_SCALAR_BYTES:], "big")
    for name, value in (("r", r), ("s", s)):
        if not 0 < value < P256_ORDER:
            raise Es256Error(f"ES256 signature: {name} is not in 1..n-1")
    body = _der_integer(r) + _der_integer(s)
    return bytes((0x30, len(body))) + body  # at most 70 bytes: a one-byte length
