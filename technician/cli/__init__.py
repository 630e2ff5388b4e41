"""The ``narhub`` command line: what technicians run at the patient's home.

Every read command takes ``--json``; exit codes are in :mod:`common.cli`. The other programs'
command groups (``narhub region``, ``narhub rig``, ``narhub demo``, ``narhub bench``) are not
imported from here: each program registers them under the ``narhub.commands`` entry-point
group (pyproject.toml), and they are mounted by name. A hub installed without the region or
rig extra still lists them, and says which extra to install when one is run.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, entry_points
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Annotated

import typer

from technician.cli import ble, consent, doctor, feedback, provision, sensors, status
from technician.cli._common import EXIT_FAILED, ConfigOption, JsonFlag, emit, load

app = typer.Typer(
    name="narhub",
    help="narhub: the home hub for remote patient care (BLE health devices, sensor boards, "
    "secure uplink to the region).",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Hub configuration.")
app.add_typer(config_app, name="config")
app.add_typer(sensors.app, name="sensors")
app.add_typer(provision.keys_app, name="keys")
app.add_typer(doctor.uplink_app, name="uplink")
app.add_typer(doctor.queue_app, name="queue")
app.add_typer(ble.ble_app, name="ble")
app.add_typer(ble.devices_app, name="devices")
app.add_typer(feedback.feedback_app, name="feedback")
app.add_typer(consent.app, name="consent")
app.command("init")(provision.init)
app.command("doctor")(doctor.doctor)
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
    from gateway.launch import run_service_fast

    if not run_service_fast(config, shutdown_timeout_s=shutdown_timeout_s, debug=debug):
        load(config, as_json=False)  # reports what is wrong with the configuration, exit 3


def _installed_version(name: str) -> str | None:
    """The installed version, None when a library is not installed (cwt: tests only)."""
    try:
        return dist_version(name)
    except PackageNotFoundError:
        return None


@app.command()
def version(as_json: JsonFlag = False) -> None:
    """Show the narhub version and the versions of its key libraries."""
    names = ["narhub", "bleak", "aiomqtt", "cbor2", "cwt", "cryptography", "pydantic"]
    result = {name: _installed_version(name) for name in names}
    emit(result, as_json)


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


#: The ``narhub.commands`` entry points that need an extra, and the extra they need.
_EXTRAS = {"region": "region", "rig": "sim"}


def _missing_extra(name: str, error: ImportError) -> typer.Typer:
    """A stand-in group for a program whose extra is not installed: it says what to install."""
    extra = _EXTRAS.get(name, name)
    group = typer.Typer(help=f"Not installed here: pip install 'narhub[{extra}]'.")

    @group.callback(invoke_without_command=True)
    def _explain() -> None:
        typer.echo(
            f"narhub {name}: needs the {extra!r} extra ({error.name or error}): "
            f"pip install 'narhub[{extra}]'",
            err=True,
        )
        raise typer.Exit(2)

    return group


def mount_programs(root: typer.Typer) -> None:
    """Mount the command groups other programs register under ``narhub.commands``."""
    for point in sorted(entry_points(group="narhub.commands"), key=lambda p: p.name):
        try:
            register = point.load()
        except ImportError as exc:
            root.add_typer(_missing_extra(point.name, exc), name=point.name)
            continue
        register(root)


mount_programs(app)


def main() -> None:
    """Console-script entry point."""
    app()
