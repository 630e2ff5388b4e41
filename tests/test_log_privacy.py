"""No personal data at INFO and above: no MAC addresses, patient ids or measured values."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import pytest

from rig.broker import MosquittoBroker, RigPki
from rig.skeleton import THERMOMETER_ADDRESS, demo_measurements, run_skeleton

MAC = re.compile(r"(?i)\b[0-9a-f]{2}([:-][0-9a-f]{2}){5}\b")


async def test_whole_path_logs_nothing_personal_at_info(
    broker: MosquittoBroker, rig_pki: RigPki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    measurements = demo_measurements(dt.datetime(2026, 11, 22, 7, 5, 0))
    await run_skeleton(tmp_path, measurements, broker=broker, pki=rig_pki, timeout_s=60)
    values = {str(m.temperature.value) for m in measurements}
    at_info = [
        r
        for r in caplog.records
        if r.levelno >= logging.INFO and r.name.split(".")[0] in {"gateway", "drivers", "protocols"}
    ]
    assert at_info, "the run logged nothing at INFO: the check would be empty"
    for record in at_info:
        text = record.getMessage()
        assert not MAC.search(text), f"{record.name}: MAC address at {record.levelname}: {text}"
        assert not any(v in text for v in values), f"{record.name}: value logged: {text}"
    # Positive control: the run's DEBUG records do carry the device address, and the pattern
    # finds it there, so the INFO check above would catch it.
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(THERMOMETER_ADDRESS in text and MAC.search(text) for text in debug)
