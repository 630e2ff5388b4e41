"""The receiver forwards Observations to a FHIR server as transaction Bundles of conditional
creates, queued durably: a server that is down, or whose answer is lost, gets each
Observation exactly once in the end.

The server here is a small HTTP endpoint in the test that does what a FHIR server's
transaction interaction does with ``ifNoneExist`` (FHIR R4 3.1.0.8 and 3.1.0.11), plus a
fault script at that seam: first down (503), then it stores a Bundle but the answer is lost.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.bundle import Bundle

from common.pki import new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.fhir_post import FhirPoster, transaction_bundle
from region.receiver import Receiver
from region.state_sqlite import SqliteFhirQueue, SqliteState

HUB = "hub-fhir"
KEY = new_private_key_pem()
TOPIC = f"narhub/v1/{HUB}/up/clinical"


class FhirServer:
    """Observations by identifier; a scripted list of faults, one per request."""

    def __init__(self, faults: list[str]) -> None:
        self.faults = faults
        self.observations: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        entries = []
        with self.lock:
            for entry in bundle["entry"]:
                condition = entry["request"]["ifNoneExist"]
                identifier = condition.split("|", 1)[1]
                created = identifier not in self.observations
                if created:
                    self.observations[identifier] = entry["resource"]
                entries.append({"response": {"status": "201 Created" if created else "200 OK"}})
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
            answer = json.dumps(state.transaction(bundle)).encode()
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


def _batch(seq: int, values: list[str]) -> bytes:
    readings = [
        WireReading("t/150364", 150364, "Cel", 1_763_800_000_000 + i, Decimal(v), device="t")
        for i, v in enumerate(values)
    ]
    header = BatchHeader(HUB, "b1", seq, 1_763_800_000_000, Priority.CLINICAL, len(readings))
    return PemBatchSigner(HUB, KEY).sign(encode_body(header, readings))


def test_a_bundle_is_a_valid_fhir_transaction_of_conditional_creates() -> None:
    receiver_line = json.dumps(
        {
            "resourceType": "Observation",
            "id": "0b0c3f57-2a4c-5d0e-8f66-1e2d3c4b5a69",
            "status": "final",
            "code": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "150364"}]},
            "valueQuantity": {"value": 1, "unit": "Cel"},
        }
    ).replace('"value": 1', '"value": 37.20')
    bundle = transaction_bundle([receiver_line])
    assert b'"value":37.20' in bundle  # the device's precision travels
    parsed = Bundle.model_validate_json(bundle)
    assert parsed.type == "transaction"
    (entry,) = parsed.entry or []
    assert entry.request is not None
    assert entry.request.ifNoneExist == (
        "identifier=urn:ietf:rfc:3986|urn:uuid:0b0c3f57-2a4c-5d0e-8f66-1e2d3c4b5a69"
    )


async def test_observations_reach_the_fhir_server_once_through_outage_and_lost_answer(
    server: tuple[FhirServer, str], tmp_path: Path
) -> None:
    fhir, url = server
    state = tmp_path / "state.db"
    receiver = Receiver(
        PemBatchVerifier({HUB: public_key_pem(KEY)}),
        SqliteState(state, tmp_path / "obs.ndjson", fhir_queue=True),
    )
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
    assert poster.stats.retries == 3  # down twice, then an answer lost
    assert len(fhir.requests) == 5  # 2 refused, 1 stored unanswered, then the 2 Bundles
    assert poster.stats.bundles == 2


async def test_a_refused_bundle_is_kept_and_sent_again_after_a_restart(
    server: tuple[FhirServer, str], tmp_path: Path
) -> None:
    fhir, url = server
    fhir.faults = ["refuse"]
    state = tmp_path / "state.db"
    receiver = Receiver(
        PemBatchVerifier({HUB: public_key_pem(KEY)}),
        SqliteState(state, tmp_path / "obs.ndjson", fhir_queue=True),
    )
    receiver.handle(TOPIC, _batch(0, ["36.9"]))
    receiver.close()

    async def post_until_idle(poster: FhirPoster) -> None:
        task = asyncio.create_task(poster.run())
        try:
            async with asyncio.timeout(30):
                await poster.idle.wait()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    first = FhirPoster(SqliteFhirQueue(state), url, timeout_s=5)
    await post_until_idle(first)
    assert first.stats.refused == 1
    assert fhir.observations == {}
    # Kept, not dropped: the next start (the operator fixed the server) sends it again.
    second = FhirPoster(SqliteFhirQueue(state), url, timeout_s=5)
    assert second.retry_refused() == 1
    await post_until_idle(second)
    assert len(fhir.observations) == 1
    assert second.pending() == 0
