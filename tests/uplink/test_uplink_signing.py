"""The hub's COSE_Sign1 signer (no ``cwt``) against ``cwt``, which the region uses, and its
two ES256 implementations (:mod:`drivers.es256`) against ``cryptography``.

ECDSA signatures are randomised, so "the same bytes" means: every field of the message but
the signature equal to what ``cwt`` encodes for the same key, kid and body (RFC 9052 section
4.2), and ``cwt`` verifying the signature (RFC 9052 section 4.4, RFC 9053 section 2.1).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cwt import COSE, COSEKey
from cwt.exceptions import CWTError
from hypothesis import given
from hypothesis import strategies as st

from common.pki import CertificateAuthority, new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from drivers import es256
from drivers.es256 import CryptographyKey, OpenSslKey
from protocols.es256 import Es256Error, Es256Key, der_to_raw
from protocols.uplink import BadSignatureError, SigningKeyError

KEY = new_private_key_pem()
HUB = "hub-sig-1"


def _cwt_sign(body: bytes, kid: str, key_pem: bytes) -> bytes:
    """What the hub sent before it signed without ``cwt`` (the reference encoding)."""
    key = COSEKey.from_pem(key_pem, alg="ES256", kid=kid)
    message = COSE.new().encode_and_sign(
        body, key, protected={"alg": "ES256"}, unprotected={"kid": kid}
    )
    assert isinstance(message, bytes)
    return message


def _without_signature(message: bytes) -> tuple[int, list[object]]:
    tag = cbor2.loads(message)
    assert isinstance(tag, cbor2.CBORTag)
    fields = list(tag.value)
    assert len(fields[3]) == 64  # r || s, 32 bytes each
    return tag.tag, fields[:3]


@given(body=st.binary(max_size=2048), kid=st.text(min_size=1, max_size=40))
def test_every_field_but_the_signature_is_what_cwt_encodes(body: bytes, kid: str) -> None:
    ours = PemBatchSigner(kid, KEY).sign(body)
    reference = _cwt_sign(body, kid, KEY)
    assert len(ours) == len(reference)
    assert _without_signature(ours) == _without_signature(reference)
    # The bytes before the signature too (map and integer encodings, not only values).
    assert ours[:-64] == reference[:-64]


def test_cwt_verifies_what_the_hub_signs_and_the_hub_signer_verifies_with_cwt() -> None:
    body = b"\x85\x01batch body"
    message = PemBatchSigner(HUB, KEY).sign(body)
    public = COSEKey.from_pem(public_key_pem(KEY), alg="ES256", kid=HUB)
    # The hub id (the kid) is signed as external AAD (RFC 9052 section 4.3).
    assert COSE.new().decode(message, public, external_aad=HUB.encode()) == body
    with pytest.raises(CWTError):
        COSE.new().decode(message, public)
    # And the region's verifier rejects a flipped signature bit.
    tampered = bytearray(message)
    tampered[-1] ^= 0x01
    with pytest.raises(BadSignatureError) as caught:
        PemBatchVerifier({HUB: public_key_pem(KEY)}).verify(bytes(tampered))
    assert caught.value.kid == HUB


def _pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("key_pem", "reason"),
    [
        (_pem(ec.generate_private_key(ec.SECP384R1())), "P-256"),
        (_pem(ed25519.Ed25519PrivateKey.generate()), "P-256"),
        (b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", "PEM"),
        (public_key_pem(KEY), "PEM"),
    ],
    ids=["p384", "ed25519", "garbage", "public-key"],
)
def test_a_key_that_cannot_sign_es256_is_a_typed_error(key_pem: bytes, reason: str) -> None:
    with pytest.raises(SigningKeyError) as caught:
        PemBatchSigner(HUB, key_pem)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def _openssl_key(pem: bytes) -> Es256Key:
    lib = es256.ssl_libcrypto()
    assert lib is not None, f"the ssl module's OpenSSL is not usable: {ssl.OPENSSL_VERSION}"
    return OpenSslKey(lib, pem)


IMPLEMENTATIONS: dict[str, Callable[[bytes], Es256Key]] = {
    "openssl-of-ssl": _openssl_key,
    "cryptography": CryptographyKey,
}
PUBLIC = serialization.load_pem_public_key(public_key_pem(KEY))
assert isinstance(PUBLIC, ec.EllipticCurvePublicKey)


def _verify(raw: bytes, data: bytes) -> None:
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    PUBLIC.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("load", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
def test_both_es256_implementations_sign_what_cryptography_verifies(
    load: Callable[[bytes], Es256Key],
) -> None:
    key = load(KEY)
    signatures = set()
    for data in (b"", b"\x00" * 3, bytes(range(256)) * 40):
        raw = key.sign(data)
        assert len(raw) == 64
        _verify(raw, data)
        with pytest.raises(InvalidSignature):
            _verify(raw, data + b"!")
        signatures.add(raw)
    assert len(signatures) == 3


@pytest.mark.parametrize("load", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
@pytest.mark.parametrize(
    ("key_pem", "reason"),
    [
        (_pem(ec.generate_private_key(ec.SECP384R1())), "P-256"),
        (_pem(ec.generate_private_key(ec.SECP256K1())), "P-256"),
        (_pem(ed25519.Ed25519PrivateKey.generate()), "P-256"),
        (b"not a key", "PEM"),
        (public_key_pem(KEY), "PEM"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
            "PEM",
        ),
    ],
    ids=["p384", "secp256k1", "ed25519", "garbage", "public-key", "encrypted"],
)
def test_both_implementations_refuse_a_key_that_is_not_p256(
    load: Callable[[bytes], Es256Key], key_pem: bytes, reason: str
) -> None:
    with pytest.raises(Es256Error) as caught:
        load(key_pem)
    assert reason in caught.value.reason


def test_the_ssl_modules_openssl_is_used_when_it_can_be_and_cryptography_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(es256.load_signing_key(KEY), OpenSslKey)
    monkeypatch.setattr(es256, "ssl_libcrypto", lambda: None)
    fallback = es256.load_signing_key(KEY)
    assert isinstance(fallback, CryptographyKey)
    _verify(fallback.sign(b"x"), b"x")


def test_a_failed_key_load_leaves_no_error_for_the_ssl_module() -> None:
    with pytest.raises(Es256Error):
        _openssl_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    # A stale error in this thread's OpenSSL queue would fail the next ssl call.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=_self_signed_ca_pem())
    assert context.cert_store_stats()["x509_ca"] == 1


def _self_signed_ca_pem() -> str:
    return CertificateAuthority.create("narhub signing test CA").cert_pem.decode()


scalars = st.integers(1, 2**256 - 1)


@given(r=scalars, s=scalars)
def test_der_to_raw_is_the_inverse_of_der_encoding(r: int, s: int) -> None:
    raw = der_to_raw(encode_dss_signature(r, s))
    assert raw == r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize(
    "der",
    [
        b"",
        encode_dss_signature(1, 2) + b"\x00",  # trailing byte
        b"\x31" + encode_dss_signature(1, 2)[1:],  # SET, not SEQUENCE
        bytes.fromhex("3006020101020200ff")[:-1] + b"\x01",  # length mismatch
        bytes.fromhex("300702020001020101"),  # r not minimal
        bytes.fromhex("3006020180020101"),  # r negative
        bytes.fromhex("3006020100020101"),  # r zero
        encode_dss_signature(2**256, 1),  # r too large for P-256
        bytes.fromhex("3006040101020101"),  # r an OCTET STRING
    ],
    ids=[
        "empty",
        "trailing",
        "set",
        "length",
        "not-minimal",
        "negative",
        "zero",
        "too-large",
        "octets",
    ],
)
def test_der_to_raw_refuses_what_is_not_a_p256_signature(der: bytes) -> None:
    with pytest.raises(Es256Error):
        der_to_raw(der)
