"""``narhub sensors ...``: the MicroPython sensor boards on USB serial."""

from __future__ import annotations

from typing import Annotated

import typer

from technician.cli._common import (
    EXIT_FAILED,
    ConfigOption,
    JsonFlag,
    config_path,
    console,
    emit,
    load,
    save,
)

app = typer.Typer(help="MicroPython sensor boards on USB serial.")


@app.command("list")
def sensors_list(as_json: JsonFlag = False) -> None:
    """Show the sensor boards found on USB (by VID/PID), with their serial numbers."""
    from gateway.board_admin import list_boards

    boards = [b.to_json() for b in list_boards()]
    if as_json:
        emit({"boards": boards}, as_json=True)
        return
    out = console()
    if not boards:
        out.print("no sensor boards found: check the USB cable and `dmesg`")
        return
    for board in boards:
        out.print(board)


@app.command("flash")
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

    from gateway.board_admin import FlashError, flash_board, flash_plan

    if dry_run:
        steps = flash_plan(port, board or "rp2040")
        emit({"port": port, "steps": [step.label for step in steps]}, as_json)
        return
    try:
        # A progress bar on a TTY only (a pipe or a script gets the result alone).
        with Progress(disable=as_json or not console().is_terminal) as progress:
            task = progress.add_task("flashing", total=None)

            def on_step(done: int, total: int, label: str) -> None:
                progress.update(task, completed=done, total=total, description=label)

            labels = flash_board(port, board=board, progress=on_step)
    except FlashError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    emit({"ok": True, "port": port, "steps": labels}, as_json)


@app.command("info")
def sensors_info(
    port: Annotated[
        str | None,
        typer.Argument(help="The board's port (default: the configured boards, else USB)."),
    ] = None,
    config: ConfigOption = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each board's answer.")
    ] = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Ask each board for its id, type, firmware, sampling intervals, boot and last frame.

    Stop narhub first: the port is opened exclusively. Readings the
    board sends meanwhile are not acknowledged: it keeps them for the hub.
    Exit 1 when a port is missing or busy, or no narhub firmware answers.
    """
    import asyncio

    from gateway.board_admin import SensorInfoError, list_boards, probe_board
    from gateway.config import ConfigError, load_config

    if port is not None:
        ports = [port]
    else:
        try:
            ports = [b.port for b in load_config(config_path(config)).sensors.boards]
        except ConfigError:
            ports = []
        ports = ports or [b.port for b in list_boards()]
    if not ports:
        emit(
            {
                "ok": False,
                "error": "no sensor boards configured or found on USB",
                "hint": "check the USB cable and `narhub sensors list`, or pass the port",
            },
            as_json,
        )
        raise typer.Exit(EXIT_FAILED)
    boards: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    for p in ports:
        try:
            boards.append(asyncio.run(probe_board(p, timeout_s=timeout_s)).to_json())
        except SensorInfoError as exc:
            errors.append(
                {"port": exc.port, "what": exc.what, "error": exc.reason, "hint": exc.hint}
            )
    ok = not errors
    if as_json:
        emit({"ok": ok, "boards": boards, "errors": errors}, as_json=True)
    else:
        _print_info(boards, errors)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def _print_info(boards: list[dict[str, object]], errors: list[dict[str, object]]) -> None:
    from rich.table import Table

    out = console()
    for info in boards:
        table = Table(title=f"sensor board on {info['port']}", title_justify="left")
        table.add_column("field")
        table.add_column("value")
        intervals = info["sampling_intervals_ms"]
        assert isinstance(intervals, dict)
        rows = {
            "board id": info["board_id"],
            "board type": info["board_type"] or "unknown (not a known USB board)",
            "firmware": f"{info['firmware']} (sensor link v{info['protocol_version']})",
            "sensors": ", ".join(info["sensors"]),  # type: ignore[arg-type]
            "sampling": ", ".join(f"{k} every {v / 1000:g} s" for k, v in intervals.items())
            or "not reported",
            "self-test failed": ", ".join(info["selftest_failed"]) or "none",  # type: ignore[arg-type]
            "boot id": info["boot_id"],
            "last frame": f"{info['last_frame_age_s']} s ago",
            "waiting on board": "-"
            if info["pending_readings"] is None
            else f"{info['pending_readings']} readings ({info['dropped_readings']} dropped)",
        }
        for key, value in rows.items():
            table.add_row(key, str(value))
        out.print(table)
    for err in errors:
        out.print(f"FAIL {err['port']}: {err['error']}\n     -> {err['hint']}", highlight=False)


@app.command("add")
def sensors_add(
    port: Annotated[str, typer.Argument(help="The board's port (/dev/ttyACM0, serial:...).")],
    config: ConfigOption = None,
    timeout_s: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the board's answer.")
    ] = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Check that the board on PORT answers (as `sensors info`), then add it to the hub's boards.

    A USB board is recorded by its serial number (serial:usb:SERIAL), so
    it is found again under another device name. Restart narhub to start
    collecting.
    """
    import asyncio

    from gateway.board_admin import SensorInfoError, probe_board, stable_port
    from gateway.config import BoardConfig

    hub = load(config, as_json)
    try:
        info = asyncio.run(probe_board(port, timeout_s=timeout_s))
    except SensorInfoError as exc:
        emit({"ok": False, "what": exc.what, "error": exc.reason, "hint": exc.hint}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    spec = stable_port(info.device, port)
    boards = [b for b in hub.sensors.boards if b.port != spec]
    boards.append(BoardConfig(port=spec))
    sensors = hub.sensors.model_copy(update={"boards": boards})
    save(hub.model_copy(update={"sensors": sensors}), config)
    emit(
        {
            "ok": True,
            "port": spec,
            "board_id": info.board_id,
            "firmware": info.firmware,
            "boards": len(boards),
            "note": "added to [sensors]; restart narhub to start collecting",
        },
        as_json,
    )
