"""Enrolment: lending hubs to patients, and every reading filed by its time to the right one.

Real parts: the region CA on disk (which hubs exist), the CLI (``narhub region enrol|unenrol|
enrolments|unattributed``), the store (SQLite, and PostgreSQL on the tests' private cluster:
each test runs on both), the receiver with signed batches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from common.pki import build_csr, certificate_public_key_pem, new_private_key_pem, public_key_pem
from common.signing import PemBatchSigner, PemBatchVerifier
from drivers.mqtt import MqttLink, TlsFiles
from protocols.fhir import PatientRef
from protocols.uplink import BatchHeader, Priority, WireReading
from protocols.uplink.batch import encode_body
from region.ca import RegionCa
from region.enrolment import (
    BadTimeError,
    EnrolmentRequest,
    looks_like_personnummer,
    parse_time,
)
from region.enrolment_sql import reading_from_json, reading_json
from region.enrolment_sqlite import SqliteEnrolmentStore
from region.receiver import RECEIVER_NAME, Receiver
from region.state_open import open_enrolments, open_state, postgres_filing
from region.state_pg import export_ndjson
from region.state_sqlite import SqliteState
from rig.broker import MosquittoBroker, RigPki
from technician.cli import app

runner = CliRunner()
HUB = "hub-0001"
KEY = new_private_key_pem()
SIGNER = PemBatchSigner(HUB, KEY)
SYSTEM = "urn:oid:1.2.752.0.99"
#: 2026-03-01T08:00:00Z and one day.
T0 = 1_772_352_000_000
DAY = 86_400_000
CUFF = "C0:FF:EE:00:0D:02"
SCALE = "C0:FF:EE:00:0D:03"


def iso(t_ms: int) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, tz=dt.UTC).isoformat()


def _region(tmp_path: Path, state: Path | str, backend: str) -> dict[str, Any]:
    ca_dir = tmp_path / "ca"
    ca = RegionCa.init(ca_dir, "test CA")
    for hub in (HUB, "hub-0002"):
        ca.sign(build_csr(new_private_key_pem(), hub))
    return {"ca": ca_dir, "state": state, "out": tmp_path / "out.ndjson", "backend": backend}


@pytest.fixture(params=["sqlite", "postgresql"])
def region(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A region CA that issued hub-0001 and hub-0002, and a state: a SQLite file (with its
    NDJSON output) or a PostgreSQL database (exported to the same NDJSON path to read)."""
    if request.param == "postgresql":
        return _region(tmp_path, request.getfixturevalue("pg_url"), "postgresql")
    return _region(tmp_path, tmp_path / "state.db", "sqlite")


@pytest.fixture
def sqlite_region(tmp_path: Path) -> dict[str, Any]:
    """The same on SQLite only: a SQLite store's failure path (PostgreSQL's own is in
    tests/test_region_enrolment_pg.py)."""
    return _region(tmp_path, tmp_path / "state.db", "sqlite")


def cli(region: dict[str, Any], *args: str) -> tuple[int, dict[str, Any]]:
    command = args[0]
    extra = ["--ca-dir", str(region["ca"])] if command == "enrol" else []
    result = runner.invoke(
        app, ["region", *args, "--state", str(region["state"]), *extra, "--json"]
    )
    return result.exit_code, json.loads(result.stdout)


def enrol(region: dict[str, Any], patient: str, start: int, *more: str) -> tuple[int, Any]:
    return cli(region, "enrol", "--hub", HUB, "--patient", patient, "--patient-system",
               SYSTEM, "--from", iso(start), *more)  # fmt: skip


# --- errors --------------------------------------------------------------------------------


def test_overlapping_periods_of_one_hub_are_refused_naming_the_conflict(
    region: dict[str, Any],
) -> None:
    code, first = enrol(region, "p-anna", T0, "--to", iso(T0 + 10 * DAY))
    assert code == 0, first
    enrolment_id = first["enrolment"]["id"]
    code, out = enrol(region, "p-bertil", T0 + 5 * DAY)
    assert code == 1
    assert f"enrolment {enrolment_id}" in out["error"]
    assert "p-anna" in out["error"]
    assert "2026-03-01T08:00:00Z" in out["error"]
    assert "2026-03-11T08:00:00Z" in out["error"]
    assert "unenrol" in out["hint"]
    # Ending where the other starts is no overlap (periods are half-open).
    assert enrol(region, "p-bertil", T0 + 10 * DAY)[0] == 0


def test_overlapping_periods_of_one_device_are_refused_a_device_within_the_hub_is_not(
    region: dict[str, Any],
) -> None:
    assert enrol(region, "p-anna", T0)[0] == 0
    assert enrol(region, "p-bertil", T0 + DAY, "--device", CUFF.lower())[0] == 0
    code, out = enrol(region, "p-cecilia", T0 + 2 * DAY, "--device", CUFF)
    assert code == 1
    assert CUFF in out["error"]
    assert "p-bertil" in out["error"]
    # Another device of the same hub may have its own patient.
    assert enrol(region, "p-cecilia", T0 + 2 * DAY, "--device", SCALE)[0] == 0


def test_an_unknown_hub_is_refused(region: dict[str, Any]) -> None:
    code, out = cli(region, "enrol", "--hub", "hub-9999", "--patient", "p-anna",
                    "--from", iso(T0))  # fmt: skip
    assert code == 1
    assert "hub-9999" in out["error"]
    assert "never issued" in out["error"]


@pytest.mark.parametrize(
    ("start", "end", "option"),
    [
        ("2026-03-02T08:00:00+00:00", "2026-03-01T08:00:00+00:00", "ends"),
        ("2026-03-01T08:00:00+00:00", "2026-03-01T09:00:00+01:00", "ends"),
        ("yesterday", "2026-03-01T08:00:00Z", "--from"),
        ("2026-03-01T08:00:00", None, "--from"),
        ("2026-03-01T08:00:00Z", "2026-13-01T00:00Z", "--to"),
    ],
)
def test_an_end_before_start_or_a_bad_time_is_refused(
    region: dict[str, Any], start: str, end: str | None, option: str
) -> None:
    more = [] if end is None else ["--to", end]
    code, out = cli(region, "enrol", "--hub", HUB, "--patient", "p-anna", "--from", start, *more)
    assert code == 1
    assert option in out["error"]
    assert cli(region, "enrolments")[1]["enrolments"] == []


@pytest.mark.parametrize(
    ("system", "value", "why"),
    [
        (SYSTEM, "19121212-1212", "personal identity number"),
        (SYSTEM, "201212121212", "personal identity number"),
        (SYSTEM, "Anna Andersson", "pseudonym"),
        ("not a uri", "p-anna", "URI"),
    ],
)
def test_a_name_or_personnummer_is_never_stored(
    region: dict[str, Any], system: str, value: str, why: str
) -> None:
    code, out = cli(region, "enrol", "--hub", HUB, "--patient", value, "--patient-system",
                    system, "--from", iso(T0))  # fmt: skip
    assert code == 1
    assert why in out["error"]
    assert cli(region, "enrolments")[1]["enrolments"] == []


def test_the_personnummer_check_uses_the_check_digit() -> None:
    """Skatteverket SKV 704: the last digit is a Luhn check of the other nine."""
    assert looks_like_personnummer("121212-1212")
    assert not looks_like_personnummer("121212-1213")
    assert looks_like_personnummer("121272-1219")  # samordningsnummer: day + 60
    assert not looks_like_personnummer("p-0042")


@given(st.text(max_size=40))
def test_parse_time_gives_a_time_or_a_bad_time_error(text: str) -> None:
    error: BadTimeError | None = None
    try:
        value: int | None = parse_time("--from", text, now_ms=T0)
    except BadTimeError as exc:
        error, value = exc, None
    if error is None:
        assert isinstance(value, int)
    else:
        assert (error.option, error.text) == ("--from", text)
        assert isinstance(error, ValueError)


@given(st.integers(0, 253_402_214_400), st.sampled_from(["Z", "+00:00", "+01:00", "-05:30"]))
def test_parse_time_reads_what_format_writes(t_s: int, zone: str) -> None:
    hours, _, minutes = zone.strip("Z+-").partition(":")
    sign = -1 if zone.startswith("-") else 1
    offset = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0)) * sign
    moment = dt.datetime.fromtimestamp(t_s, tz=dt.timezone(offset))
    text = moment.isoformat().replace("+00:00", "Z") if zone == "Z" else moment.isoformat()
    assert parse_time("--at", text, now_ms=0) == t_s * 1000


# --- ending, withdrawing -------------------------------------------------------------------


def test_a_hub_returned_and_lent_again(region: dict[str, Any]) -> None:
    assert enrol(region, "p-anna", T0)[0] == 0
    code, out = cli(region, "unenrol", "--hub", HUB, "--at", iso(T0 + 3 * DAY))
    assert code == 0, out
    assert out["ended"] == "2026-03-04T08:00:00Z"
    assert enrol(region, "p-bertil", T0 + 3 * DAY)[0] == 0
    listed = cli(region, "enrolments", "--hub", HUB)[1]["enrolments"]
    assert [(e["patient"]["value"], e["from"], e["to"]) for e in listed] == [
        ("p-anna", "2026-03-01T08:00:00Z", "2026-03-04T08:00:00Z"),
        ("p-bertil", "2026-03-04T08:00:00Z", None),
    ]


def test_unenrol_at_the_start_withdraws_and_nothing_enrolled_is_refused(
    region: dict[str, Any],
) -> None:
    assert enrol(region, "p-anna", T0)[0] == 0
    code, out = cli(region, "unenrol", "--hub", HUB, "--at", iso(T0))
    assert (code, out["withdrawn"]) == (0, True)
    assert cli(region, "enrolments")[1]["enrolments"] == []
    code, out = cli(region, "unenrol", "--hub", HUB, "--at", iso(T0))
    assert code == 1
    assert "no enrolment" in out["error"]


# --- attribution through the receiver -------------------------------------------------------


def _batch(seq: int, readings: list[WireReading], boot: str = "b1") -> bytes:
    header = BatchHeader(HUB, boot, seq, T0, Priority.CLINICAL, len(readings))
    return SIGNER.sign(encode_body(header, readings))


def _temp(t_ms: int, device: str = CUFF, value: str = "37.0") -> WireReading:
    return WireReading(f"{device}/150364", 150364, "Cel", t_ms, Decimal(value), device=device)


def _receiver(
    region: dict[str, Any], verifier: PemBatchVerifier | None = None, **more: Any
) -> Receiver:
    verifier = verifier or PemBatchVerifier({HUB: public_key_pem(KEY)})
    if region["backend"] == "sqlite":
        return Receiver(verifier, SqliteState(region["state"], region["out"]), **more)
    stores = postgres_filing(region["state"])
    return Receiver(
        verifier,
        open_state(region["state"], output=None),
        enrolments=stores.enrolments,
        devices=stores.devices,
        raw_records=stores.raw_records,
        **more,
    )


def _lines(region: dict[str, Any]) -> list[str]:
    """The FHIR resources written (a PostgreSQL state's exported as `narhub region export`)."""
    if region["backend"] == "postgresql":
        export_ndjson(region["state"], region["out"])
    text: str = region["out"].read_text()
    return text.splitlines()


TOPIC = f"narhub/v1/{HUB}/up/clinical"


def _filed(region: dict[str, Any]) -> dict[int, str]:
    """Observation time -> the patient pseudonym it was filed to."""
    out = {}
    for line in _lines(region):
        resource = json.loads(line)
        if resource["resourceType"] != "Observation" or "valueQuantity" not in resource:
            continue
        moment = dt.datetime.fromisoformat(resource["effectiveDateTime"])
        t_ms = round(moment.timestamp() * 1000)
        assert t_ms not in out, "filed twice"
        out[t_ms] = resource["subject"]["identifier"]["value"]
    return out


def test_readings_are_filed_by_their_time_boundaries_included(region: dict[str, Any]) -> None:
    """[start, end): a reading at the end of one period is the next patient's."""
    swap = T0 + 3 * DAY
    assert enrol(region, "p-anna", T0, "--to", iso(swap))[0] == 0
    assert enrol(region, "p-bertil", swap)[0] == 0
    receiver = _receiver(region)
    times = [T0 - 1, T0, swap - 1, swap, swap + DAY]
    receiver.handle(TOPIC, _batch(0, [_temp(t) for t in times]))
    assert _filed(region) == {
        T0: "p-anna",
        swap - 1: "p-anna",
        swap: "p-bertil",
        swap + DAY: "p-bertil",
    }
    assert receiver.stats.held == 1  # the reading before any enrolment
    receiver.close()
    # The enrolment knows what was filed to it: ending it before that is refused.
    code, out = cli(region, "unenrol", "--hub", HUB, "--at", iso(swap + 1))
    assert code == 1
    assert "already filed to patient p-bertil" in out["error"]


def test_two_patients_sharing_a_hub_are_told_apart_by_device(region: dict[str, Any]) -> None:
    assert enrol(region, "p-anna", T0)[0] == 0  # the hub, and everything on it
    assert enrol(region, "p-bertil", T0, "--device", SCALE)[0] == 0  # Bertil's own scale
    receiver = _receiver(region)
    receiver.handle(TOPIC, _batch(0, [_temp(T0 + 1, CUFF), _temp(T0 + 2, SCALE)]))
    assert _filed(region) == {T0 + 1: "p-anna", T0 + 2: "p-bertil"}
    receiver.close()


def test_unattributed_readings_are_held_listed_and_released_by_a_later_enrolment(
    region: dict[str, Any],
) -> None:
    receiver = _receiver(region)
    readings = [_temp(T0 + i * 1000) for i in range(3)]
    lines = receiver.handle(TOPIC, _batch(0, readings))
    assert not [line for line in lines if '"Observation"' in line]
    # Delivered again in another batch (a hub that lost power before deleting): held once.
    receiver.handle(TOPIC, _batch(0, readings, boot="b2"))
    code, out = cli(region, "unattributed")
    assert code == 0
    assert out["held"] == 3
    assert out["groups"] == [
        {"hub": HUB, "device": CUFF, "readings": 3, "first": "2026-03-01T08:00:00Z",
         "last": "2026-03-01T08:00:02Z"}
    ]  # fmt: skip
    assert receiver.release_held() == 0  # nothing covers them yet
    code, out = enrol(region, "p-anna", T0)
    assert (code, out["releases_held"]) == (0, 3)
    assert receiver.release_held() == 3
    assert _filed(region) == {T0: "p-anna", T0 + 1000: "p-anna", T0 + 2000: "p-anna"}
    assert cli(region, "unattributed")[1]["held"] == 0
    assert receiver.release_held() == 0
    receiver.close()


class _PowerCutOnRelease(SqliteEnrolmentStore):
    """The SQLite store, stopped (as by a power cut) when it would forget released readings:
    their output is written, the store still holds them."""

    def release(self, keys: Sequence[str]) -> None:
        raise _PowerCutError


class _PowerCutError(Exception):
    pass


def test_a_release_interrupted_before_forgetting_files_each_reading_once(
    sqlite_region: dict[str, Any],
) -> None:
    region = sqlite_region
    verifier = PemBatchVerifier({HUB: public_key_pem(KEY)})
    store = _PowerCutOnRelease(region["state"])
    receiver = Receiver(verifier, SqliteState(region["state"], region["out"]), enrolments=store)
    receiver.handle(TOPIC, _batch(0, [_temp(T0 + 5)]))
    assert enrol(region, "p-anna", T0)[0] == 0
    with pytest.raises(_PowerCutError):
        receiver.release_held()
    receiver.close()
    assert _filed(region) == {T0 + 5: "p-anna"}  # written before the cut
    receiver = _receiver(region)
    assert receiver.release_held() == 1
    assert _filed(region) == {T0 + 5: "p-anna"}  # and not again
    assert cli(region, "unattributed")[1]["held"] == 0
    receiver.close()


def test_the_hubs_own_readings_and_device_information_are_never_held(
    region: dict[str, Any],
) -> None:
    receiver = _receiver(region)
    tombstone = WireReading("hub/evicted/x", 2 * 65536 + 0xF105, "1", T0, Decimal(3), device="hub")
    info = WireReading(
        f"{CUFF}/531970", 531970, "", T0, None, "A&D", frozenset({"device-info"}), CUFF
    )
    receiver.handle(TOPIC, _batch(0, [tombstone, info]))
    assert receiver.stats.held == 0
    observations = [json.loads(line) for line in _lines(region) if '"Observation"' in line]
    assert [o["subject"] for o in observations] == [{"reference": f"Device/phg-{HUB}"}]
    receiver.close()


def test_held_readings_keep_their_exact_values() -> None:
    reading = WireReading("s/1", 1, "Cel", T0, Decimal("-0.00"), None, frozenset({"a"}), "d")
    again = reading_from_json(reading_json(reading))
    assert again == reading
    assert str(again.value) == "-0.00"


def test_a_second_operator_cannot_enrol_an_overlap_between_check_and_insert(
    region: dict[str, Any],
) -> None:
    """The overlap check and the insert are one transaction: a second store's enrol waits for
    the first to commit and then sees it."""
    one, two = open_enrolments(str(region["state"])), open_enrolments(str(region["state"]))
    patient = PatientRef(SYSTEM, "p-anna")
    one.enrol(EnrolmentRequest(HUB, patient, T0))
    with pytest.raises(ValueError, match="already enrolled"):
        two.enrol(EnrolmentRequest(HUB, PatientRef(SYSTEM, "p-bertil"), T0 + DAY))
    one.close()
    two.close()


async def test_a_running_receiver_releases_held_readings_after_an_enrolment(
    broker: MosquittoBroker, rig_pki: RigPki, region: dict[str, Any]
) -> None:
    """Through the broker, as `narhub region ingest` runs: nothing to do but enrol."""
    hub = rig_pki.client(HUB)
    verifier = PemBatchVerifier({HUB: certificate_public_key_pem(hub.cert_file.read_bytes())})
    receiver = _receiver(region, verifier, release_interval_s=0.1)
    rx = rig_pki.client(RECEIVER_NAME)

    def connect() -> MqttLink:
        tls = TlsFiles(rig_pki.ca_file, rx.cert_file, rx.key_file)
        return MqttLink(broker.host, broker.port, client_id=f"{RECEIVER_NAME}-e", tls=tls,
                        manual_ack=True)  # fmt: skip

    task = asyncio.create_task(receiver.run(connect), name="receiver")
    try:
        await asyncio.wait_for(receiver.subscribed.wait(), 20)
        signer = PemBatchSigner(HUB, hub.key_file.read_bytes())
        header = BatchHeader(HUB, "b1", 0, T0, Priority.CLINICAL, 1)
        tls = TlsFiles(rig_pki.ca_file, hub.cert_file, hub.key_file)
        async with MqttLink(broker.host, broker.port, client_id=HUB, tls=tls) as up:
            await up.publish(TOPIC, signer.sign(encode_body(header, [_temp(T0 + 7)])))
        async with asyncio.timeout(20):
            while receiver.stats.held < 1:  # noqa: ASYNC110 - the receiver's own counter
                await asyncio.sleep(0.05)
        assert enrol(region, "p-anna", T0)[0] == 0
        async with asyncio.timeout(20):
            while receiver.stats.released < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        receiver.close()
    assert _filed(region) == {T0 + 7: "p-anna"}
