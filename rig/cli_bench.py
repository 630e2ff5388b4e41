"""``narhub bench ...``: benchmarks, JSON with speed and memory (RSS)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer

from common.cli import JsonFlag, emit

DurationOption = Annotated[float, typer.Option("--duration", help="Seconds per case.")]

app = typer.Typer(help="Benchmarks (JSON with --json): speed and memory (RSS).")

#: Benchmark name -> module under rig.bench exposing run(duration_s=...) -> dict.
BENCHMARKS = {
    "codecs": "rig.bench.codecs",
    "serial": "rig.bench.serial",
    "ble": "rig.bench.ble",
    "wire": "rig.bench.wire",
    "pipeline": "rig.bench.pipeline",
    "footprint": "rig.bench.footprint",
    "uplink": "rig.bench.uplink",
    "fleet": "rig.bench.fleet",
    "region": "rig.bench.region",
    "install": "rig.bench.install",
    "e2e": "rig.bench.e2e",
    "worklist": "rig.bench.worklist",
}


def _run_bench(name: str, duration_s: float, **options: Any) -> dict[str, Any]:
    module = import_module(BENCHMARKS[name])
    result: dict[str, Any] = module.run(duration_s=duration_s, **options)
    return result


@app.command("install")
def bench_install(
    as_json: JsonFlag = False,
    source: Annotated[
        Path | None, typer.Option(help="Measure this source tree (default: this checkout).")
    ] = None,
) -> None:
    """`pip install narhub` as a hub: distributions and bytes installed, modules `narhub run`
    imports until READY=1."""
    emit(_run_bench("install", 0.0, source=source), as_json)


def _duration_only(name: str, summary: str) -> Callable[..., None]:
    """Register ``narhub bench NAME`` for a benchmark that takes only --duration (and --json);
    ``summary`` is its help."""

    def command(as_json: JsonFlag = False, duration_s: DurationOption = 1.0) -> None:
        emit(_run_bench(name, duration_s), as_json)

    command.__name__ = command.__qualname__ = f"bench_{name}"
    command.__doc__ = summary
    return app.command(name)(command)


bench_codecs = _duration_only(
    "codecs", "GATT codec decodes/s per characteristic and for a day's mix, with RSS."
)
bench_serial = _duration_only(
    "serial", "Sensor-link frames and readings decoded per second, firmware encode cost, RSS."
)


@app.command("ble")
def bench_ble(
    as_json: JsonFlag = False,
    duration_s: DurationOption = 1.0,
    soak_s: Annotated[
        float | None, typer.Option("--soak", help="Run ten devices this long; tasks and RSS.")
    ] = None,
) -> None:
    """Advertisement-to-first-measurement time and notifications/s on the emulated radio."""
    emit(_run_bench("ble", duration_s, soak_s=soak_s), as_json)


#: A CGM in the reference day (issue 24): its record interval, 1 to 5 minutes.
CgmOption = Annotated[
    int | None,
    typer.Option(
        "--cgm",
        min=1,
        max=5,
        help="Add a CGM's records every N minutes (288 to 1,440 a day) to the reference day.",
    ),
]


@app.command("wire")
def bench_wire(
    as_json: JsonFlag = False,
    duration_s: DurationOption = 1.0,
    input_path: Annotated[
        Path | None, typer.Option("--input", help="A day as JSONL, one reading per line.")
    ] = None,
    cgm_interval_min: CgmOption = None,
) -> None:
    """Bytes per reading and encode/decode throughput of the uplink format vs JSON SenML."""
    emit(
        _run_bench("wire", duration_s, input_path=input_path, cgm_interval_min=cgm_interval_min),
        as_json,
    )


bench_pipeline = _duration_only(
    "pipeline", "Readings/s to the committed outbox, disk bytes per reading, syncs per minute, RSS."
)


@app.command("footprint")
def bench_footprint(
    as_json: JsonFlag = False,
    duration_s: DurationOption = 5.0,
    hours: Annotated[
        float, typer.Option("--hours", help="Hours of the reference day to replay.")
    ] = 1.0,
    start_hour: Annotated[
        float, typer.Option("--start-hour", help="Slice start, hours after 06:00 (16: 22:00).")
    ] = 16.0,
    speed: Annotated[float, typer.Option("--speed", help="Times real time.")] = 10.0,
    whole_day: Annotated[
        bool, typer.Option("--whole-day", help="Replay all 24 h (2.4 h at 10x).")
    ] = False,
    field: Annotated[
        bool,
        typer.Option("--field", help="Six BLE devices paired and remote management on."),
    ] = False,
    cgm_interval_min: CgmOption = None,
    feedback: Annotated[
        str,
        typer.Option(
            "--feedback",
            help="The patient's light, display and voice: off, on, or both (what it adds).",
        ),
    ] = "off",
    feedback_outputs: Annotated[
        str,
        typer.Option("--feedback-outputs", help="With --feedback: which outputs (comma list)."),
    ] = "light,button,display,voice",
) -> None:
    """`narhub run` as a process: RSS idle (after --duration s idle) and under load, CPU s per
    day hour, disk bytes per day, start-up time to the first reading accepted."""
    emit(
        _run_bench(
            "footprint",
            duration_s,
            hours=hours,
            start_hour=start_hour,
            speed=speed,
            whole_day=whole_day,
            field=field,
            cgm_interval_min=cgm_interval_min,
            feedback=feedback,
            feedback_outputs=feedback_outputs,
        ),
        as_json,
    )


@app.command("uplink")
def bench_uplink(
    as_json: JsonFlag = False,
    duration_s: DurationOption = 1.0,
    alerts: Annotated[
        int, typer.Option("--alerts", min=1, help="Alerts timed one after another.")
    ] = 50,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Days of the reference workload in the backlog.")
    ] = 1,
    full: Annotated[
        bool, typer.Option("--full", help="The issue's size: 200 alerts, a 7-day backlog.")
    ] = False,
) -> None:
    """Uplink over TLS to a local Mosquitto: alert latency to the FHIR line (p50/p99), backlog
    drain readings/s, receiver readings/s with one and two receivers, RSS."""
    emit(_run_bench("uplink", duration_s, alerts=alerts, days=days, full=full), as_json)


@app.command("fleet")
def bench_fleet(
    as_json: JsonFlag = False,
    duration_s: DurationOption = 1.0,
    hubs: Annotated[int, typer.Option("--hubs", min=1, help="Simulated hubs.")] = 100,
) -> None:
    """N hubs (own certificates, the hub's jittered backoff) through a broker restart:
    connect rate, time until all are back, batches lost (must be 0), RSS."""
    emit(_run_bench("fleet", duration_s, hubs=hubs), as_json)


@app.command("region")
def bench_region(
    as_json: JsonFlag = False,
    duration_s: DurationOption = 1.0,
    readings: Annotated[
        int, typer.Option("--readings", min=1000, help="Readings in the backlog per case.")
    ] = 60_000,
    findings_patients: Annotated[
        int,
        typer.Option(
            "--findings-patients",
            min=0,
            help="Enrolled patients to judge findings for, and the worklist at that size "
            "(as `narhub bench worklist`; 0: skip).",
        ),
    ] = 10_000,
) -> None:
    """Receivers draining a backlog into FHIR Observations: readings/s per receiver with
    SQLite and with PostgreSQL, 1 and 3 receivers, and into a FHIR server; findings for
    10,000 enrolled patients and the worklist page's response time at that size; RSS."""
    emit(
        _run_bench("region", duration_s, readings=readings, findings_patients=findings_patients),
        as_json,
    )


@app.command("e2e")
def bench_e2e(
    as_json: JsonFlag = False,
    rates: Annotated[
        str,
        typer.Option("--rates", help="Offered readings/s per step, increasing, comma-separated."),
    ] = "100,200,400,800,1600,3200",
    step_s: Annotated[
        float, typer.Option("--step-s", min=0.5, help="Seconds each step is held.")
    ] = 30.0,
    confirm_s: Annotated[
        float,
        typer.Option("--confirm-s", min=0.5, help="Seconds the best zero-loss step is held again."),
    ] = 60.0,
    outage: Annotated[
        bool,
        typer.Option(
            "--outage/--no-outage",
            help="A last step at a tenth of the best rate with the broker stopped in its middle.",
        ),
    ] = True,
    outage_s: Annotated[
        float, typer.Option("--outage-s", min=0.5, help="How long the broker is stopped.")
    ] = 20.0,
    ble: Annotated[
        bool,
        typer.Option("--ble", help="Emulated BLE heart-rate straps notifying beside the boards."),
    ] = False,
    boards: Annotated[
        int, typer.Option("--boards", min=1, max=32, help="Sensor boards sharing the rate.")
    ] = 4,
    baud: Annotated[
        int, typer.Option("--baud", min=1200, help="Each board's UART rate (bits/s, 8N1).")
    ] = 115_200,
    commit_window_s: Annotated[
        float | None,
        typer.Option(
            "--commit-window-s",
            min=0,
            max=10,
            help="The hub's store.commit_window_s (default: as installed, 1 s).",
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Keep the run's files (hub log, FHIR output) here."),
    ] = None,
) -> None:
    """The real `narhub run` fed by paced sensor boards (and BLE), Mosquitto with TLS, the
    region's receiver: the best offered rate held with zero loss, per-step latency, CPU, RSS,
    disk, outbox depth, and a broker outage."""
    from rig.bench.e2e_machine import parse_rates

    try:
        parsed = parse_rates(rates)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rates") from None
    emit(
        _run_bench(
            "e2e",
            1.0,
            rates=parsed,
            step_s=step_s,
            confirm_s=confirm_s,
            outage=outage,
            outage_s=outage_s,
            ble=ble,
            boards=boards,
            baud=baud,
            commit_window_s=commit_window_s,
            workdir=workdir,
        ),
        as_json,
    )


@app.command("worklist")
def bench_worklist(
    as_json: JsonFlag = False,
    patients: Annotated[
        int, typer.Option("--patients", min=1, help="Enrolled patients (one hub each).")
    ] = 10_000,
    requests: Annotated[int, typer.Option("--requests", min=1, help="GETs per page.")] = 20,
) -> None:
    """Findings for N enrolled patients (judging every hub, one hub's batch) and the worklist
    page's response time at that size, over HTTP on loopback; peak RSS."""
    emit(_run_bench("worklist", 0.0, patients=patients, requests=requests), as_json)


@app.command("all")
def bench_all(
    as_json: JsonFlag = False,
    duration_s: DurationOption = 1.0,
) -> None:
    """Every benchmark that is available, one JSON object keyed by name."""
    results: dict[str, Any] = {}
    for name in BENCHMARKS:
        try:
            results[name] = _run_bench(name, duration_s)
        except ModuleNotFoundError as exc:
            results[name] = {"error": f"not available: {exc.name}"}
    emit(results, as_json)
