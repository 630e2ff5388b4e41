"""The region keeps every unrevoked key of a hub and picks up renewals and revocations live."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from common.pki import build_csr, new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.uplink import (
    BadSignatureError,
    BatchHeader,
    Priority,
    UnknownKidError,
    WireReading,
)
from protocols.uplink.batch import encode_body
from region.broker_config import OPERATOR_USER
from region.ca import CaVerifier, RegionCa, hub_keys

HUB = "hub-renewal"


def _message(key: bytes, seq: int) -> bytes:
    reading = WireReading("t/150364", 150364, "Cel", 1_763_800_000_000, Decimal("37.2"), device="t")
    header = BatchHeader(HUB, "b1", seq, 1_763_800_000_000, Priority.CLINICAL, 1)
    return PemBatchSigner(HUB, key).sign(encode_body(header, [reading]))


def _issue(ca: RegionCa, key: bytes, name: str = HUB) -> bytes:
    return ca.sign(build_csr(key, name))


def test_a_verifier_holds_several_keys_per_hub() -> None:
    old, new, stranger = new_private_key_pem(), new_private_key_pem(), new_private_key_pem()
    verifier = PemBatchVerifier({HUB: [public_key_pem(new), public_key_pem(old)]})
    assert verifier.verify(_message(old, 0)).header.seq == 0
    assert verifier.verify(_message(new, 1)).header.seq == 1
    with pytest.raises(BadSignatureError):
        verifier.verify(_message(stranger, 2))
    with pytest.raises(UnknownKidError):
        PemBatchVerifier({"hub-other": public_key_pem(old)}).verify(_message(old, 3))


def test_hub_keys_keep_old_keys_newest_first_and_skip_operator_and_revoked(tmp_path: Path) -> None:
    ca = RegionCa.init(tmp_path / "ca", "Region test CA")
    old, new = new_private_key_pem(), new_private_key_pem()
    _issue(ca, old)
    new_cert = _issue(ca, new)
    _issue(ca, new_private_key_pem(), OPERATOR_USER)
    keys = hub_keys(ca)
    assert set(keys) == {HUB}
    assert len(keys[HUB]) == 2
    assert set(keys[HUB]) == {public_key_pem(old), public_key_pem(new)}
    ca.revoke(new_cert)
    assert hub_keys(ca) == {HUB: (public_key_pem(old),)}


def test_the_receiver_verifier_learns_a_renewal_and_a_revocation_without_a_restart(
    tmp_path: Path,
) -> None:
    ca = RegionCa.init(tmp_path / "ca", "Region test CA")
    old, new = new_private_key_pem(), new_private_key_pem()
    _issue(ca, old)
    verifier = CaVerifier(ca, recheck_s=3600)
    assert verifier.verify(_message(old, 0)).header.seq == 0
    with pytest.raises(BadSignatureError):
        verifier.verify(_message(new, 1))  # not issued yet: refused
    new_cert = _issue(ca, new)  # the region signs the hub's renewal CSR
    assert verifier.verify(_message(new, 2)).header.seq == 2  # reloaded on the failure
    assert verifier.verify(_message(old, 3)).header.seq == 3  # batches sealed before the switch
    watching = CaVerifier(ca, recheck_s=0)  # rechecks the CA before every batch
    assert watching.verify(_message(new, 4)).header.seq == 4
    ca.revoke(new_cert)
    with pytest.raises(BadSignatureError):
        watching.verify(_message(new, 5))
    assert watching.verify(_message(old, 6)).header.seq == 6
