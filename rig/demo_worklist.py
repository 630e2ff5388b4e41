"""The worklist next to the demo's home: findings judged live on the demo day's clock.

The demo compresses a day into ``duration`` seconds, so the findings are judged on **rig
time** (:class:`rig.findings_day.RigClock`: the local midnight plus the scenario's time):
the receiver's hook and a status watcher feed the engine with arrival times mapped to rig
time, and the engine judges every hub four times a real second. The worklist and the rig's
oauth2-proxy stand-in (:mod:`rig.login_proxy`) serve on loopback; the demo prints the
address (sign in with any e-mail address).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from drivers.mqtt import MqttError
from protocols.fhir.identity import PatientRef
from region.filing import Filing
from region.findings.engine import FindingsEngine
from region.findings.facts import HubStatus, Ingestion, StatusSeen, ingestion, patient_key
from region.findings.service import watch_status
from region.findings.sqlite_facts import plan_json
from region.receiver import RECEIVER_NAME
from region.worklist.app import create_app
from region.worklist.auth import AuthConfig, networks
from region.worklist.serve import running
from rig.findings_day import RigClock, _on_rig_time
from rig.home import VirtualHomeRig
from rig.login_proxy import login_proxy

#: What the demo's care team expects: the scale by 01:00 (its first weighing is at 01:30:
#: a missed measurement that closes), the board always on, the hub heard every hour. The
#: limits are loose for a compressed day: a real second of the demo is half an hour or more.
DEMO_PLAN: dict[str, Any] = {
    "zone": "Europe/Stockholm",
    "expect": [
        {"measure": "body-weight", "from": "00:00", "by": "01:00"},
        {"measure": "sensor-board", "max_gap": "PT2H"},
    ],
    "limits": {"hub_silent_after": "PT1H"},
}
_DAY_MS = 86_400_000
JUDGE_EVERY_S = 0.25


def _real_ms() -> int:
    return time.time_ns() // 1_000_000


class DemoFindings:
    """The findings of the demo day (the receiver's ``on_ingested`` before the day starts)."""

    def __init__(self, state: Path, patient: PatientRef, day0_ms: int, time_scale: float) -> None:
        self.state = state
        self.patient = patient
        self.day0_ms = day0_ms
        self.time_scale = time_scale
        self.clock: RigClock | None = None
        self.engine: FindingsEngine | None = None
        self._pending: list[Ingestion | StatusSeen] = []

    def filed(self, filing: Filing) -> None:
        """The receiver's hook: a filing, at its real arrival time."""
        readings = [(f.reading, f.patient) for f in filing.filed]
        self._take(ingestion(filing.hub, _real_ms(), readings, held=filing.held))

    def _take(self, event: Ingestion | StatusSeen) -> None:
        if self.clock is None or self.engine is None:
            self._pending.append(event)
            return
        mapped = _on_rig_time(event, self.clock)
        day_end = self.day0_ms + _DAY_MS - 1
        if mapped.received_ms > day_end:  # after the day (the demo winding down)
            mapped = replace(mapped, received_ms=day_end)
        if isinstance(mapped, StatusSeen):
            self.engine.status(mapped)
        else:
            self.engine.ingested(mapped)

    def start(self, started_ms: int) -> FindingsEngine:
        """The day began at ``started_ms`` (real): judge on its clock from now on."""
        clock = RigClock(started_ms, self.time_scale, self.day0_ms)
        self.clock = clock
        day_end = self.day0_ms + _DAY_MS - 1  # the demo's clock stops at the day's end
        engine = FindingsEngine.sqlite(
            self.state, clock_ms=lambda: min(clock.rig(_real_ms()), day_end)
        )
        engine.plans.set_plan(patient_key(self.patient), plan_json(DEMO_PLAN), self.day0_ms)
        self.engine = engine
        pending, self._pending = self._pending, []
        for event in pending:
            self._take(event)
        return engine

    async def watch(self, home: VirtualHomeRig) -> None:
        """Status documents to the engine, and a judgement every :data:`JUDGE_EVERY_S`."""
        assert home.broker is not None
        connect = home.broker.connector(RECEIVER_NAME, f"{RECEIVER_NAME}-status")

        async def judge() -> None:
            while True:
                if self.engine is not None:
                    self.engine.evaluate()
                await asyncio.sleep(JUDGE_EVERY_S)

        judging = asyncio.create_task(judge(), name="demo-findings-judge")
        try:

            def seen(status: HubStatus, retained: bool) -> None:
                self._take(StatusSeen(status, _real_ms(), retained))

            while True:
                try:
                    await watch_status(connect, seen)
                except (MqttError, OSError):
                    await asyncio.sleep(0.2)  # the broker restarting: connect again
        finally:
            judging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await judging

    def close(self) -> None:
        """Close the engine's stores."""
        if self.engine is not None:
            self.engine.close()


@contextlib.asynccontextmanager
async def serve_worklist(engine: FindingsEngine) -> AsyncIterator[str]:
    """The worklist behind the login stand-in on loopback; yields the address to open."""
    app = create_app(engine, AuthConfig("proxy", networks(["127.0.0.1"])), evaluate_every_s=None)
    async with (
        running(app, "127.0.0.1", 0) as upstream,
        running(login_proxy(upstream), "127.0.0.1", 0) as url,
    ):
        yield url + "/"
