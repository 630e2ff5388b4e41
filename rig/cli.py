"""The rig's command groups: ``narhub rig`` (the virtual home as its own process: emulated BLE
devices, sensor boards), ``narhub demo`` and ``narhub bench``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from common.cli import EXIT_CONFIG, EXIT_FAILED, JsonFlag, emit


def rig(
    scenario: Annotated[Path, typer.Option(help="The scenario (TOML): devices, boards, faults.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Where rig.json, the ledger and the boards' files go.")
    ],
    debug: Annotated[bool, typer.Option(help="Log at DEBUG (may include values).")] = False,
    ble_backend: Annotated[
        str,
        typer.Option(
            "--ble-backend",
            help="The hub's BLE backend: 'sim' (HCI over TCP) or 'bluez' (a virtual BlueZ "
            "on a private dbus-daemon).",
        ),
    ] = "sim",
    as_json: JsonFlag = False,
) -> None:
    """Run the virtual home until SIGTERM: point a hub at the HCI transport in DIR/rig.json.

    The hub's configuration takes ``ble.backend = "sim"``, ``ble.sim_transport`` from
    rig.json's ``hci`` and each board's port as ``serial:PATH``. With ``--ble-backend bluez``
    it takes ``ble.backend = "bluez"`` and runs with ``DBUS_SYSTEM_BUS_ADDRESS`` set to
    rig.json's ``dbus`` (the virtual BlueZ). DIR/ledger.jsonl gets one line per reading any
    device or board produced.
    """
    import asyncio
    import logging
    import os

    from common.logsetup import configure_logging
    from drivers.ble.sim.vbluez import BusUnavailableError
    from rig.scenario import ScenarioError, load_scenario
    from rig.sim_boards import RigError
    from rig.virtual import RIG_BLE_BACKENDS, run_home

    if ble_backend not in RIG_BLE_BACKENDS:
        problem = f"--ble-backend: one of {', '.join(RIG_BLE_BACKENDS)}"
        emit({"ok": False, "error": problem}, as_json)
        raise typer.Exit(EXIT_CONFIG)
    configure_logging(os.environ, level=logging.DEBUG if debug else logging.INFO)
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        emit({"ok": False, "scenario": str(scenario), "problems": exc.problems}, as_json)
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        home = asyncio.run(run_home(loaded, directory, ble_backend=ble_backend))
    except (RigError, BusUnavailableError) as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, **home.status()}, default=str))


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
        from rig.demo import run_demo

        trace = run_demo(workdir)
        if len(trace.observations) != len(trace.sent):
            raise typer.Exit(EXIT_FAILED)
        return
    from rig.showcase import run_demo_day

    summary = run_demo_day(
        duration, out, as_json=as_json, emit_json=lambda data: emit(data, as_json=True)
    )
    if not summary.exact:
        raise typer.Exit(EXIT_FAILED)


def register(root: typer.Typer) -> None:
    """Mount ``narhub rig``, ``narhub demo`` and ``narhub bench`` (entry point
    ``narhub.commands``: rig)."""
    from rig.cli_bench import app as bench_app

    root.command("rig")(rig)
    root.command("demo")(demo)
    root.add_typer(bench_app, name="bench")
