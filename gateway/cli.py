"""The ``narhub`` command line: what technicians run on the hub (and the rig's entry points).

Every command that reports something has ``--json`` for scripts. Exit codes: 0 success,
1 the checked thing is wrong (e.g. an invalid config), 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from importlib import import_module
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    name="narhub",
    help="narhub: the home hub for remote patient care (BLE health devices, sensor boards, "
    "secure uplink to the region).",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks (JSON with --json): speed and memory (RSS).")
config_app = typer.Typer(help="Hub configuration.")
app.add_typer(bench_app, name="bench")
sensors_app = typer.Typer(help="MicroPython sensor boards on USB serial.")
app.add_typer(config_app, name="config")
app.add_typer(sensors_app, name="sensors")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]

#: Benchmark name -> module under gateway.bench exposing run(duration_s=...) -> dict.
BENCHMARKS = {
    "codecs": "gateway.bench.codecs",
    "serial": "gateway.bench.serial",
    "ble": "gateway.bench.ble",
    "wire": "gateway.bench.wire",
}


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        Console().print(result)


@app.command()
def version(as_json: JsonFlag = False) -> None:
    """Show the narhub version and the versions of its key libraries."""
    names = ["narhub", "bleak", "aiomqtt", "cbor2", "cwt", "cryptography", "pydantic"]
    result = {name: dist_version(name) for name in names}
    _emit(result, as_json)


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Keep the rig's files here (default: a temp dir).")
    ] = None,
) -> None:
    """Run the whole product on the virtual rig and show what flows."""
    from gateway.demo import run_demo

    trace = run_demo(workdir)
    if len(trace.observations) != len(trace.sent):
        raise typer.Exit(1)


@config_app.command("check")
def config_check(path: Path, as_json: JsonFlag = False) -> None:
    """Validate a hub configuration file; errors name the TOML key."""
    from gateway.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        _emit({"ok": False, "path": str(path), "problems": exc.problems}, as_json)
        raise typer.Exit(1) from None
    _emit({"ok": True, "path": str(path), "hub_id": config.hub_id}, as_json)


@sensors_app.command("list")
def sensors_list(as_json: JsonFlag = False) -> None:
    """Show the sensor boards found on USB (by VID/PID), with their serial numbers."""
    from gateway.sensors import list_boards

    boards = [b.to_json() for b in list_boards()]
    if as_json:
        _emit({"boards": boards}, as_json=True)
        return
    console = Console()
    if not boards:
        console.print("no sensor boards found: check the USB cable and `dmesg`")
        return
    for board in boards:
        console.print(board)


@sensors_app.command("flash")
def sensors_flash(
    port: str,
    board: Annotated[
        str | None, typer.Option(help="rp2040 or esp32 (default: detected from USB VID/PID).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the steps only.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Deploy the sensor firmware to the board on PORT with mpremote, with a progress bar."""
    from rich.progress import Progress

    from gateway.sensors import FlashError, flash_board, flash_plan

    if dry_run:
        steps = flash_plan(port, board or "rp2040")
        _emit({"port": port, "steps": [step.label for step in steps]}, as_json)
        return
    try:
        with Progress(disable=as_json) as progress:
            task = progress.add_task("flashing", total=None)

            def on_step(done: int, total: int, label: str) -> None:
                progress.update(task, completed=done, total=total, description=label)

            labels = flash_board(port, board=board, progress=on_step)
    except FlashError as exc:
        _emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(1) from None
    _emit({"ok": True, "port": port, "steps": labels}, as_json)


def _run_bench(name: str, duration_s: float, **options: Any) -> dict[str, Any]:
    module = import_module(BENCHMARKS[name])
    result: dict[str, Any] = module.run(duration_s=duration_s, **options)
    return result


@bench_app.command("codecs")
def bench_codecs(
    as_json: JsonFlag = False,
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds per case.")] = 1.0,
) -> None:
    """GATT codec decodes/s per characteristic and for a day's mix, with RSS."""
    _emit(_run_bench("codecs", duration_s), as_json)


@bench_app.command("serial")
def bench_serial(
    as_json: JsonFlag = False,
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds per case.")] = 1.0,
) -> None:
    """Sensor-link frames and readings decoded per second, firmware encode cost, RSS."""
    _emit(_run_bench("serial", duration_s), as_json)


@bench_app.command("ble")
def bench_ble(
    as_json: JsonFlag = False,
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds per case.")] = 1.0,
    soak_s: Annotated[
        float | None, typer.Option("--soak", help="Run ten devices this long; tasks and RSS.")
    ] = None,
) -> None:
    """Advertisement-to-first-measurement time and notifications/s on the emulated radio."""
    _emit(_run_bench("ble", duration_s, soak_s=soak_s), as_json)


@bench_app.command("wire")
def bench_wire(
    as_json: JsonFlag = False,
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds per case.")] = 1.0,
    input_path: Annotated[
        Path | None, typer.Option("--input", help="A day as JSONL, one reading per line.")
    ] = None,
) -> None:
    """Bytes per reading and encode/decode throughput of the uplink format vs JSON SenML."""
    _emit(_run_bench("wire", duration_s, input_path=input_path), as_json)


@bench_app.command("all")
def bench_all(
    as_json: JsonFlag = False,
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds per case.")] = 1.0,
) -> None:
    """Every benchmark that is available, one JSON object keyed by name."""
    results: dict[str, Any] = {}
    for name in BENCHMARKS:
        try:
            results[name] = _run_bench(name, duration_s)
        except ModuleNotFoundError as exc:
            results[name] = {"error": f"not available: {exc.name}"}
    _emit(results, as_json)


def main() -> None:
    """Console-script entry point."""
    app()
