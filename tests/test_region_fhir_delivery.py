"""Delivery to the region's FHIR server: transaction Bundles of conditional creates, SMART
Backend Services tokens, and two receivers racing with the same Observations.

The server is :class:`rig.fhir_server.FakeFhirServer` (no real FHIR server installs here);
its first test checks that it holds the FHIR R4 transaction rules it claims (http.html
3.1.0.8 conditional create, 3.1.0.11.2 transaction processing), so a delivery test that
passes against it cannot pass on a Bundle a real server would refuse for those reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.bundle import Bundle
from fhir_posting import post_until_idle

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.fhir import PatientRef
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.enrolment import OverlapError
from region.enrolment_sqlite import enrol_hub
from region.fhir_post import FhirPoster, transaction_bundle
from region.receiver import Receiver
from region.smart_auth import SmartAuth, SmartAuthError, SmartClient, new_client_key
from region.state_sqlite import SqliteFhirQueue, SqliteState
from rig.fhir_server import FakeFhirServer, SmartAuthority

HUB = "hub-fhir"
KEY = new_private_key_pem()
TOPIC = f"narhub/v1/{HUB}/up/clinical"
CLIENT_ID = "narhub-region-test"
OBS_ID = "0b0c3f57-2a4c-5d0e-8f66-1e2d3c4b5a69"


class Clock:
    """A wall clock the test moves (token lifetimes)."""

    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/fhir+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _patient_entry(full_url: str, value: str, *, conditional: bool = True) -> dict[str, Any]:
    identifier = {"system": "https://region.example/pseudonym", "value": value}
    request: dict[str, Any] = {"method": "POST", "url": "Patient"}
    if conditional:
        request["ifNoneExist"] = f"identifier=https://region.example/pseudonym|{value}"
    return {
        "fullUrl": full_url,
        "resource": {"resourceType": "Patient", "identifier": [identifier]},
        "request": request,
    }


def _obs_entry(subject: str) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "subject": {"reference": subject},
    }
    return {"resource": resource, "request": {"method": "POST", "url": "Observation"}}


def _bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    bundle = {"resourceType": "Bundle", "type": kind, "entry": list(entries)}
    Bundle.model_validate(bundle)  # what we send is valid FHIR R4 structure
    return bundle


def test_the_fake_server_holds_the_transaction_rules() -> None:
    with FakeFhirServer() as server:
        url = server.base_url
        p1 = "urn:uuid:7f1c0e2a-0000-4000-8000-000000000001"
        status, answer = _post(url, _bundle(_patient_entry(p1, "p-1"), _obs_entry(p1)))
        assert status == 200
        assert answer["type"] == "transaction-response"
        assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 2
        patient_id = answer["entry"][0]["response"]["location"].split("/")[1]
        (obs,) = server.store.resources["Observation"].values()
        assert obs["subject"]["reference"] == f"Patient/{patient_id}"  # fullUrl resolved
        # The same conditional create again: matched, not created; references resolve to it.
        p2 = "urn:uuid:7f1c0e2a-0000-4000-8000-000000000002"
        status, answer = _post(url, _bundle(_patient_entry(p2, "p-1"), _obs_entry(p2)))
        assert [e["response"]["status"] for e in answer["entry"]] == ["200 OK", "201 Created"]
        assert server.store.count("Patient") == 1
        assert all(
            o["subject"]["reference"] == f"Patient/{patient_id}"
            for o in server.store.resources["Observation"].values()
        )
        # Atomic: an unresolvable reference fails the whole transaction, nothing is stored.
        p3 = "urn:uuid:7f1c0e2a-0000-4000-8000-000000000003"
        status, answer = _post(
            url, _bundle(_patient_entry(p3, "p-2"), _obs_entry("urn:uuid:nowhere"))
        )
        assert (status, answer["resourceType"]) == (400, "OperationOutcome")
        assert server.store.count("Patient") == 1
        assert server.store.count("Observation") == 2
        # Two matches for a conditional create: 412, nothing stored.
        dup = [_patient_entry(f"urn:uuid:d{i}", "p-3", conditional=False) for i in (1, 2)]
        assert _post(url, _bundle(*dup))[0] == 200
        status, answer = _post(
            url, _bundle(_patient_entry("urn:uuid:d3", "p-3"), _obs_entry("urn:uuid:d3"))
        )
        assert status == 412
        assert answer["issue"][0]["code"] == "duplicate"
        assert server.store.count("Observation") == 2
        # Not a transaction; a search parameter the server does not know; a fullUrl twice.
        assert _post(url, _bundle(_obs_entry("Patient/" + patient_id), kind="batch"))[0] == 400
        unknown = _patient_entry("urn:uuid:u1", "p-4")
        unknown["request"]["ifNoneExist"] = "name=Doe"
        assert _post(url, _bundle(unknown))[0] == 400
        twice = _patient_entry("urn:uuid:u2", "p-5")
        assert (
            _post(url, {"resourceType": "Bundle", "type": "transaction", "entry": [twice, twice]})[
                0
            ]
            == 400
        )
        assert server.store.count("Patient") == 3


def _batch(seq: int, values: list[str]) -> bytes:
    readings = [
        WireReading(
            "t/150364", 150364, "Cel", 1_763_800_000_000 + seq * 1000 + i, Decimal(v), device="t"
        )
        for i, v in enumerate(values)
    ]
    header = BatchHeader(HUB, "b1", seq, 1_763_800_000_000, Priority.CLINICAL, len(readings))
    return PemBatchSigner(HUB, KEY).sign(encode_body(header, readings))


def _queue_batches(state_db: Path, out: Path, batches: list[bytes]) -> None:
    with contextlib.suppress(OverlapError):  # enrolled by an earlier call on this state
        enrol_hub(state_db, HUB, PatientRef("urn:test:patient", "p-1"))  # else held, not queued
    receiver = Receiver(
        PemBatchVerifier({HUB: public_key_pem(KEY)}), SqliteState(state_db, out, fhir_queue=True)
    )
    for batch in batches:
        receiver.handle(TOPIC, batch)
    receiver.close()


@pytest.fixture(params=["ES384", "RS384"])
def smart(request: pytest.FixtureRequest) -> Iterator[tuple[FakeFhirServer, SmartClient, Clock]]:
    clock = Clock()
    client = SmartClient(CLIENT_ID, new_client_key(request.param), request.param, "key-1")
    authority = SmartAuthority({CLIENT_ID: client.public_jwks()}, token_lifetime_s=300, clock=clock)
    with FakeFhirServer(smart=authority) as server:
        yield server, client, clock


async def test_observations_are_posted_with_a_cached_token_renewed_on_401_and_expiry(
    smart: tuple[FakeFhirServer, SmartClient, Clock], tmp_path: Path
) -> None:
    server, client, clock = smart
    assert server.smart is not None
    state = tmp_path / "state.db"
    _queue_batches(state, tmp_path / "obs.ndjson", [_batch(s, ["37.1", "37.2"]) for s in range(3)])
    # The token endpoint is discovered from .well-known/smart-configuration.
    auth = SmartAuth(client, server.base_url, clock=clock)
    poster = FhirPoster(SqliteFhirQueue(state), server.base_url, auth=auth, timeout_s=5)
    await post_until_idle(poster)
    assert poster.stats.bundles == 3
    assert server.smart.tokens_issued == 1  # one token for the three Bundles
    # The server ends the token early: the next POST gets 401, a new token, and succeeds.
    server.smart.revoke_all()
    _queue_batches(state, tmp_path / "obs.ndjson", [_batch(3, ["37.3"])])
    await post_until_idle(poster)
    assert poster.stats.unauthorized == 1
    assert server.smart.tokens_issued == 2
    # Past its expiry the token is renewed before the POST (no 401).
    clock.now += 300
    _queue_batches(state, tmp_path / "obs.ndjson", [_batch(4, ["37.4"])])
    await post_until_idle(poster)
    assert (server.smart.tokens_issued, poster.stats.unauthorized) == (3, 1)
    assert server.store.count("Observation") == 8
    assert server.answers.count((401, "login")) == 1
    assert server.smart.refused == []


def test_the_authority_refuses_a_wrong_audience_a_replayed_jti_and_another_key(
    smart: tuple[FakeFhirServer, SmartClient, Clock],
) -> None:
    server, client, clock = smart
    assert server.smart is not None
    token_url = server.token_url
    # A replayed assertion: the same jti twice.
    assertion = client.assertion(token_url, clock(), jti="once")
    form = {
        "grant_type": "client_credentials",
        "scope": "system/Observation.cs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert server.smart.issue(form, token_url)["token_type"] == "bearer"
    with pytest.raises(Exception, match="jti"):
        server.smart.issue(form, token_url)
    with pytest.raises(Exception, match="aud"):
        server.smart.issue(
            {**form, "client_assertion": client.assertion("https://elsewhere/token", clock())},
            token_url,
        )
    impostor = SmartClient(CLIENT_ID, new_client_key(client.alg), client.alg, client.kid)
    auth = SmartAuth(impostor, server.base_url, clock=clock)
    with pytest.raises(SmartAuthError) as caught:
        auth.authorization()
    assert (caught.value.status, caught.value.error) == (400, "invalid_client")


async def test_two_receivers_racing_with_the_same_observations_create_each_once(
    tmp_path: Path,
) -> None:
    """The same batch reached two receivers with separate states (a redelivery no shared
    state caught): both queue and post the same Observations at once; the conditional
    creates leave one of each on the server."""
    batches = [_batch(s, [f"36.{s}{i}" for i in range(5)]) for s in range(20)]
    with FakeFhirServer() as server:
        posters = []
        for n in (1, 2):
            state = tmp_path / f"state-{n}.db"
            _queue_batches(state, tmp_path / f"obs-{n}.ndjson", batches)
            posters.append(FhirPoster(SqliteFhirQueue(state), server.base_url, timeout_s=5))
        await asyncio.gather(*(post_until_idle(p) for p in posters))
        assert server.store.count("Observation") == 100
        assert server.answers.count((200, "")) == 40
        # The patient's conditional create in all 40 Bundles: one Patient, everyone's subject
        # (each Observation's urn:uuid subject resolved to it, R4 3.1.0.11.2).
        assert server.store.count("Patient") == 1
        (patient_id,) = server.store.resources["Patient"]
    observations = server.store.resources["Observation"].values()
    ids = {o["identifier"][0]["value"] for o in observations}
    assert len(ids) == 100
    assert {o["subject"]["reference"] for o in observations} == {f"Patient/{patient_id}"}


def test_a_bundle_from_the_queue_is_what_the_fake_accepts() -> None:
    line = json.dumps(
        {
            "resourceType": "Observation",
            "id": OBS_ID,
            "identifier": [
                {
                    "system": "urn:ietf:rfc:3986",
                    "value": "urn:uuid:0b0c3f57-2a4c-5d0e-8f66-1e2d3c4b5a69",
                }
            ],
            "status": "final",
            "code": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "150364"}]},
        }
    )
    with FakeFhirServer() as server:
        request = urllib.request.Request(
            server.base_url,
            data=transaction_bundle([line]),
            method="POST",
            headers={"Content-Type": "application/fhir+json"},
        )
        for expected in ("201 Created", "200 OK"):
            with urllib.request.urlopen(request, timeout=10) as answer:
                body = json.loads(answer.read())
            assert body["entry"][0]["response"]["status"] == expected
        assert server.store.count("Observation") == 1


async def test_smart_key_init_writes_a_client_the_server_accepts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from region.smart_auth import load_smart_client
    from technician.cli import app

    clock = Clock()
    with FakeFhirServer(smart=SmartAuthority(clock=clock)) as server:
        assert server.smart is not None
        args = ["region", "smart-key", "init", "--dir", str(tmp_path), "--client-id", CLIENT_ID]
        result = CliRunner().invoke(app, [*args, "--token-url", server.token_url, "--json"])
        assert result.exit_code == 0, result.stdout
        assert (tmp_path / "client.key").stat().st_mode & 0o777 == 0o600
        # The operator registers jwks.json with the authorization server.
        server.smart.clients[CLIENT_ID] = json.loads((tmp_path / "jwks.json").read_text())
        client = load_smart_client(tmp_path / "client.toml")
        auth = SmartAuth(client, server.base_url, clock=clock)
        assert auth.authorization().startswith("Bearer ")
        again = CliRunner().invoke(app, [*args, "--json"])
        assert again.exit_code == 1
