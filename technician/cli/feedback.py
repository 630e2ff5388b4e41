"""``narhub feedback test``: show the patient every light pattern, screen and sentence."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from technician.cli._common import EXIT_FAILED, ConfigOption, JsonFlag, console, emit, load

feedback_app = typer.Typer(help="The patient's light, display and voice.")


@feedback_app.command("test")
def feedback_test(
    config: ConfigOption = None,
    as_json: JsonFlag = False,
    hold_s: Annotated[
        float, typer.Option("--hold", min=0.1, max=30, help="Seconds per steady pattern/screen.")
    ] = 2.0,
    frames: Annotated[
        Path | None,
        typer.Option("--frames", help="Also write the main screens as PNGs into this folder."),
    ] = None,
) -> None:
    """Play every light pattern, show every main screen, say every sentence once (stop the
    hub first: it holds the pins). Exit 1 when a configured output failed."""
    from technician.feedbacktest import run_test, write_frames

    hub = load(config, as_json)
    results = asyncio.run(run_test(hub.feedback, hold_s=hold_s))
    written: list[str] = []
    if frames is not None:
        font = hub.feedback.display.font_file if hub.feedback and hub.feedback.display else None
        from gateway.config import DisplayConfig

        font = font or DisplayConfig.model_fields["font_file"].default
        written = [str(p) for p in write_frames(frames, font, dt.datetime.now().astimezone())]
    ok = all(r.ok for r in results.values() if r.configured)
    if as_json:
        emit(
            {
                "ok": ok,
                "outputs": {name: r.to_json() for name, r in results.items()},
                "frames": written,
            },
            as_json=True,
        )
    else:
        out = console()
        if hub.feedback is None:
            out.print("no [feedback] section in the configuration: nothing to test")
        for name, r in results.items():
            if not r.configured:
                out.print(f"--   {name:<8} not configured", highlight=False)
                continue
            mark = "[green]ok  [/]" if r.ok else "[red]FAIL[/]"
            out.print(f"{mark} {name:<8} {', '.join(r.shown) or r.error}", highlight=False)
            if r.error and r.shown:
                out.print(f"     {'':<8} {r.error}", highlight=False)
            if r.hint:
                out.print(f"     {'':<8} -> {r.hint}", highlight=False)
        for path in written:
            out.print(f"frame: {path}", highlight=False)
    if not ok:
        raise typer.Exit(EXIT_FAILED)
