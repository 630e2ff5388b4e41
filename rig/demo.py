"""``narhub demo``: the walking skeleton on the virtual rig, narrated for a person."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.outbox import PendingBatch
from protocols.gatt import TemperatureMeasurement
from protocols.uplink import Batch
from protocols.uplink.device_facts import FLAG_DEVICE_INFO
from rig.broker import MosquittoBroker
from rig.skeleton import PATIENT, SkeletonTrace, demo_measurements, run_skeleton


def _narrate(console: Console) -> Any:
    def on_stage(stage: str, data: Any) -> None:
        if stage == "broker":
            broker: MosquittoBroker = data
            console.print(
                f"[bold]broker[/]   Mosquitto on 127.0.0.1:{broker.port}, TLS 1.3, client "
                "certificates required, per-hub ACL"
            )
        elif stage == "device":
            console.print(
                "[bold]device[/]   emulated Health Thermometer (bumble) advertising 0x1809"
            )
        elif stage == "sent":
            measurement: TemperatureMeasurement
            measurement, payload = data
            console.print(
                f"[bold]air[/]      0x2A1C indication {payload.hex(' ')}  "
                f"({measurement.temperature.value} {escape(measurement.unit.value)})"
            )
        elif stage == "stored":
            for reading in data:
                shown = (
                    f"device information {escape(str(reading.special))!r}"
                    if FLAG_DEVICE_INFO in reading.flags
                    else f"{reading.value} {escape(reading.unit)}"
                )
                console.print(
                    f"[bold]outbox[/]   committed MDC {reading.mdc_code} = {shown} "
                    "(SQLite WAL, synchronous=FULL)"
                )
        elif stage == "published":
            batch: PendingBatch
            batch, reason = data
            console.print(
                f"[bold]uplink[/]   batch seq {batch.seq}: {len(batch.message)} bytes "
                f"COSE_Sign1/ES256, PUBACK reason 0x{reason:02X}"
            )
        elif stage == "received":
            received: Batch
            received, lines = data
            kinds = Counter(json.loads(line)["resourceType"] for line in lines)
            console.print(
                f"[bold]region[/]   signature verified (kid {received.header.hub_id}), filed to "
                f"patient {PATIENT.value}: {kinds['Observation']} Observation(s) and "
                f"{kinds['Device']} Device(s) written"
            )

    return on_stage


def _summary(console: Console, trace: SkeletonTrace, output: Path) -> None:
    table = Table(title="FHIR R4 Observations at the region")
    for column in ("MDC", "LOINC", "value (exact)", "UCUM", "effective"):
        table.add_column(column)
    for line in trace.observation_lines:
        obs = json.loads(line, parse_float=str)
        codes = obs["code"]["coding"]
        quantity = obs.get("valueQuantity", {})
        table.add_row(
            f"{codes[0]['code']} {codes[0].get('display', '')}",
            ", ".join(c["code"] for c in codes[1:]),
            str(quantity.get("value", obs.get("dataAbsentReason"))),
            escape(str(quantity.get("code", ""))),
            obs["effectiveDateTime"],
        )
    console.print(table)
    first = trace.observation_lines[0]
    console.print(f"First Observation, exactly as written to {output}:")
    console.print(first, markup=False, highlight=False, soft_wrap=True)


def run_demo(workdir: Path | None = None) -> SkeletonTrace:
    """Run the skeleton in a temporary directory and print what flowed."""
    console = Console()
    console.rule("narhub demo: emulated thermometer -> hub -> TLS broker -> region -> FHIR")
    directory = workdir or Path(tempfile.mkdtemp(prefix="narhub-demo-"))
    measurements = demo_measurements(dt.datetime.now().replace(microsecond=0))  # noqa: DTZ005
    trace = asyncio.run(run_skeleton(directory, measurements, on_stage=_narrate(console)))
    _summary(console, trace, directory / "region" / "observations.ndjson")
    console.rule(f"{len(trace.observations)} of {len(measurements)} readings arrived")
    return trace
