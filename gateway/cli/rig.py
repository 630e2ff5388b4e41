"""``narhub rig``: the virtual home as its own process (emulated BLE devices, sensor boards)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli._common import EXIT_CONFIG, EXIT_FAILED, JsonFlag, emit


def rig(
    scenario: Annotated[Path, typer.Option(help="The scenario (TOML): devices, boards, faults.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Where rig.json, the ledger and the boards' files go.")
    ],
    debug: Annotated[bool, typer.Option(help="Log at DEBUG (may include values).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the virtual home until SIGTERM: point a hub at the HCI transport in DIR/rig.json.

    The hub's configuration takes ``ble.backend = "sim"``, ``ble.sim_transport`` from
    rig.json's ``hci`` and each board's port as ``serial:PATH``. DIR/ledger.jsonl gets one
    line per reading any device or board produced.
    """
    import asyncio
    import logging
    import os

    from gateway.logsetup import configure_logging
    from gateway.rig.boards import RigError
    from gateway.rig.scenario import ScenarioError, load_scenario
    from gateway.rig.virtual import run_home

    configure_logging(os.environ, level=logging.DEBUG if debug else logging.INFO)
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        emit({"ok": False, "scenario": str(scenario), "problems": exc.problems}, as_json)
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        home = asyncio.run(run_home(loaded, directory))
    except RigError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, **home.status()}, default=str))
