"""Findings reach the region's FHIR server the way Observations do: queued in the same
transaction as the change, posted in order by :class:`region.fhir_post.FhirPoster` with SMART
Backend Services tokens, retried while the server is down, as transaction Bundles whose
entries are conditional updates on the finding's identifier (FHIR R4 3.1.0.4.3). The server
is :class:`rig.fhir_server.FakeFhirServer`, the seam that enforces R4's transaction rules.

A finding's lifecycle shows on the server: the missed measurement's Task goes requested,
accepted (with its owner) and completed, one resource in three versions; the alert's
DetectedIssue is preliminary while open and final with its mitigation once it ends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir_posting import post_until_idle
from findings_helpers import HUB, at, engine, ingest, reading, status

from protocols.fhir.identity import HUB_SYSTEM
from region.fhir_post import FhirPoster, FhirPostError, post_bundle, transaction_bundle
from region.findings.engine import FindingsEngine
from region.findings.fhir import DETECTED_ISSUES, FINDING_SYSTEM
from region.findings.model import Kind
from region.smart_auth import SmartAuth, SmartClient, new_client_key
from region.state_sqlite import SqliteFhirQueue
from rig.fhir_server import FakeFhirServer, SmartAuthority

CLIENT_ID = "narhub-region-findings"
NURSE = "sjukskoterska@example.org"
OXI = "C0:FF:EE:00:00:04"


def _on_server(server: FakeFhirServer, kind: str, finding_id: int) -> dict[str, Any]:
    found = server.store.search(kind, f"identifier={FINDING_SYSTEM}|{finding_id}")
    assert len(found) == 1, found
    return server.store.resources[kind][found[0]]


async def test_findings_are_conditional_updates_that_follow_their_lifecycle(tmp_path: Path):
    state = tmp_path / "state.db"
    eng = engine(state, enrolled_ms=at(2, 5), fhir_queue=True)
    status(eng, at(2, 5, 1), 1, battery=9)
    low_spo2 = frozenset({"threshold-below"})
    ingest(eng, at(2, 6, 2), reading(150456, at(2, 6), "85", device=OXI, unit="%", flags=low_spo2))
    eng.evaluate(at(2, 10, 1))  # the blood pressure's window passed
    by_kind = {f.kind: f for f in eng.findings.open_findings()}
    missed, alert, low = by_kind[Kind.MISSED], by_kind[Kind.ALERT], by_kind[Kind.BATTERY_LOW]
    # The worklist's process acknowledges: its engine was opened without the flag, and the
    # acknowledgement is queued all the same (the file has the queue).
    worklist = FindingsEngine.sqlite(state)
    worklist.acknowledge(missed.id, NURSE, at(2, 10, 30))
    worklist.close()
    ingest(  # closes both
        eng,
        at(2, 11),
        reading(150021, at(2, 10, 55), "131"),
        reading(150456, at(2, 10, 56), "97", device=OXI, unit="%"),
    )
    every = eng.findings.findings(limit=1000)
    eng.close()
    issues = sum(1 for f in every if f.kind in DETECTED_ISSUES)

    clock = 1_795_000_000.0
    client = SmartClient(CLIENT_ID, new_client_key("ES384"), "ES384", "key-1")
    authority = SmartAuthority({CLIENT_ID: client.public_jwks()}, clock=lambda: clock)
    with FakeFhirServer(smart=authority) as server:
        auth = SmartAuth(client, server.base_url, clock=lambda: clock)
        queue = SqliteFhirQueue(state)
        bundles = queue.pending()
        assert bundles >= 4  # each change its own Bundle, in the order of the changes
        server.faults = ["down"]  # retried, in order
        poster = FhirPoster(queue, server.base_url, auth=auth, timeout_s=5)
        await post_until_idle(poster)
        assert (poster.stats.bundles, poster.stats.refused, queue.pending()) == (bundles, 0, 0)
        assert server.answers[0] == (503, "transient")

        task = _on_server(server, "Task", missed.id)
        assert task["status"] == "completed"
        assert task["owner"]["identifier"]["value"] == NURSE
        assert task["meta"]["versionId"] == "3"  # requested, accepted, completed
        assert task["for"]["identifier"]["value"] == "pat-0001"
        issue = _on_server(server, "DetectedIssue", alert.id)
        assert issue["status"] == "final"
        # The device by its identifier: the server gave the Devices ids of its own.
        assert issue["implicated"] == [{"identifier": {"system": HUB_SYSTEM, "value": HUB}}]
        assert _on_server(server, "Task", low.id)["status"] == "requested"
        # One resource per finding, however many times it changed.
        assert server.store.count("Task") == len(every) - issues
        assert server.store.count("DetectedIssue") == issues

        # The same Bundle posted again changes nothing but the version: one resource each.
        lines = [json.dumps(issue | {"resourceType": "DetectedIssue", "id": "finding-x"})]
        post_bundle(
            server.base_url,
            transaction_bundle(lines),
            entries=1,
            authorization=auth.authorization(),
        )
        post_bundle(
            server.base_url,
            transaction_bundle(lines),
            entries=1,
            authorization=auth.authorization(),
        )
        assert server.store.count("DetectedIssue") == issues
        assert _on_server(server, "DetectedIssue", alert.id)["meta"]["versionId"] == "4"


def test_a_transaction_that_updates_a_resource_twice_fails_whole() -> None:
    line = {
        "resourceType": "Task",
        "id": "finding-1",
        "identifier": [{"system": FINDING_SYSTEM, "value": "1"}],
        "status": "requested",
        "intent": "proposal",
    }
    bundle = json.loads(transaction_bundle([json.dumps(line)]))
    bundle["entry"].append(dict(bundle["entry"][0], fullUrl="urn:uuid:other"))
    with FakeFhirServer() as server:
        with pytest.raises(FhirPostError) as refused:
            post_bundle(server.base_url, json.dumps(bundle).encode(), entries=2)
        assert (refused.value.status, refused.value.retry) == (400, False)
        assert server.store.count("Task") == 0
