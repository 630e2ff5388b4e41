"""ES256 keys (ECDSA P-256 with SHA-256, RFC 9053 section 2.1) over native code: the edge of COSE.

The pure side (the key protocols, r || s <-> DER) is :mod:`protocols.es256`.

The signature is ``r || s``, two 32-byte big-endian integers (RFC 9053 section 2.1: I2OSP of
each to the curve's size), not the DER ``ECDSA-Sig-Value`` (RFC 3279 section 2.2.3) that
OpenSSL produces; :func:`der_to_raw` converts.

Two implementations of one thing, chosen once by :func:`load_signing_key`:

- :class:`OpenSslKey`: the OpenSSL (3.x) that Python's ``ssl`` module has already loaded, called
  through ``ctypes``. The hub's process then holds one OpenSSL, the one TLS uses, and not a
  second one inside ``cryptography``'s extension (about 8 MiB of RSS under load, issue #11:
  the service's 60 MB budget; ``narhub bench footprint``).
- :class:`CryptographyKey`: ``cryptography``, where that OpenSSL is not usable (another C
  library, OpenSSL 1.1, an ``ssl`` module linked statically without the symbols).

Both sign with OpenSSL's ECDSA (randomised ``k``; OpenSSL's constant-time P-256 code).
``tests/uplink/test_uplink_signing.py`` runs every check over both.
"""

from __future__ import annotations

import contextlib
import ctypes
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from protocols.es256 import (
    Es256Error,
    Es256Key,
    Es256PublicKey,
    der_to_raw,
    raw_to_der,
)

#: OpenSSL's key type id of EC keys (``EVP_PKEY_EC``, openssl/evp.h: ``NID_X9_62_id_ecPublicKey``).
_EVP_PKEY_EC = 408
#: OpenSSL's name of P-256 (``OSSL_PKEY_PARAM_GROUP_NAME``, openssl/core_names.h).
_P256_GROUP = b"prime256v1"
#: A DER ECDSA-Sig-Value for P-256 is at most 72 bytes; OpenSSL is given room to spare.
_MAX_DER_SIGNATURE = 128


def _bind(lib: ctypes.CDLL, name: str, argtypes: list[Any], restype: Any) -> Any:
    """``lib.name`` with its C types set; AttributeError when the library lacks it."""
    function = getattr(lib, name)
    function.argtypes = argtypes
    function.restype = restype
    return function


class _LibCrypto:
    """The few libcrypto (OpenSSL 3) functions ES256 signing and verifying need (C types)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        vp, size_p, cp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p
        self.BIO_new_mem_buf = _bind(lib, "BIO_new_mem_buf", [cp, ctypes.c_int], vp)
        self.BIO_free = _bind(lib, "BIO_free", [vp], ctypes.c_int)
        self.PEM_read_bio_PrivateKey = _bind(lib, "PEM_read_bio_PrivateKey", [vp, vp, vp, cp], vp)
        self.EVP_PKEY_free = _bind(lib, "EVP_PKEY_free", [vp], None)
        self.EVP_PKEY_get_base_id = _bind(lib, "EVP_PKEY_get_base_id", [vp], ctypes.c_int)
        self.EVP_PKEY_get_utf8_string_param = _bind(
            lib,
            "EVP_PKEY_get_utf8_string_param",
            [vp, cp, cp, ctypes.c_size_t, size_p],
            ctypes.c_int,
        )
        self.EVP_MD_CTX_new = _bind(lib, "EVP_MD_CTX_new", [], vp)
        self.EVP_MD_CTX_free = _bind(lib, "EVP_MD_CTX_free", [vp], None)
        self.EVP_sha256 = _bind(lib, "EVP_sha256", [], vp)
        self.EVP_DigestSignInit = _bind(
            lib, "EVP_DigestSignInit", [vp, vp, vp, vp, vp], ctypes.c_int
        )
        self.EVP_DigestSign = _bind(
            lib, "EVP_DigestSign", [vp, cp, size_p, cp, ctypes.c_size_t], ctypes.c_int
        )
        self.ERR_clear_error = _bind(lib, "ERR_clear_error", [], None)
        self.PEM_read_bio_PUBKEY = _bind(lib, "PEM_read_bio_PUBKEY", [vp, vp, vp, vp], vp)
        self.EVP_DigestVerifyInit = _bind(
            lib, "EVP_DigestVerifyInit", [vp, vp, vp, vp, vp], ctypes.c_int
        )
        self.EVP_DigestVerify = _bind(
            lib, "EVP_DigestVerify", [vp, cp, ctypes.c_size_t, cp, ctypes.c_size_t], ctypes.c_int
        )


_LIBCRYPTO: _LibCrypto | None = None


def ssl_libcrypto() -> _LibCrypto | None:
    """The libcrypto of Python's ``ssl`` module (OpenSSL 3.x), or None when it is not usable.

    ``dlsym`` on the ``_ssl`` extension's handle finds the symbols of the libcrypto it is
    linked with (already loaded: nothing is mapped twice)."""
    global _LIBCRYPTO  # noqa: PLW0603 - one binding per process
    if _LIBCRYPTO is None:
        try:
            import _ssl  # noqa: PLC0415 - the extension, to find its libcrypto

            path = getattr(_ssl, "__file__", None)
            if path is None or _ssl.OPENSSL_VERSION_INFO < (3, 0):
                return None
            _LIBCRYPTO = _LibCrypto(ctypes.CDLL(path))
        except (ImportError, OSError, AttributeError):
            return None
    return _LIBCRYPTO


def _is_p256(lib: _LibCrypto, pkey: int) -> bool:
    """Whether an ``EVP_PKEY`` is an EC key on P-256 (leaves OpenSSL's error queue empty)."""
    group = ctypes.create_string_buffer(64)
    length = ctypes.c_size_t(0)
    is_p256 = (
        lib.EVP_PKEY_get_base_id(pkey) == _EVP_PKEY_EC
        and lib.EVP_PKEY_get_utf8_string_param(
            pkey, b"group", group, len(group), ctypes.byref(length)
        )
        == 1
        and group.value == _P256_GROUP
    )
    lib.ERR_clear_error()
    return is_p256


@contextlib.contextmanager
def _digest_context(lib: _LibCrypto) -> Iterator[int]:
    """A new ``EVP_MD_CTX`` for one signature or verification, freed on exit."""
    ctx = lib.EVP_MD_CTX_new()
    if not ctx:
        raise MemoryError("OpenSSL EVP_MD_CTX_new")
    try:
        yield ctx
    finally:
        lib.EVP_MD_CTX_free(ctx)


def _p256_pkey(
    owner: object, lib: _LibCrypto, pem: bytes, read: Callable[[int], int], what: str
) -> int:
    """The P-256 ``EVP_PKEY`` that ``read(bio)`` reads from ``pem``, freed with ``owner``;
    :class:`Es256Error` (``what`` it is not) when it reads nothing or another kind of key."""
    bio = lib.BIO_new_mem_buf(pem, len(pem))
    if not bio:
        raise MemoryError("OpenSSL BIO_new_mem_buf")
    try:
        pkey = read(bio)
    finally:
        lib.BIO_free(bio)
    if not pkey:
        lib.ERR_clear_error()
        raise Es256Error(f"not {what}")
    weakref.finalize(owner, lib.EVP_PKEY_free, pkey)
    if not _is_p256(lib, pkey):
        raise Es256Error("ES256 needs an EC P-256 (prime256v1, secp256r1) key")
    return pkey


class OpenSslKey:
    """An ES256 key held by the ``ssl`` module's OpenSSL (see the module docstring)."""

    def __init__(self, lib: _LibCrypto, private_key_pem: bytes) -> None:
        self._lib = lib
        # An empty passphrase (never OpenSSL's terminal prompt): an encrypted key fails.
        self._pkey = _p256_pkey(
            self,
            lib,
            private_key_pem,
            lambda bio: lib.PEM_read_bio_PrivateKey(bio, None, None, b""),
            "an unencrypted PEM private key",
        )

    def sign(self, data: bytes) -> bytes:
        """``r || s`` of ECDSA over SHA-256 of ``data`` (RFC 9053 section 2.1)."""
        lib = self._lib
        with _digest_context(lib) as ctx:
            signature = ctypes.create_string_buffer(_MAX_DER_SIGNATURE)
            length = ctypes.c_size_t(len(signature))
            if (
                lib.EVP_DigestSignInit(ctx, None, lib.EVP_sha256(), None, self._pkey) != 1
                or lib.EVP_DigestSign(ctx, signature, ctypes.byref(length), data, len(data)) != 1
            ):
                lib.ERR_clear_error()  # the ssl module reads this thread's error queue too
                raise Es256Error("OpenSSL EVP_DigestSign failed")
        return der_to_raw(signature.raw[: length.value])


class CryptographyKey:
    """An ES256 key held by ``cryptography`` (where :class:`OpenSslKey` cannot be used)."""

    def __init__(self, private_key_pem: bytes) -> None:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - fallback
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError):
            raise Es256Error("not an unencrypted PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise Es256Error("ES256 needs an EC P-256 (prime256v1, secp256r1) key")
        self._key = key

    def sign(self, data: bytes) -> bytes:
        """``r || s`` of ECDSA over SHA-256 of ``data`` (RFC 9053 section 2.1)."""
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - fallback
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

        return der_to_raw(self._key.sign(data, ec.ECDSA(hashes.SHA256())))


class OpenSslPublicKey:
    """An ES256 public key held by the ``ssl`` module's OpenSSL (see the module docstring)."""

    def __init__(self, lib: _LibCrypto, public_key_pem: bytes) -> None:
        self._lib = lib
        self._pkey = _p256_pkey(
            self,
            lib,
            public_key_pem,
            lambda bio: lib.PEM_read_bio_PUBKEY(bio, None, None, None),
            "a PEM public key (SubjectPublicKeyInfo)",
        )

    def verify(self, data: bytes, signature: bytes) -> bool:
        """ECDSA over SHA-256 of ``data`` (RFC 9053 section 2.1); only OpenSSL's 1 is valid."""
        try:
            der = raw_to_der(signature)
        except Es256Error:
            return False
        lib = self._lib
        with _digest_context(lib) as ctx:
            valid: bool = (
                lib.EVP_DigestVerifyInit(ctx, None, lib.EVP_sha256(), None, self._pkey) == 1
                and lib.EVP_DigestVerify(ctx, der, len(der), data, len(data)) == 1
            )
        if not valid:
            lib.ERR_clear_error()  # the ssl module reads this thread's error queue too
        return valid


class CryptographyPublicKey:
    """An ES256 public key held by ``cryptography`` (where OpenSslPublicKey cannot be used)."""

    def __init__(self, public_key_pem: bytes) -> None:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - fallback
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

        try:
            key = serialization.load_pem_public_key(public_key_pem)
        except (ValueError, TypeError):
            raise Es256Error("not a PEM public key (SubjectPublicKeyInfo)") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise Es256Error("ES256 needs an EC P-256 (prime256v1, secp256r1) key")
        self._key = key

    def verify(self, data: bytes, signature: bytes) -> bool:
        """ECDSA over SHA-256 of ``data`` (RFC 9053 section 2.1)."""
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - fallback
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

        try:
            der = raw_to_der(signature)
            self._key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        except (Es256Error, InvalidSignature):
            return False
        return True


def load_verifying_key(public_key_pem: bytes) -> Es256PublicKey:
    """The public key, held by the ``ssl`` module's OpenSSL when it can, else ``cryptography``."""
    lib = ssl_libcrypto()
    if lib is not None:
        return OpenSslPublicKey(lib, public_key_pem)
    return CryptographyPublicKey(public_key_pem)


def load_signing_key(private_key_pem: bytes) -> Es256Key:
    """The key, held by the ``ssl`` module's OpenSSL when it can, else by ``cryptography``."""
    lib = ssl_libcrypto()
    if lib is not None:
        return OpenSslKey(lib, private_key_pem)
    return CryptographyKey(private_key_pem)
