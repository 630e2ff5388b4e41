"""The hub's COSE_Sign1 ES256 verifier (protocols/cose.py, no ``cwt``) against what the region
signs with ``cwt`` (:class:`CommandSigner`, ``sign_manifest``), and everything else refused.

Each check runs over both ES256 implementations (:mod:`drivers.es256`): the ``ssl``
module's OpenSSL through ctypes, and ``cryptography`` (the fallback). Forged messages are
*validly signed* by the pinned key where the point is the structure (another alg, an extra
protected parameter, an untagged message): the refusal must come from the structure check,
not from a signature that happens to fail (RFC 9052 sections 4.2 and 4.4).
"""

from __future__ import annotations

import _ssl
import ctypes
import hashlib
import ssl

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from common.command_keys import PemCommandSigner, PemCommandVerifier
from common.firmware_bundle import BundleError, Manifest, verify_bundle
from common.pki import CertificateAuthority, new_private_key_pem, public_key_pem
from drivers import es256
from drivers.es256 import CryptographyPublicKey, OpenSslPublicKey
from protocols.commands import (
    Command,
    CommandVerifier,
    UnsignedCommandError,
)
from protocols.cose import CoseError, verify_sign1
from protocols.es256 import P256_ORDER, Es256Error, raw_to_der
from region.firmware_bundle import sign_manifest

KID = "cmd-2026"
KEY = new_private_key_pem()
ROGUE = new_private_key_pem()
_PRIVATE = serialization.load_pem_private_key(KEY, password=None)
assert isinstance(_PRIVATE, ec.EllipticCurvePrivateKey)
_P384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
COMMAND = Command("hub-1", 7, 1_000, 10_000, "config", {"batch_window_s": 2})


@pytest.fixture(params=["openssl-of-ssl", "cryptography"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Which ES256 implementation :func:`es256.load_verifying_key` gives (both are run)."""
    if request.param == "cryptography":
        monkeypatch.setattr(es256, "ssl_libcrypto", lambda: None)
        expected: type = CryptographyPublicKey
    else:
        assert es256.ssl_libcrypto() is not None, f"ssl's OpenSSL unusable: {ssl.OPENSSL_VERSION}"
        expected = OpenSslPublicKey
    assert isinstance(es256.load_verifying_key(public_key_pem(KEY)), expected)
    return expected


def _verifier() -> CommandVerifier:
    return PemCommandVerifier("hub-1", {KID: public_key_pem(KEY)})


def _raw_signature(data: bytes) -> bytes:
    r, s = decode_dss_signature(_PRIVATE.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _sign1(
    protected: bytes, unprotected: object, payload: object, *, tag: int | None = 18
) -> bytes:
    """A COSE_Sign1 with any headers, validly signed by KEY over its Sig_structure."""
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)
    fields = [protected, unprotected, payload, _raw_signature(to_be_signed)]
    return cbor2.dumps(fields if tag is None else cbor2.CBORTag(tag, fields))


def _fields(message: bytes) -> list[object]:
    item = cbor2.loads(message)
    assert isinstance(item, cbor2.CBORTag)
    assert item.tag == 18
    return list(item.value)


def _with_signature(message: bytes, signature: bytes) -> bytes:
    fields = _fields(message)
    fields[3] = signature
    return cbor2.dumps(cbor2.CBORTag(18, fields))


def _scalars(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_what_cwt_signs_verifies(implementation: type) -> None:
    message = PemCommandSigner(KID, KEY).sign(COMMAND)
    assert _verifier().verify(message, now_ms=5_000, last_seq=6) == COMMAND
    kid, payload = verify_sign1(message, {KID: es256.load_verifying_key(public_key_pem(KEY))})
    assert kid == KID
    assert cbor2.loads(payload)[3] == 7
    # The same message structure, re-signed by us, verifies too (the forger below is sound).
    fields = _fields(message)
    assert _sign1(fields[0], fields[1], fields[2]) != message  # randomised ECDSA
    assert _verifier().verify(
        _sign1(fields[0], fields[1], fields[2]), now_ms=5_000, last_seq=6
    ) == (COMMAND)


def _refusals() -> dict[str, bytes]:
    good = PemCommandSigner(KID, KEY).sign(COMMAND)
    protected, unprotected, payload, signature = _fields(good)
    assert isinstance(payload, bytes)
    assert isinstance(signature, bytes)
    kid_header = {4: KID.encode()}
    other_payload = cbor2.dumps({**cbor2.loads(payload), 3: 8}, canonical=True)
    n = P256_ORDER
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    tampered_payload = cbor2.dumps(
        cbor2.CBORTag(18, [protected, unprotected, other_payload, signature])
    )
    return {
        "tampered-payload": tampered_payload,
        "tampered-protected-alg": cbor2.dumps(
            cbor2.CBORTag(18, [b"\xa1\x01\x38\x22", unprotected, payload, signature])
        ),
        "alg-es384-validly-signed": _sign1(cbor2.dumps({1: -35}), kid_header, payload),
        "alg-eddsa-validly-signed": _sign1(cbor2.dumps({1: -8}), kid_header, payload),
        "extra-protected-param": _sign1(cbor2.dumps({1: -7, 4: KID.encode()}), kid_header, payload),
        "critical-param": _sign1(cbor2.dumps({1: -7, 2: [99], 99: 1}), kid_header, payload),
        "empty-protected": _sign1(b"", kid_header, payload),
        "protected-as-map": _sign1({1: -7}, kid_header, payload),  # type: ignore[arg-type]
        "non-canonical-protected": _sign1(b"\xa1\x01\x38\x06", kid_header, payload),
        "wrong-key": PemCommandSigner(KID, ROGUE).sign(COMMAND),
        "unknown-kid": PemCommandSigner("cmd-other", KEY).sign(COMMAND),
        "kid-as-text": _sign1(protected, {4: KID}, payload),
        "no-kid": _sign1(protected, {}, payload),
        "extra-unprotected": _sign1(protected, {4: KID.encode(), 1: -7}, payload),
        "signature-zeros": _with_signature(good, bytes(64)),
        "r-zero": _with_signature(good, _scalars(0, s)),
        "s-zero": _with_signature(good, _scalars(r, 0)),
        "r-equals-n": _with_signature(good, _scalars(n, s)),
        "s-equals-n": _with_signature(good, _scalars(r, n)),
        "r-plus-n": _with_signature(good, _scalars(r + n, s)) if r + n < 2**256 else b"",
        "s-above-n": _with_signature(good, _scalars(r, 2**256 - 1)),
        "signature-63": _with_signature(good, signature[:63]),
        "signature-65": _with_signature(good, signature + b"\x00"),
        "signature-der": _with_signature(good, raw_to_der(signature)),
        "untagged-validly-signed": _sign1(protected, kid_header, payload, tag=None),
        "tag-98-validly-signed": _sign1(protected, kid_header, payload, tag=98),
        "tag-17": cbor2.dumps(cbor2.CBORTag(17, [protected, unprotected, payload, signature])),
        "trailing-byte": good + b"\x00",
        "three-items": cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload])),
        "five-items": cbor2.dumps(
            cbor2.CBORTag(18, [protected, unprotected, payload, signature, b""])
        ),
        "payload-nil": _sign1(protected, kid_header, None),
        "payload-text": _sign1(protected, kid_header, payload.decode("latin-1")),
        "payload-tagged": _sign1(protected, kid_header, cbor2.CBORTag(24, payload)),
        "not-cbor": b"\xff\x00",
        "empty": b"",
    }


REFUSALS = _refusals()


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_the_command_verifier_refuses(implementation: type, name: str) -> None:
    message = REFUSALS[name]
    if not message:  # r + n overflowed 256 bits for this signature: s-above-n covers it
        message = REFUSALS["s-above-n"]
    with pytest.raises(UnsignedCommandError) as caught:
        _verifier().verify(message, now_ms=5_000, last_seq=6)
    assert caught.value.reason == "unsigned"
    with pytest.raises(CoseError):
        verify_sign1(message, {KID: es256.load_verifying_key(public_key_pem(KEY))})


@pytest.mark.parametrize(
    ("signature", "valid"),
    [
        (bytes(64), False),
        (_scalars(0, 1), False),
        (_scalars(1, 0), False),
        (_scalars(P256_ORDER, 1), False),
        (_scalars(1, P256_ORDER), False),
        (_scalars(P256_ORDER - 1, P256_ORDER - 1), True),  # in range: DER-encodable
        (b"\x01" * 63, False),
        (b"\x01" * 65, False),
    ],
)
def test_raw_to_der_takes_only_64_bytes_of_r_and_s_in_1_to_n_minus_1(
    signature: bytes, valid: bool
) -> None:
    if valid:
        der = raw_to_der(signature)
        r, s = decode_dss_signature(der)
        assert _scalars(r, s) == signature
    else:
        with pytest.raises(Es256Error):
            raw_to_der(signature)


def test_both_implementations_verify_exactly_what_is_signed(implementation: type) -> None:
    key = es256.load_verifying_key(public_key_pem(KEY))
    for data in (b"", b"x", bytes(range(256)) * 20):
        signature = _raw_signature(data)
        assert key.verify(data, signature) is True
        assert key.verify(data + b"!", signature) is False
        flipped = bytearray(signature)
        flipped[10] ^= 0x01
        assert key.verify(data, bytes(flipped)) is False
        assert key.verify(data, bytes(64)) is False
        assert key.verify(data, signature[:63]) is False
    rogue = es256.load_verifying_key(public_key_pem(ROGUE))
    assert rogue.verify(b"x", _raw_signature(b"x")) is False


@pytest.mark.parametrize(
    "pem",
    [
        public_key_pem(_P384),
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        KEY,  # a private key is not a public key PEM
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"not a key",
    ],
    ids=["p384", "secp256k1", "private-key", "garbage-pem", "garbage"],
)
def test_a_pinned_key_that_is_not_p256_is_a_typed_error(implementation: type, pem: bytes) -> None:
    with pytest.raises(Es256Error):
        es256.load_verifying_key(pem)
    with pytest.raises(ValueError, match="cmd-2026"):  # what hubside reports as RemoteSetupError
        PemCommandVerifier("hub-1", {KID: pem})


def test_a_refused_verification_leaves_no_error_for_the_ssl_module() -> None:
    lib = es256.ssl_libcrypto()
    assert lib is not None
    peek_error = ctypes.CDLL(_ssl.__file__).ERR_peek_error
    peek_error.restype = ctypes.c_ulong
    key = OpenSslPublicKey(lib, public_key_pem(KEY))
    assert key.verify(b"x", _scalars(1, 1)) is False  # DER-valid, the signature fails
    assert peek_error() == 0
    with pytest.raises(Es256Error):
        OpenSslPublicKey(lib, b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert peek_error() == 0
    with pytest.raises(Es256Error):
        OpenSslPublicKey(lib, public_key_pem(_P384))
    assert peek_error() == 0
    # A stale error in this thread's OpenSSL queue would fail the next ssl call.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=CertificateAuthority.create("cose CA").cert_pem.decode())
    assert context.cert_store_stats()["x509_ca"] == 1


def _manifest_body(message: bytes) -> dict[str, object]:
    files = {"main.py": b"print('hi')\n"}
    return {"manifest": message, "files": files}


def test_a_firmware_manifest_signed_with_cwt_verifies_and_a_forged_one_is_refused(
    implementation: type,
) -> None:
    files = {"main.py": b"print('hi')\n"}
    manifest = Manifest("esp32c3", "1.2.3", {"main.py": hashlib.sha256(files["main.py"]).digest()})
    pinned = {KID: public_key_pem(KEY)}
    good = sign_manifest(manifest, KID, KEY)
    assert verify_bundle(_manifest_body(good), pinned) == manifest
    forged = [
        sign_manifest(manifest, KID, ROGUE),
        sign_manifest(manifest, "cmd-other", KEY),
        _with_signature(good, bytes(64)),
        good + b"\x00",
        _sign1(cbor2.dumps({1: -7, 3: 0}), {4: KID.encode()}, _fields(good)[2]),
    ]
    for message in forged:
        with pytest.raises(BundleError) as caught:
            verify_bundle(_manifest_body(message), pinned)
        assert caught.value.reason == "unsigned-bundle"


GOOD = PemCommandSigner(KID, KEY).sign(COMMAND)
PINNED = {KID: es256.load_verifying_key(public_key_pem(KEY))}


@given(at=st.integers(0, len(GOOD) - 1), xor=st.integers(1, 255))
def test_any_changed_byte_of_a_signed_message_is_refused(at: int, xor: int) -> None:
    changed = bytearray(GOOD)
    changed[at] ^= xor
    with pytest.raises(CoseError):
        verify_sign1(bytes(changed), PINNED)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_only_cose_errors(data: bytes) -> None:
    with pytest.raises(CoseError):
        verify_sign1(data, PINNED)
