"""The ``narhub`` command line: what technicians run at the patient's home.

Every read command takes ``--json``; exit codes are in :mod:`gateway.cli._common`.
"""

from __future__ import annotations

from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import bench, ble, doctor, provision, region, rig, sensors, status
from gateway.cli._common import EXIT_FAILED, ConfigOption, JsonFlag, emit, load

app = typer.Typer(
    name="narhub",
    help="narhub: the home hub for remote patient care (BLE health devices, sensor boards, "
    "secure uplink to the region).",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Hub configuration.")
app.add_typer(config_app, name="config")
app.add_typer(bench.app, name="bench")
app.add_typer(sensors.app, name="sensors")
app.add_typer(provision.keys_app, name="keys")
app.add_typer(doctor.uplink_app, name="uplink")
app.add_typer(doctor.queue_app, name="queue")
app.add_typer(region.app, name="region")
app.add_typer(ble.ble_app, name="ble")
app.add_typer(ble.devices_app, name="devices")
app.command("init")(provision.init)
app.command("doctor")(doctor.doctor)
app.command("rig")(rig.rig)
app.command("status")(status.status)


@app.command()
def run(
    config: ConfigOption = None,
    shutdown_timeout_s: Annotated[
        float, typer.Option("--shutdown-timeout", help="Seconds allowed to flush on SIGTERM.")
    ] = 10.0,
    debug: Annotated[bool, typer.Option(help="Log at DEBUG (may include values).")] = False,
) -> None:
    """Run the hub (the systemd service): devices -> store -> region, until SIGTERM."""
    import argparse

    from gateway.entry import run_service_fast

    args = argparse.Namespace(config=config, shutdown_timeout=shutdown_timeout_s, debug=debug)
    if not run_service_fast(args):
        load(config, as_json=False)  # reports what is wrong with the configuration, exit 3


@app.command()
def version(as_json: JsonFlag = False) -> None:
    """Show the narhub version and the versions of its key libraries."""
    names = ["narhub", "bleak", "aiomqtt", "cbor2", "cwt", "cryptography", "pydantic"]
    result = {name: dist_version(name) for name in names}
    emit(result, as_json)


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="--skeleton: keep the rig's files here (default: temp).")
    ] = None,
    duration: Annotated[
        float, typer.Option("--duration", help="Seconds the compressed day in the home lasts.")
    ] = 45.0,
    out: Annotated[
        Path | None, typer.Option(help="Leave the ledger, FHIR NDJSON and summary.json here.")
    ] = None,
    skeleton: Annotated[
        bool, typer.Option(help="The walking skeleton only: one thermometer, narrated.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole product on the virtual rig: devices, boards, hub, TLS broker, region."""
    if skeleton:
        from gateway.demo import run_demo

        trace = run_demo(workdir)
        if len(trace.observations) != len(trace.sent):
            raise typer.Exit(EXIT_FAILED)
        return
    from gateway.rig.showcase import run_demo_day

    summary = run_demo_day(
        duration, out, as_json=as_json, emit_json=lambda data: emit(data, as_json=True)
    )
    if not summary.exact:
        raise typer.Exit(EXIT_FAILED)


@config_app.command("check")
def config_check(path: Path, as_json: JsonFlag = False) -> None:
    """Validate a hub configuration file; errors name the TOML key."""
    from gateway.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        emit({"ok": False, "path": str(path), "problems": exc.problems}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    emit({"ok": True, "path": str(path), "hub_id": config.hub_id}, as_json)


def main() -> None:
    """Console-script entry point."""
    app()
