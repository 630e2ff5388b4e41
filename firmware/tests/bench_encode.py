"""Firmware encode cost per reading (unix port): log a reading, build and frame READINGS.

    MICROPYPATH=.frozen:firmware micropython firmware/tests/bench_encode.py [N_FRAMES]

Prints one JSON object: microseconds per reading for store.append (RAM only) and for
READINGS encoding + COBS + CRC-32 with 16 readings per frame.
"""

import json
import sys
import time

from sensorfw import frame, proto
from sensorfw.store import Store

n_frames = int(sys.argv[1]) if len(sys.argv) > 1 else 200
per_frame = 16
store = Store(per_frame * 4, None)
store.boot_id = 0x4D791F87
t0 = time.ticks_us()
for i in range(per_frame * n_frames):
    store.append(1 + i % 6, 0, 3_600_000 + i * 50, 2150 + i % 100, 1_700_000_000_000 + i * 50)
    if store.count >= per_frame:
        store.tail = store.head  # as if acknowledged (no flash file in this bench)
t_append = time.ticks_diff(time.ticks_us(), t0)

for i in range(per_frame):
    store.append(1 + i % 6, 0, 3_600_000 + i * 50, 2150 + i, 1_700_000_000_000 + i * 50)
first = store.tail
size = 0
t0 = time.ticks_us()
for _ in range(n_frames):
    rows = []
    for lsn in range(first, first + per_frame):
        _b, _s, kind, index, mono, value, wall = store.record(lsn)
        rows.append([kind, index, mono, value, wall])
    boot, seq = store.boot_and_seq(first)
    wire = frame.encode_frame(proto.encode_readings(boot, seq, seq, rows))
    size = len(wire)
t_encode = time.ticks_diff(time.ticks_us(), t0)
print(
    json.dumps(
        {
            "append_us_per_reading": t_append / (per_frame * n_frames),
            "encode_us_per_reading": t_encode / (per_frame * n_frames),
            "frame_bytes": size,
            "readings_per_frame": per_frame,
        }
    )
)
