"""Firmware units on the MicroPython unix port: seeded fuzz of the board's frame reader and
message decoder, and the flash log surviving a torn write."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sensorlink_rig import (
    FIRMWARE,
    read_flash_log,
    run_micropython,
)

pytestmark = pytest.mark.micropython

FUZZ = """
import random, sys
from sensorfw import frame, proto
seed = int(sys.argv[1])
random.seed(seed)
r = frame.FrameReader()
good = frame.encode_frame(proto.cbor.encode({0: 6, 1: 7}))
n = 0
for i in range(300):
    junk = bytes(random.getrandbits(8) for _ in range(random.getrandbits(10)))
    for p in r.feed(junk):
        try:
            proto.decode(p)
        except ValueError:
            pass
    assert len(r._buf) <= frame.MAX_FRAME_BYTES
    got = r.feed(b"\\x00" + good)
    assert got and proto.decode(got[-1]) == (proto.PING, {"nonce": 7}), seed
    n += 1
print("OK", n, r.bad_frames)
"""

STORE = """
import sys
from sensorfw.store import Store
path = sys.argv[1]
s = Store(8, path); s.boot_id = 11; s.open()
for i in range(5):
    s.append(1, 0, 100 + i, 2000 + i, None)
s.ack(11, 1)          # readings 0 and 1 acknowledged
s.close()
t = Store(8, path); t.boot_id = 12; t.open()
print("held", t.count, [t.record(l)[1] for l in range(t.tail, t.head)])
for i in range(10):   # overflow: 3 + 10 > 8, the oldest are dropped and counted
    t.append(1, 0, 200 + i, 0, 5)
print("after", t.count, t.dropped, t.record(t.tail)[:2])
"""


def run_mpy(tmp_path: Path, source: str, *args: str) -> str:
    script = tmp_path / "script.py"
    script.write_text(source)
    return run_micropython(script, *args)


def test_board_frame_reader_survives_seeded_garbage(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    out = run_mpy(tmp_path, FUZZ, str(seed))
    assert out.startswith("OK 300"), f"seed {seed}: {out}"
    assert (FIRMWARE / "sensorfw" / "frame.py").exists()


def test_flash_log_keeps_unacked_readings_and_drops_a_torn_record(tmp_path: Path) -> None:
    log = tmp_path / "readings.log"
    out = run_mpy(tmp_path, STORE, str(log))
    assert out.splitlines()[0] == "held 3 [2, 3, 4]"
    assert out.splitlines()[1] == "after 8 5 (12, 2)"
    # a torn write: damage the newest record; it is ignored, the rest is kept
    records = read_flash_log(log)
    newest = max(records, key=lambda r: r.lsn)
    data = bytearray(log.read_bytes())
    data[(newest.lsn % 8) * 40 + 20] ^= 0xFF
    log.write_bytes(bytes(data))
    assert newest.lsn not in {r.lsn for r in read_flash_log(log)}
    reopen = STORE.split("for i in range(5)", maxsplit=1)[0] + "print(s.count, s.head)\n"
    out = run_mpy(tmp_path, reopen, str(log))
    assert out.split() == ["7", str(newest.lsn)]
