"""The receiver forwards Observations to a FHIR server as transaction Bundles of conditional
creates, queued durably: a server that is down, or whose answer is lost, gets each
Observation exactly once in the end.

The server here is a small HTTP endpoint in the test that does what a FHIR server's
transaction interaction does with ``ifNoneExist`` (FHIR R4 3.1.0.8 and 3.1.0.11: a match is
not created again; a reference to an entry's ``fullUrl`` becomes the id the server gave it or
the resource the condition matched; a literal reference must resolve, else the whole
transaction fails), plus a fault script at that seam: first down (503), then it stores a
Bundle but the answer is lost.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir_posting import post_until_idle

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.fhir import PatientRef
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.enrolment_sqlite import enrol_hub
from region.fhir_post import FhirPoster, transaction_bundle
from region.receiver import Receiver
from region.state_sqlite import SqliteFhirQueue, SqliteState

HUB = "hub-fhir"
KEY = new_private_key_pem()
TOPIC = f"narhub/v1/{HUB}/up/clinical"


class UnresolvedReferenceError(ValueError):
    """A transaction whose resources reference what neither it nor the server holds."""


class FhirServer:
    """Resources by type and identifier; a scripted list of faults, one per request."""

    def __init__(self, faults: list[str]) -> None:
        self.faults = faults
        self.stored: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """Stored resources of one type by their search key (``system|value``)."""
        return {key: r for (k, key), (_id, r) in self.stored.items() if k == kind}

    @property
    def observations(self) -> dict[str, dict[str, Any]]:
        """The stored Observations."""
        return self.of_type("Observation")

    def _resolve(self, value: Any, ids: dict[str, str], known: set[str]) -> Any:
        if isinstance(value, dict):
            out = {k: self._resolve(v, ids, known) for k, v in value.items()}
            target = out.get("reference")
            if isinstance(target, str):
                out["reference"] = ids.get(target, target)
                if out["reference"] not in known:
                    raise UnresolvedReferenceError(target)
            return out
        if isinstance(value, list):
            return [self._resolve(v, ids, known) for v in value]
        return value

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        entries, ids, staged = [], {}, []
        with self.lock:
            known = {f"{k}/{server_id}" for (k, _), (server_id, _r) in self.stored.items()}
            for entry in bundle["entry"]:
                kind = entry["request"]["url"]
                condition = entry["request"]["ifNoneExist"].removeprefix("identifier=")
                key = urllib.parse.unquote(condition)
                match = self.stored.get((kind, key))
                server_id = match[0] if match else str(len(self.stored) + len(staged) + 1)
                ids[entry["fullUrl"]] = f"{kind}/{server_id}"
                known.add(f"{kind}/{server_id}")
                if match is None:
                    staged.append((kind, key, server_id, entry["resource"]))
                entries.append({"response": {"status": "200 OK" if match else "201 Created"}})
            for kind, key, server_id, resource in staged:  # all or nothing
                self.stored[(kind, key)] = (server_id, self._resolve(resource, ids, known))
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


@pytest.fixture
def server() -> Iterator[tuple[FhirServer, str]]:
    state = FhirServer(["down", "down", "answer-lost"])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            bundle = json.loads(body, parse_float=Decimal)
            state.requests.append(bundle)
            fault = state.faults.pop(0) if state.faults else ""
            if fault == "down":
                self.send_error(503, "down for maintenance")
                return
            if fault == "refuse":
                self.send_error(422, "unprocessable entity")
                return
            try:
                answer = json.dumps(state.transaction(bundle)).encode()
            except UnresolvedReferenceError as exc:
                self.send_error(400, f"unresolved reference {exc}")
                return
            if fault == "answer-lost":
                self.close_connection = True  # stored, but the client never hears it
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    finally:
        httpd.shutdown()
        httpd.server_close()


THERMOMETER = "C0:FF:EE:00:0D:01"


def _batch(seq: int, values: list[str]) -> bytes:
    readings = [
        WireReading(
            f"{THERMOMETER}/150364",
            150364,
            "Cel",
            1_763_800_000_000 + seq * 100 + i,
            Decimal(v),
            device=THERMOMETER,
        )
        for i, v in enumerate(values)
    ]
    header = BatchHeader(HUB, "b1", seq, 1_763_800_000_000, Priority.CLINICAL, len(readings))
    return PemBatchSigner(HUB, KEY).sign(encode_body(header, readings))


def _receiver(state: Path, tmp_path: Path) -> Receiver:
    enrol_hub(state, HUB, PatientRef("urn:test:patient", "p-1"))
    verifier = PemBatchVerifier({HUB: public_key_pem(KEY)})
    return Receiver(verifier, SqliteState(state, tmp_path / "obs.ndjson", fhir_queue=True))


def test_a_bundle_is_a_valid_fhir_transaction_of_conditional_creates(tmp_path: Path) -> None:
    receiver = _receiver(tmp_path / "state.db", tmp_path)
    receiver.handle(TOPIC, _batch(0, ["37.20"]))
    receiver.close()
    queue = SqliteFhirQueue(tmp_path / "state.db")
    claimed = queue.claim()
    assert claimed is not None
    _, lines = claimed
    assert queue.pending() == 1
    bundle = transaction_bundle(lines)
    assert b'"value":37.20' in bundle  # the device's precision travels
    parsed = Bundle.model_validate_json(bundle)
    assert parsed.type == "transaction"
    patient, gateway, device, observation = parsed.entry or []
    assert [e.request.url for e in (patient, gateway, device, observation) if e.request] == [
        "Patient", "Device", "Device", "Observation"
    ]  # fmt: skip
    # The Patient: a conditional create on its pseudonym, nothing else in it.
    assert patient.request is not None
    assert patient.request.ifNoneExist == "identifier=urn:test:patient|p-1"
    assert json.loads(bundle)["entry"][0]["resource"] == {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:patient", "value": "p-1"}],
    }
    assert gateway.request is not None
    assert device.request is not None
    assert gateway.request.ifNoneExist == f"identifier=urn:narhub:hub|{HUB}"
    assert device.request.ifNoneExist == (
        "identifier=http://hl7.org/fhir/sid/eui-48/bluetooth|C0-FF-EE-00-0D-01"
    )
    assert observation.request is not None
    assert observation.request.ifNoneExist is not None
    assert observation.request.ifNoneExist.startswith("identifier=urn:ietf:rfc:3986|urn:uuid:")
    resource = json.loads(bundle)["entry"][3]["resource"]
    # References within the Bundle go by fullUrl (the server resolves them).
    assert resource["device"] == {"reference": device.fullUrl}
    assert resource["subject"]["reference"] == patient.fullUrl
    assert resource["subject"]["identifier"] == {"system": "urn:test:patient", "value": "p-1"}
    assert resource["extension"][0]["valueReference"] == {"reference": gateway.fullUrl}


async def test_observations_reach_the_fhir_server_once_through_outage_and_lost_answer(
    server: tuple[FhirServer, str], tmp_path: Path
) -> None:
    fhir, url = server
    state = tmp_path / "state.db"
    receiver = _receiver(state, tmp_path)
    receiver.handle(TOPIC, _batch(0, ["37.20", "37.4"]))
    receiver.handle(TOPIC, _batch(1, ["38.1"]))
    receiver.close()
    poster = FhirPoster(SqliteFhirQueue(state), url, timeout_s=5)
    task = asyncio.create_task(poster.run())
    try:
        async with asyncio.timeout(60):
            await poster.idle.wait()  # set only when the queue is empty
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert poster.pending() == 0
    assert len(fhir.observations) == 3  # every Observation, once
    values = sorted(str(o["valueQuantity"]["value"]) for o in fhir.observations.values())
    assert values == ["37.20", "37.4", "38.1"]
    # Each Device once, and every Observation's device is the server's id of it.
    (device_id,) = [i for (k, key), (i, _r) in fhir.stored.items() if "bluetooth" in key]
    assert {o["device"]["reference"] for o in fhir.observations.values()} == {f"Device/{device_id}"}
    assert len(fhir.of_type("Device")) == 2  # the thermometer and the hub's gateway
    # One Patient (sent with each Bundle, created once), every Observation's subject.
    assert list(fhir.of_type("Patient")) == ["urn:test:patient|p-1"]
    ((patient_id, _r),) = [v for (k, _key), v in fhir.stored.items() if k == "Patient"]
    assert {o["subject"]["reference"] for o in fhir.observations.values()} == {
        f"Patient/{patient_id}"
    }
    assert poster.stats.retries == 3  # down twice, then an answer lost
    assert len(fhir.requests) == 5  # 2 refused, 1 stored unanswered, then the 2 Bundles
    assert poster.stats.bundles == 2


async def test_a_refused_bundle_is_kept_and_sent_again_after_a_restart(
    server: tuple[FhirServer, str], tmp_path: Path
) -> None:
    fhir, url = server
    fhir.faults = ["refuse"]
    state = tmp_path / "state.db"
    receiver = _receiver(state, tmp_path)
    receiver.handle(TOPIC, _batch(0, ["36.9"]))
    receiver.close()

    first = FhirPoster(SqliteFhirQueue(state), url, timeout_s=5)
    await post_until_idle(first, timeout_s=30)
    assert first.stats.refused == 1
    assert fhir.observations == {}
    # Kept, not dropped: the next start (the operator fixed the server) sends it again.
    second = FhirPoster(SqliteFhirQueue(state), url, timeout_s=5)
    assert second.retry_refused() == 1
    await post_until_idle(second, timeout_s=30)
    assert len(fhir.observations) == 1
    assert second.pending() == 0
