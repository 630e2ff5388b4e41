"""The full demo (``narhub demo``): a compressed day in a virtual home, end to end.

The virtual rig (``narhub rig``: every device kind and a sensor board), a local TLS broker,
the hub (``narhub run``) and the region's receiver run as in :mod:`rig.home`. While it
runs, a live view (rich ``Live``, only on a TTY) shows per device kind what was produced and
what reached the region as FHIR; at the end a summary says, per kind, produced, delivered and
any difference explained. With ``out``, the ledger, the FHIR NDJSON and ``summary.json`` are
left there.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rig.home import VirtualHomeRig
from rig.ledger import Reconciliation, reconcile

#: The demo home; ``{time_scale}`` makes its day last the demo's duration.
DEMO_SCENARIO = """\
name = "demo-day"
seed = 2026
time_scale = {time_scale}

[[devices]]
kind = "thermometer"
address = "C0:FF:EE:00:0D:01"
first_s = 1800
every_s = 14400
count = 5

[[devices]]
kind = "blood_pressure"
address = "C0:FF:EE:00:0D:02"
first_s = 3600
every_s = 28800
count = 3

[[devices]]
kind = "scale"
address = "C0:FF:EE:00:0D:03"
first_s = 5400
every_s = 43200
count = 2

[[devices]]
kind = "pulse_oximeter"
address = "C0:FF:EE:00:0D:04"
first_s = 900
every_s = 10800
count = 7

[[devices]]
kind = "glucose"
address = "C0:FF:EE:00:0D:05"
first_s = 2700
every_s = 21600
count = 4

[[boards]]
board_id = "sim-demo-01"
interval_ms = 1000
"""
DAY_S = 86_400.0


@dataclass
class DemoSummary:
    """What the demo shows at the end (and writes as ``summary.json``)."""

    duration_s: float
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    exact: bool = False
    explanation: str = ""
    out: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON."""
        return {
            "ok": self.exact,
            "duration_s": self.duration_s,
            "kinds": self.kinds,
            "explanation": self.explanation,
            "out": self.out,
        }


def _summary(result: Reconciliation, produced: Counter[str], duration_s: float) -> DemoSummary:
    """Per kind: everything produced (the final ledger), delivered, and the difference split
    into readings lost (produced before the last check and absent) and readings in flight
    (taken after the last check, a board keeps sampling)."""
    summary = DemoSummary(duration_s, exact=result.exact, explanation=result.explain())
    for kind in sorted(set(produced) | set(result.delivered)):
        missing = sum(1 for e in result.missing if e.kind == kind)
        delivered = result.delivered[kind]
        summary.kinds[kind] = {
            "produced": produced[kind],
            "delivered": delivered,
            "missing": missing,
            "in_flight": max(0, produced[kind] - delivered - missing),
        }
    return summary


def _table(home: VirtualHomeRig, title: str) -> Table:
    ledger = home.ledger()
    result = reconcile(ledger, home.fhir(), settled=ledger)
    table = Table(title=title)
    for column in ("device kind", "produced", "at the region", "in flight"):
        table.add_column(column, justify="right" if column != "device kind" else "left")
    for kind in sorted(set(result.produced) | set(result.delivered)):
        produced, delivered = result.produced[kind], result.delivered[kind]
        table.add_row(kind, str(produced), str(delivered), str(max(0, produced - delivered)))
    hub = "running" if home.hub.running else "stopped"
    router = home.router
    uplink = "offline" if router is None or not router.is_online else "online"
    table.caption = f"hub {hub} · home internet {uplink} · broker TLS 1.3 :{home.broker_port}"
    return table


async def run_showcase(
    duration_s: float,
    workdir: Path,
    *,
    live: bool,
    console: Console,
    settle_s: float = 30.0,
) -> DemoSummary:
    """Play a day in ``duration_s`` seconds and return the per-kind summary."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = workdir / "demo-scenario.toml"
    scenario.write_text(DEMO_SCENARIO.format(time_scale=DAY_S / max(duration_s, 5.0)))
    async with VirtualHomeRig(workdir / "home", scenario) as home:
        title = "narhub demo: a day in the home"
        wait = asyncio.ensure_future(home.wait_rig_done(timeout_s=duration_s * 2 + 30))
        if live:
            with Live(_table(home, title), console=console, refresh_per_second=4) as view:
                while not wait.done():
                    await asyncio.wait({wait}, timeout=0.5)
                    view.update(_table(home, title))
                await wait
                settled = home.ledger()
                await home.wait_delivered(settle_s, check=False)
                view.update(_table(home, title))
        else:
            await wait
            settled = home.ledger()
            await home.wait_delivered(settle_s, check=False)
        # The final account: nothing arrives once the hub is stopped, and the stopped rig
        # has read the boards' last readings into the ledger. What the schedule produced
        # (``settled``) must be there; later board readings may still be on the way.
        await home.stop_hub()
        await home.stop_rig()
        for source, name in (
            (home.fhir_path, "observations.ndjson"),
            (home.ledger_path, "ledger.jsonl"),
        ):
            if source.exists():
                shutil.copy(source, workdir / name)
            else:  # nothing reached the region (or nothing was produced): an empty file
                (workdir / name).write_text("")
        ledger = home.ledger()
        result = reconcile(ledger, home.fhir(), settled=settled)
        produced = Counter(e.kind for e in ledger)
    summary = _summary(result, produced, duration_s)
    summary.out = str(workdir)
    (workdir / "summary.json").write_text(json.dumps(summary.to_json(), indent=2))
    return summary


def print_summary(console: Console, summary: DemoSummary) -> None:
    """The end-of-demo table."""
    table = Table(title="produced in the home vs. FHIR Observations at the region")
    for column in ("device kind", "produced", "delivered", "difference"):
        table.add_column(column)
    for kind, row in summary.kinds.items():
        reasons = []
        if row["missing"]:
            reasons.append(f"{row['missing']} lost")
        if row["in_flight"]:
            reasons.append(f"{row['in_flight']} taken in the last second, still on the way")
        why = "; ".join(reasons) or "none"
        table.add_row(kind, str(row["produced"]), str(row["delivered"]), why)
    console.print(table)
    console.print(summary.explanation)
    if summary.out:
        console.print(f"ledger, FHIR NDJSON and summary.json in {summary.out}")


def run_demo_day(
    duration_s: float,
    out: Path | None,
    *,
    as_json: bool,
    emit_json: Callable[[dict[str, Any]], None],
) -> DemoSummary:
    """``narhub demo --duration S [--out DIR] [--json]``."""
    console = Console()
    workdir = out or Path(tempfile.mkdtemp(prefix="narhub-demo-"))
    live = console.is_terminal and not as_json
    if not as_json:
        console.rule("narhub demo: devices and a sensor board -> hub -> TLS broker -> FHIR")
    summary = asyncio.run(run_showcase(duration_s, workdir, live=live, console=console))
    if as_json:
        emit_json(summary.to_json())
    else:
        print_summary(console, summary)
    return summary
