"""Several region instances share the findings in PostgreSQL: two stores on one database
judging the same data raise each finding once, whether one commits before the other has
looked or both insert at the same moment (the second insert waits for the first and then
does nothing: the unique indexes, not the instances, decide). A close or acknowledgement
made twice is recorded once, and with ``fhir_queue`` each change is queued once for the
receivers' posters (region/state_pg.py's shared ``fhir_queue``)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from region.findings.lifecycle import Changes, reconcile
from region.findings.model import Condition, Kind
from region.findings.store_pg import PostgresFindingStore
from region.state_pg import PostgresFhirQueue

T0 = 1_772_000_000_000


def _silent(evidence: str = "last-contact:1") -> Condition:
    return Condition("hub-silent|hub-1", Kind.HUB_SILENT, evidence, T0, "hub-1")


def test_two_instances_judging_the_same_data_raise_it_once(pg_url: str) -> None:
    a, b = PostgresFindingStore(pg_url), PostgresFindingStore(pg_url)
    try:
        # Both looked before either wrote: both would open the finding.
        seen_a, seen_b = (
            reconcile(a.open_findings(), [_silent()]),
            reconcile(b.open_findings(), [_silent()]),
        )
        assert len(a.apply(seen_a, T0 + 60_000)) == 1
        assert b.apply(seen_b, T0 + 61_000) == []  # the same key and evidence
        # Another instance with other evidence for the same thing: still one open finding.
        assert b.apply(Changes(opened=[_silent("last-contact:0")]), T0 + 62_000) == []
        opened = a.open_findings()
        assert len(opened) == 1
        # Both see it end; one close is recorded.
        closing = Changes(closed=opened)
        assert len(a.apply(closing, T0 + 120_000)) == 1
        assert b.apply(closing, T0 + 121_000) == []
        assert [e.event for e in b.history([opened[0].id])] == ["opened", "closed"]
        # The same evidence again (a replayed status): never a second finding.
        assert b.apply(Changes(opened=[_silent()]), T0 + 180_000) == []
        assert len(a.findings()) == 1
        # New evidence (a later silence) is a new finding.
        assert len(b.apply(Changes(opened=[_silent("last-contact:2")]), T0 + 240_000)) == 1
    finally:
        a.close()
        b.close()


def test_racing_inserts_open_one_finding_and_queue_it_once(pg_url: str) -> None:
    stores = [PostgresFindingStore(pg_url, fhir_queue=True) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def judge(store: PostgresFindingStore) -> int:
        low = Condition("battery-low|hub-1|0", Kind.BATTERY_LOW, "status:1", T0, "hub-1")
        changes = Changes(opened=[_silent(), low])
        start.wait()
        return len(store.apply(changes, T0 + 60_000))

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            changed = list(pool.map(judge, stores))
        # Each finding opened by exactly one of them (not always the same one for both).
        assert sum(changed) == 2, changed
        assert len(stores[0].open_findings()) == 2
        finding = stores[0].open_findings()[0]
        acks = [s.acknowledge(finding.id, f"nurse-{i}", T0 + i) for i, s in enumerate(stores)]
        assert {f.ack_by for f in acks} == {"nurse-0"}  # the first one counts
        queue = PostgresFhirQueue(pg_url, name="poster-test")
        try:
            # The openings (one or two Bundles: whoever inserted) and one acknowledgement.
            resources: list[str] = []
            while (item := queue.claim()) is not None:
                resources += item[1]
                queue.done(item[0], None)
            assert len(resources) == 3, resources
            assert sum('"status":"accepted"' in line for line in resources) == 1
        finally:
            queue.close()
    finally:
        for store in stores:
            store.close()
