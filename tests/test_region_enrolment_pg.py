"""Enrolments and held readings shared by receivers in PostgreSQL (region/enrolment_pg.py).

On the tests' private PostgreSQL cluster (rig/postgres.py): two receivers, each with its own
connections, see one set of enrolments and held readings; a filing's holds, filed times and
releases commit in the batch's own transaction, so a reading is released exactly once and
never filed by enrolments that changed while it was being filed (PostgreSQL 15
documentation, 13.3.5 "Advisory Locks"). The CLI-level enrolment rules run on both backends
in tests/test_region_enrolment.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from common.pki import public_key_pem
from common.signing import PemBatchVerifier
from protocols.fhir import PatientRef, dumps_exact
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.enrolment import Enrolment, EnrolmentRequest
from region.enrolment_pg import JointFiling, PostgresEnrolmentStore
from region.filing import Filer, Filing
from region.receiver import Receiver
from region.state import BatchKey, FilingRaceError, ObservationLine, resource_key
from region.state_open import open_state, postgres_filing
from region.state_pg import PostgresState, export_ndjson
from tests.test_region_enrolment import CUFF, DAY, HUB, KEY, SIGNER, SYSTEM, T0, TOPIC

ANNA = PatientRef(SYSTEM, "p-anna")
BERTIL = PatientRef(SYSTEM, "p-bertil")


def _temp(t_ms: int, device: str = CUFF) -> WireReading:
    return WireReading(f"{device}/150364", 150364, "Cel", t_ms, Decimal("37.0"), device=device)


def _batch(seq: int, readings: list[WireReading], boot: str = "b1") -> bytes:
    header = BatchHeader(HUB, boot, seq, T0, Priority.CLINICAL, len(readings))
    return SIGNER.sign(encode_body(header, readings))


class _Receivers:
    """Receivers on one PostgreSQL state, each with its own connections; what each filed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.filings: list[tuple[int, Filing]] = []
        self.receivers: list[Receiver] = []

    def add(self, enrolments: PostgresEnrolmentStore | None = None) -> Receiver:
        n = len(self.receivers)
        stores = postgres_filing(self.url, name=f"rx{n}")
        if enrolments is not None:
            stores.enrolments.close()
        receiver = Receiver(
            PemBatchVerifier({HUB: public_key_pem(KEY)}),
            open_state(self.url, output=None, name=f"rx{n}"),
            enrolments=enrolments or stores.enrolments,
            devices=stores.devices,
            raw_records=stores.raw_records,
            on_ingested=lambda filing: self.filings.append((n, filing)),
        )
        self.receivers.append(receiver)
        return receiver

    def close(self) -> None:
        for receiver in self.receivers:
            receiver.close()


@pytest.fixture
def receivers(pg_url: str) -> Iterator[_Receivers]:
    group = _Receivers(pg_url)
    yield group
    group.close()


def _filed(url: str, tmp_path: Path) -> list[tuple[int, str]]:
    """(effective time, patient pseudonym) of every Observation written, in order."""
    out = tmp_path / "export.ndjson"
    export_ndjson(url, out)
    found = []
    for line in out.read_text().splitlines():
        resource = json.loads(line)
        if resource["resourceType"] == "Observation" and "valueQuantity" in resource:
            found.append(
                (resource["effectiveDateTime"], resource["subject"]["identifier"]["value"])
            )
    return found


def test_two_receivers_share_enrolments_and_held_readings(
    receivers: _Receivers, tmp_path: Path
) -> None:
    one, two = receivers.add(), receivers.add()
    one.handle(TOPIC, _batch(0, [_temp(T0 + 1), _temp(T0 + 2)]))
    assert one.stats.held == 2
    # The readings held by the first receiver are the second's to release.
    operator = PostgresEnrolmentStore(receivers.url)
    operator.enrol(EnrolmentRequest(HUB, ANNA, T0))
    operator.close()
    assert two.release_held() == 2
    assert one.release_held() == 0
    # A batch the second receives is filed by the enrolment the operator made.
    two.handle(TOPIC, _batch(1, [_temp(T0 + 3)]))
    assert [patient for _t, patient in _filed(receivers.url, tmp_path)] == ["p-anna"] * 3
    # Each filing reached the findings' hook once, from the receiver that committed it.
    assert [(n, len(f.filed)) for n, f in receivers.filings] == [(0, 0), (1, 2), (1, 1)]


def test_held_readings_are_released_once_when_two_receivers_race(
    receivers: _Receivers, tmp_path: Path
) -> None:
    """Both receivers find the same held readings; the second's release commits nothing."""
    one = receivers.add()
    one.handle(TOPIC, _batch(0, [_temp(T0 + i) for i in range(3)]))
    operator = PostgresEnrolmentStore(receivers.url)
    operator.enrol(EnrolmentRequest(HUB, ANNA, T0))
    stores = postgres_filing(receivers.url, name="late")
    late = Filer(stores.enrolments, stores.devices)
    stale = late.releasable()  # found before the first receiver releases them
    assert [len(f.released) for f in stale] == [3]
    assert one.release_held() == 3
    state = PostgresState(receivers.url, application_name="late")
    lines = [ObservationLine(resource_key(r), dumps_exact(r)) for r in stale[0].resources.all()]
    with pytest.raises(FilingRaceError, match="released"):
        state.commit_batch(BatchKey("", "late", 0), lines, writes=stale[0].writes)
    assert not state.seen("", "late", 0)  # rolled back with it
    state.close()
    stores.enrolments.close()
    stores.devices.close()
    stores.raw_records.close()
    assert operator.held() == []
    operator.close()
    assert len(_filed(receivers.url, tmp_path)) == 3


class _EnrolsMeanwhile(PostgresEnrolmentStore):
    """The shared store, with an operator's enrolment landing (once) after the receiver read
    the enrolments and before its batch commits."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url
        self.raced = 0

    def joint(self, hub: str, attributed_by: Sequence[Enrolment], **writes: Any) -> JointFiling:
        if not self.raced:
            self.raced += 1
            operator = PostgresEnrolmentStore(self.url)
            operator.enrol(EnrolmentRequest(HUB, BERTIL, T0, device=CUFF))
            operator.close()
        return super().joint(hub, attributed_by, **writes)


def test_a_batch_filed_while_an_enrolment_changes_is_filed_again_by_the_new_one(
    receivers: _Receivers, tmp_path: Path
) -> None:
    operator = PostgresEnrolmentStore(receivers.url)
    operator.enrol(EnrolmentRequest(HUB, ANNA, T0))  # the hub-wide enrolment
    operator.close()
    store = _EnrolsMeanwhile(receivers.url)
    receiver = receivers.add(enrolments=store)
    receiver.handle(TOPIC, _batch(0, [_temp(T0 + DAY)]))
    assert store.raced == 1
    # Filed by the device's enrolment made meanwhile, not the hub-wide one read first.
    assert [patient for _t, patient in _filed(receivers.url, tmp_path)] == ["p-bertil"]
    operator = PostgresEnrolmentStore(receivers.url)
    listed = {e.patient.value: e.filed_until_ms for e in operator.enrolments()}
    operator.close()
    assert listed == {"p-anna": None, "p-bertil": T0 + DAY}


def test_a_rolled_back_filing_holds_nothing(receivers: _Receivers) -> None:
    """Holding is in the batch's transaction: a batch whose commit fails holds nothing."""
    receivers.add()
    stores = postgres_filing(receivers.url, name="rb")
    filer = Filer(stores.enrolments, stores.devices)
    batch = PemBatchVerifier({HUB: public_key_pem(KEY)}).verify(_batch(0, [_temp(T0 + 5)]))
    filing = filer.file_batch(batch)
    assert filing.writes is not None
    operator = PostgresEnrolmentStore(receivers.url)
    operator.enrol(EnrolmentRequest(HUB, ANNA, T0 + DAY))  # changes the hub's enrolments
    state = PostgresState(receivers.url, application_name="rb")
    with pytest.raises(FilingRaceError, match="changed"):
        state.commit_batch(BatchKey(HUB, "b1", 0), [], writes=filing.writes)
    assert operator.held() == []
    assert not state.seen(HUB, "b1", 0)
    state.close()
    operator.close()
    stores.enrolments.close()
    stores.devices.close()
    stores.raw_records.close()


def test_ingest_on_postgresql_asks_where_findings_go(pg_url: str, tmp_path: Path) -> None:
    """Enrolments are shared in the state; findings and consents (not shared yet) need the
    receiver's own file, and the command says so rather than guessing one."""
    from typer.testing import CliRunner

    from technician.cli import app

    args = ["region", "ingest", "--ca-dir", str(tmp_path), "--host", "localhost",
            "--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "k.pem"),
            "--state", pg_url]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--local-db" in result.output


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_device_registry_merges_what_batches_say(
    backend: str, pg_url: str, tmp_path: Path
) -> None:
    """The same conformance on both backends: strings of later batches win, specializations
    add up, a System ID arrives later and stays; another connection sees it all."""
    from protocols.fhir import DeviceDescription
    from region.device_registry import DeviceRegistry, SqliteDeviceRegistry
    from region.enrolment_pg import PostgresDeviceRegistry

    def registry() -> DeviceRegistry:
        if backend == "sqlite":
            return SqliteDeviceRegistry(tmp_path / "state.sqlite3")
        return PostgresDeviceRegistry(pg_url)

    one, two = registry(), registry()
    first = DeviceDescription(CUFF, manufacturer="A&D", model="UA-651", specializations=(528391,))
    later = DeviceDescription(CUFF, firmware="1.2", system_id="C0-FF-EE-FF-FE-00-0D-02")
    assert one.update({CUFF: first}) == {CUFF: first}
    merged = two.update({CUFF: later})[CUFF]
    assert merged == DeviceDescription(
        CUFF, manufacturer="A&D", model="UA-651", firmware="1.2",
        specializations=(528391,), system_id="C0-FF-EE-FF-FE-00-0D-02",
    )  # fmt: skip
    assert one.get([CUFF, "unknown"]) == {CUFF: merged}
    one.close()
    two.close()


def test_an_enrolment_racing_another_waits_for_it_and_sees_the_overlap(pg_url: str) -> None:
    """Two operators at once: the second ``enrol`` waits on the hub's advisory lock held by
    the first's open transaction, then sees its enrolment and refuses the overlap
    (PostgreSQL 15 documentation, 13.3.5 "Advisory Locks")."""
    import threading

    import psycopg

    from region.enrolment import OverlapError
    from region.enrolment_pg import _HUB_LOCK, _hub_key
    from tests.test_region_state_pg import _wait_blocked

    PostgresEnrolmentStore(pg_url).close()  # the tables
    first = psycopg.connect(pg_url)  # a transaction of its own, as another operator's
    first.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_HUB_LOCK, _hub_key(HUB)))
    first.execute(
        "INSERT INTO enrolments (hub, patient_system, patient_value, start_ms) "
        "VALUES (%s, %s, %s, %s)",
        (HUB, SYSTEM, "p-anna", T0),
    )
    outcome: list[BaseException | Enrolment] = []

    def second() -> None:
        store = PostgresEnrolmentStore(pg_url, application_name="second-operator")
        try:
            outcome.append(store.enrol(EnrolmentRequest(HUB, BERTIL, T0 + DAY)))
        except OverlapError as exc:
            outcome.append(exc)
        finally:
            store.close()

    thread = threading.Thread(target=second)
    thread.start()
    _wait_blocked(pg_url, "second-operator")
    assert outcome == []  # still waiting for the first
    first.commit()
    first.close()
    thread.join(timeout=30)
    (result,) = outcome
    assert isinstance(result, OverlapError)
    assert result.existing.patient.value == "p-anna"


def test_a_release_waits_for_another_receivers_release_and_then_writes_nothing(
    receivers: _Receivers, tmp_path: Path
) -> None:
    """Another receiver's release has deleted the held rows in a transaction not yet
    committed: this receiver's release waits on their row locks, finds them gone once it
    commits, and rolls back its own (nothing written, nothing reported)."""
    import threading

    import psycopg

    from tests.test_region_state_pg import _wait_blocked

    one = receivers.add()
    one.handle(TOPIC, _batch(0, [_temp(T0 + 1), _temp(T0 + 2)]))
    operator = PostgresEnrolmentStore(receivers.url)
    operator.enrol(EnrolmentRequest(HUB, ANNA, T0))
    operator.close()
    other = psycopg.connect(receivers.url)  # the other receiver's open transaction
    other.execute("DELETE FROM held_readings")
    released: list[int] = []
    thread = threading.Thread(target=lambda: released.append(one.release_held()))
    thread.start()
    _wait_blocked(receivers.url, "rx0")  # the receiver's state connection waits
    other.commit()
    other.close()
    thread.join(timeout=30)
    assert released == [0]
    assert _filed(receivers.url, tmp_path) == []  # this receiver wrote none of them
    assert [len(f.filed) for _n, f in receivers.filings] == [0]  # only the batch's filing
