"""COSE_Sign1 (RFC 9052 section 4.2) signatures over batch bodies, ES256, kid = hub id.

ES256 (ECDSA P-256, RFC 9053 section 2.1) so that a TPM or an ATECC608 secure element can hold
the hub key. Hub and region use the one COSE_Sign1 implementation of :mod:`protocols.cose`;
keys are objects passed in (:mod:`protocols.es256`), made from PEM at the edge
(:mod:`common.signing`, :mod:`drivers.es256`). ``tests/uplink/test_uplink_signing.py`` holds
the result to what ``cwt`` encodes and verifies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import cbor2

from protocols.cose import COSE_SIGN1_TAG, CoseError, decode_sign1, encode_sign1
from protocols.errors import ProtocolError
from protocols.es256 import Es256Key, Es256PublicKey
from protocols.uplink.batch import MAX_BODY_BYTES, Batch, MalformedBatchError

if TYPE_CHECKING:
    from protocols.uplink.replay import SeenBatches


#: Room for the COSE_Sign1 structure around a body (headers, kid, signature).
_COSE_OVERHEAD_BYTES = 4096


class UplinkError(ProtocolError):
    """Base of the region-side verification errors."""


class UnknownKidError(UplinkError, KeyError):
    """The batch names a hub (kid) the region has no key for."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        super().__init__(f"unknown kid {kid!r}")

    def __str__(self) -> str:
        return f"unknown kid {self.kid!r}"


class BadSignatureError(UplinkError, ValueError):
    """The signature does not verify, or the signed header disagrees with the kid."""

    def __init__(self, kid: str, reason: str) -> None:
        self.kid = kid
        super().__init__(f"batch from {kid!r}: {reason}")


class ReplayError(UplinkError, ValueError):
    """A batch already accepted (same hub, boot id and sequence number)."""

    def __init__(self, hub_id: str, boot_id: str, seq: int) -> None:
        self.hub_id = hub_id
        self.boot_id = boot_id
        self.seq = seq
        super().__init__(f"batch seq {seq} of boot {boot_id!r} from {hub_id!r} already seen")


class SigningKeyError(UplinkError, ValueError):
    """The hub's private key cannot sign batches: not a PEM private key, or not P-256."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"hub signing key: {reason}")


class BatchSigner:
    """Signs batch bodies with the hub's private key (P-256; from PEM: :mod:`common.signing`)."""

    def __init__(self, hub_id: str, key: Es256Key) -> None:
        self.hub_id = hub_id
        self._key = key
        self._kid = hub_id.encode("utf-8")

    def sign(self, body: bytes) -> bytes:
        """A tagged COSE_Sign1 message carrying ``body`` as its payload.

        RFC 9052 section 4.4: the signature covers ``Sig_structure = ["Signature1",
        protected, external_aad, payload]`` with the kid (the hub id, UTF-8) as external AAD
        (section 4.3): the body does not name its hub, and the signature binds it to the kid
        all the same. ES256 carries r and s as two 32-byte big-endian integers (RFC 9053
        section 2.1), not DER."""
        return encode_sign1(self._key, self._kid, body, external_aad=self._kid)


def _kid_of(message: bytes) -> tuple[str, object]:
    try:
        tag = cbor2.loads(message)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedBatchError(f"not a COSE message: {exc}") from None
    if not (
        isinstance(tag, cbor2.CBORTag)
        and tag.tag == COSE_SIGN1_TAG
        and isinstance(tag.value, list)
        and len(tag.value) == 4
        and isinstance(tag.value[1], dict)
    ):
        raise MalformedBatchError("not a tagged COSE_Sign1 (tag 18) array")
    kid = tag.value[1].get(4)
    if not isinstance(kid, bytes):
        raise MalformedBatchError("COSE_Sign1 without a kid")
    try:
        return kid.decode("utf-8"), tag.value[2]
    except UnicodeDecodeError:
        raise MalformedBatchError("kid is not UTF-8") from None


#: Bytes that follow a CBOR head's first byte for additional information 24..27 (RFC 8949
#: section 3).
_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}


def _stated_version(payload: object) -> int | None:
    """The format version a COSE payload states: its first item, when the payload is a CBOR
    array starting with an unsigned integer (else ``None``).

    Only the two CBOR heads are read (RFC 8949 section 3), nothing of the unverified body is
    decoded. The version chooses the external AAD the signature is checked with (format 2: empty;
    format 3: the kid); that is safe because the version is inside the signed payload: a
    relabelled body no longer verifies."""
    if not isinstance(payload, bytes) or len(payload) < 2 or payload[0] >> 5 != 4:
        return None
    info = payload[0] & 0x1F
    if info == 0 or info in (28, 29, 30):  # an empty array, or reserved
        return None
    offset = 1 + _ARGUMENT_BYTES.get(info, 0)
    if len(payload) <= offset or payload[offset] >> 5 != 0:  # not an unsigned integer
        return None
    info = payload[offset] & 0x1F
    if info < 24:
        return info
    size = _ARGUMENT_BYTES.get(info)
    if size is None or len(payload) < offset + 1 + size:
        return None
    return int.from_bytes(payload[offset + 1 : offset + 1 + size], "big")


class BatchVerifier:
    """Verifies batches against the hubs' public keys, selected by kid.

    A hub may have more than one key at a time: after a certificate renewal its outbox still
    holds batches signed with the old key (sealed before the switch, sent after it), so the
    region keeps every key of a hub it has not revoked. Give the newest first: it is tried
    first. Keys from PEM: :class:`common.signing.PemBatchVerifier`.
    """

    def __init__(self, keys: Mapping[str, Es256PublicKey | Sequence[Es256PublicKey]]) -> None:
        self._keys: dict[str, list[Es256PublicKey]] = {}
        self.trust_exactly(keys)

    def trust_exactly(self, keys: Mapping[str, Es256PublicKey | Sequence[Es256PublicKey]]) -> None:
        """Trust exactly these keys from now on (a reloaded key list)."""
        self._keys = {
            hub: list(listed) if isinstance(listed, Sequence) else [listed]
            for hub, listed in keys.items()
        }

    def trust(self, hub_id: str, key: Es256PublicKey) -> None:
        """Trust one more hub key (tried first)."""
        self._keys.setdefault(hub_id, []).insert(0, key)

    def verify(self, message: bytes, *, replay: SeenBatches | None = None) -> Batch:
        """Verify the signature, decode the body, and check the header names the signer.

        The signature covers the kid as external AAD, except for a format-2 body (read only,
        :mod:`protocols.uplink.v2`), signed with an empty one and naming its hub in the header,
        which must be the kid. With ``replay``, a batch whose (hub, boot id, seq) it has seen raises
        :class:`ReplayError` (after the signature verified, so an
        unsigned message cannot probe what was seen).
        """
        # The decoders of every format the region reads (format 2 with its dictionary): region
        # side only, kept out of the hub's memory.
        from protocols.uplink.body import decode_body  # noqa: PLC0415
        from protocols.uplink.v2 import FORMAT_VERSION as V2_FORMAT_VERSION  # noqa: PLC0415
        from protocols.uplink.v2 import HubMismatchError  # noqa: PLC0415 - region side only

        if len(message) > MAX_BODY_BYTES + _COSE_OVERHEAD_BYTES:
            raise MalformedBatchError(f"{len(message)} bytes is over the cap", where="COSE")
        kid, payload = _kid_of(message)
        keys = self._keys.get(kid)
        if not keys:
            raise UnknownKidError(kid)
        version = _stated_version(payload)
        external_aad = b"" if version == V2_FORMAT_VERSION else kid.encode("utf-8")
        try:
            sign1 = decode_sign1(message)
        except CoseError as exc:
            raise BadSignatureError(kid, exc.reason) from None
        if not any(sign1.verifies_with(key, external_aad) for key in keys):
            raise BadSignatureError(kid, "the signature does not verify with the hub's keys")
        body = sign1.payload
        try:
            batch = decode_body(body, kid)
        except HubMismatchError as exc:
            raise BadSignatureError(kid, f"header names hub {exc.hub_id!r}") from None
        header = batch.header
        if (header.version == V2_FORMAT_VERSION) != (version == V2_FORMAT_VERSION):
            # The AAD was chosen by another version than the body decoded as (a version 2
            # CBOR decodes from heads other than a plain integer): refuse it.
            raise BadSignatureError(kid, f"body of version {header.version} states {version!r}")
        if replay is not None and replay.seen(header.hub_id, header.boot_id, header.seq):
            raise ReplayError(header.hub_id, header.boot_id, header.seq)
        return batch
