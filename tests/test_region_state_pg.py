"""The PostgreSQL state: a batch key, its Observations and its FHIR queue entry commit together;
two receivers that hold the same batch or the same Observation write it once (PostgreSQL 15
documentation, 13.2.1 "Read Committed Isolation Level": an insert that meets an uncommitted
conflicting row waits for that transaction, then sees its outcome)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest
from pg_locks import lock_waiter

from region.state import BatchKey, ObservationLine
from region.state_open import open_fhir_queue, open_state
from region.state_pg import PostgresFhirQueue, PostgresState, counts, export_ndjson


def _obs(*ids: str) -> list[ObservationLine]:
    return [ObservationLine(i, json.dumps({"resourceType": "Observation", "id": i})) for i in ids]


def _wait_blocked(url: str, application_name: str, timeout_s: float = 20.0) -> None:
    """Until the backend of ``application_name`` waits on a lock (polls the server's view)."""
    if lock_waiter(url, application_name, timeout_s) is None:
        raise AssertionError(f"{application_name} never waited on a lock")


def test_a_batch_is_written_once_and_its_observations_once(pg_url: str, tmp_path: Path) -> None:
    state = open_state(pg_url, output=None, fhir_queue=True)
    assert isinstance(state, PostgresState)
    assert state.commit_batch(BatchKey("hub-a", "b1", 0), _obs("o1", "o2")) is not None
    assert state.seen("hub-a", "b1", 0)
    assert not state.seen("hub-a", "b1", 1)
    # The same key again: nothing written.
    assert state.commit_batch(BatchKey("hub-a", "b1", 0), _obs("o1", "o2")) is None
    # A new key carrying a known reading and a new one (and the new one twice).
    written = state.commit_batch(BatchKey("hub-a", "b2", 0), _obs("o2", "o3", "o3"))
    assert written == [_obs("o3")[0].line]
    state.close()
    assert counts(pg_url) == {"batches": 2, "observations": 3, "fhir_queue": 2}
    out = tmp_path / "obs.ndjson"
    assert export_ndjson(pg_url, out) == 3
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["o1", "o2", "o3"]
    queue = open_fhir_queue(pg_url)
    lines = []
    while (item := queue.claim()) is not None:
        lines += item[1]
        queue.done(item[0], None)
    queue.close()
    assert [json.loads(line)["id"] for line in lines] == ["o1", "o2", "o3"]


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_receiver_racing_another_on_one_batch_waits_for_its_outcome(
    pg_url: str, outcome: str
) -> None:
    PostgresState(pg_url).close()  # the schema
    key = BatchKey("hub-a", "b1", 7)
    results: list[list[str] | None] = []
    with psycopg.connect(pg_url) as other:  # another receiver, mid-transaction
        other.execute(
            "INSERT INTO batches (hub, boot, seq, receiver) VALUES (%s, %s, %s, 'other')",
            (key.hub_id, key.boot_id, key.seq),
        )
        state = PostgresState(pg_url, application_name="racer")
        racer = threading.Thread(target=lambda: results.append(state.commit_batch(key, _obs("x"))))
        racer.start()
        _wait_blocked(pg_url, "racer")
        other.commit() if outcome == "commit" else other.rollback()
        racer.join(timeout=20)
    state.close()
    if outcome == "commit":
        assert results == [None]  # the other receiver wrote it: a duplicate here
        assert counts(pg_url)["observations"] == 0
    else:
        assert results == [[_obs("x")[0].line]]  # the other one died: written here, once
        assert counts(pg_url) == {"batches": 1, "observations": 1, "fhir_queue": 0}


def test_two_posters_share_the_queue_without_taking_each_others_bundles(pg_url: str) -> None:
    state = PostgresState(pg_url, fhir_queue=True)
    for seq in range(3):
        state.commit_batch(BatchKey("hub-a", "b1", seq), _obs(f"o{seq}"))
    state.close()
    first = PostgresFhirQueue(pg_url, name="poster-1")
    second = PostgresFhirQueue(pg_url, name="poster-2")
    a = first.claim()
    b = second.claim()
    assert a is not None
    assert b is not None
    assert a[0] != b[0]
    # A poster that retries claims its own leased Bundle again (the queue's order holds).
    assert first.claim() == a
    first.done(a[0], None)
    second.done(b[0], "422 Unprocessable Entity")
    assert first.pending() == 1
    assert second.retry_refused() == 1
    assert first.pending() == 2
    first.close()
    second.close()


def test_an_unreachable_database_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    from region.state import StateUnavailableError

    url = f"postgresql:///nothing?host={tmp_path}&port=1"
    with pytest.raises(StateUnavailableError) as caught:
        open_state(url, output=None)
    assert caught.value.backend == "postgresql"
    assert isinstance(caught.value, ConnectionError)
