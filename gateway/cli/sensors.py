"""``narhub sensors ...``: the MicroPython sensor boards on USB serial."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli._common import EXIT_FAILED, JsonFlag, console, emit

app = typer.Typer(help="MicroPython sensor boards on USB serial.")


@app.command("list")
def sensors_list(as_json: JsonFlag = False) -> None:
    """Show the sensor boards found on USB (by VID/PID), with their serial numbers."""
    from gateway.sensors import list_boards

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

    from gateway.sensors import FlashError, flash_board, flash_plan

    if dry_run:
        steps = flash_plan(port, board or "rp2040")
        emit({"port": port, "steps": [step.label for step in steps]}, as_json)
        return
    try:
        with Progress(disable=as_json) as progress:
            task = progress.add_task("flashing", total=None)

            def on_step(done: int, total: int, label: str) -> None:
                progress.update(task, completed=done, total=total, description=label)

            labels = flash_board(port, board=board, progress=on_step)
    except FlashError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    emit({"ok": True, "port": port, "steps": labels}, as_json)
