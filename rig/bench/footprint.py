"""Footprint of the service (``narhub bench footprint --json``): memory, CPU, disk, start-up.

``narhub run`` is started as its own process, as systemd starts it, against a local Mosquitto
with mutual TLS (:class:`rig.broker.MosquittoBroker`) and a region subscriber in this
process that verifies every batch. Its only source is a *replay board*: this process owns a
pty, speaks the board end of the sensor link (docs/protocols/sensor-link.md) and sends the
readings of the reference day (:func:`rig.refday.reference_day`) at ``speed`` times real
time; the hub acknowledges each reading after its commit, as with a real board.

So that the replay costs the hub what the real day costs it, the hub's time-based settings are
divided by ``speed``: the group-commit window (1 s of day time per commit, as on the Pi) and
the batching deadlines (10 s and 300 s of day time). Per-day figures are then the slice's
figures times 24 h / slice hours.

Figures, all of the hub process only (``/proc/PID/...``):

- **start-up**: process start to ``READY=1`` on its ``$NOTIFY_SOCKET``, and to the first
  reading accepted (the board's first ACK: the reading is committed). Target < 2 s;
- **RSS idle** (``VmRSS`` after start-up, a single reading stored, nothing else for
  ``duration_s``) and **under load** (the largest ``VmRSS`` sampled each second during the
  replay, and ``VmHWM`` at the end). Target <= 60 MB;
- **CPU seconds per hour of reference day** (``utime + stime`` of ``/proc/PID/stat`` over the
  replay, divided by the day hours replayed);
- **bytes written per day** (``write_bytes`` of ``/proc/PID/io`` over the replay, scaled to
  24 h): what the kernel sends to the SD card for this process (page-granular).

Every replayed reading must reach the subscriber (checked: ``delivered``), else the figures
are of a hub that did not do its job.

The hub runs in the unit's environment (deploy/systemd/narhub.service ``Environment=``, not
the calling shell's ``PYTHON*`` and ``MALLOC_*`` settings) with its modules compiled to bytecode,
as an installed hub is (:func:`hub_environment`).

Differences from a Pi in the field, stated in the output: every reading arrives through the
sensor link (board readings carry an idempotency key, BLE notifications do not: more bytes per
reading in ``source_keys``), no BLE device is configured (bleak is imported, but no D-Bus
connection or BLE session exists), and there is no ``[remote]`` section (remote management,
with ``cryptography.x509``, is not loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
import tty
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from common.pki import public_key_pem
from common.signing import PemBatchVerifier
from drivers.mqtt import MqttError, MqttLink, TlsFiles
from gateway.activity import RUNTIME_DIRECTORY_ENV
from gateway.config import BoardConfig, FeedbackConfig, render_config
from protocols.sensorlink import (
    ReadingRow,
)
from region.broker_config import RECEIVER_USER
from rig.bench.feedbackcost import added_by_feedback, cycle_cost, feedback_config
from rig.bench.pipeline import fs_type, proc_write_bytes
from rig.bench.procstat import proc_cpu_s, proc_status_kib
from rig.bench.replay import ReplayBoard, ReplayError
from rig.bench.waits import wait_until
from rig.broker import MosquittoBroker, RigPki
from rig.refday import DAY_MS, DEFAULT_START_MS, HOUR_MS, DayReading, reference_day
from technician.provision import init_hub

TARGET_RSS_MB = 60.0
TARGET_STARTUP_S = 2.0
DEFAULT_SPEED = 10.0
#: The default slice: from 22:00 (the day starts at 06:00), when the night's oximetry starts:
#: the day's longest steady load.
DEFAULT_START_HOUR = 16.0
DEFAULT_HOURS = 1.0
HUB_ID = "hub-footprint"
_KIND_EXPONENT = -2  # kind 1 (air temperature): value x 10**-2 Cel
_STARTUP_TIMEOUT_S = 30.0
#: With --feedback: the idle figure starts this long after the first reading is accepted (the
#: outputs open in threads after READY=1; their one-time cost is reported apart).
SETTLE_S = 5.0
_DRAIN_TIMEOUT_S = 120.0


#: What deploy/systemd/narhub.service puts in the service's environment: all its
#: ``Environment=`` lines (tests/test_footprint_imports.py checks both ways).
UNIT_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "MALLOC_ARENA_MAX": "1"}
#: The service's imports, compiled to bytecode before the hub starts (see
#: :func:`hub_environment`).
#: Where the hub's runtime directory goes (systemd's /run is a tmpfs; so is /dev/shm).
_RUNTIME_PARENT = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 - tmpfs
_WARM_UP = (
    "import encodings.idna, gateway.config, technician.entry, common.logsetup, gateway.service"
)


class FootprintError(RuntimeError):
    """The benchmark could not measure (the hub failed, the broker did not start ...)."""


def hub_environment(inherited: Mapping[str, str], pycache: Path) -> dict[str, str]:
    """The hub's environment: the unit's, not this shell's Python and malloc settings.

    systemd starts the service with the unit's ``Environment=`` only, so ``PYTHON*`` and
    ``MALLOC_*`` variables of the calling shell are dropped (``PYTHONDONTWRITEBYTECODE``, for
    one, would make the hub compile every module of its own at each start). An installed
    narhub has its bytecode (pip compiles it at install): here it is compiled once into
    ``pycache`` (``PYTHONPYCACHEPREFIX``, so the source tree stays clean) before the hub
    starts, and the start-up and RSS figures are those of a hub that loads it.
    """
    env = {k: v for k, v in inherited.items() if not k.startswith(("PYTHON", "MALLOC_"))}
    env.update(UNIT_ENVIRONMENT)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _board_reading(stream_no: int, t0_ms: int, r: DayReading) -> ReadingRow:
    """A day reading as a board reading: one sensor (kind, index) per stream of the day."""
    kind = 1 + stream_no // 256
    value = r.value if r.value is not None else Decimal(0)
    return ReadingRow(kind, stream_no % 256, r.t_ms - t0_ms, int(value.scaleb(-_KIND_EXPONENT)))


@dataclass
class _Region:
    """A region subscriber: verifies every batch and counts unique readings."""

    def __init__(self, broker: MosquittoBroker, pki: RigPki, hub_key_pem: bytes) -> None:
        identity = pki.client(RECEIVER_USER)
        self._link = MqttLink(
            broker.host,
            broker.port,
            client_id=RECEIVER_USER,
            tls=TlsFiles(pki.ca_file, identity.cert_file, identity.key_file, "1.3"),
        )
        self._verifier = PemBatchVerifier({HUB_ID: public_key_pem(hub_key_pem)})
        self.readings = 0
        self.batches = 0
        self._seen: set[tuple[str, int]] = set()
        self.changed = asyncio.Event()

    async def run(self, subscribed: asyncio.Event) -> None:
        async with self._link as link:
            await link.subscribe(f"narhub/v1/{HUB_ID}/up/+")
            subscribed.set()
            async for message in link.messages():
                batch = self._verifier.verify(message.payload)
                key = (batch.header.boot_id, batch.header.seq)
                if key in self._seen:
                    continue
                self._seen.add(key)
                self.batches += 1
                self.readings += len(batch.readings)
                self.changed.set()

    async def wait_for(self, readings: int, timeout_s: float) -> None:
        if not await wait_until(lambda: self.readings >= readings, self.changed, timeout_s):
            raise FootprintError(f"the region received {self.readings} of {readings}")


#: ``--field``: the reference day's BLE devices (kind, a made-up address), paired as in the
#: field (the BlueZ backend: on this machine, without BlueZ, the central cannot reach them).
FIELD_DEVICES = (
    ("blood_pressure", "C0:FF:EE:00:0F:01"),
    ("scale", "C0:FF:EE:00:0F:02"),
    ("thermometer", "C0:FF:EE:00:0F:03"),
    ("pulse_oximeter", "C0:FF:EE:00:0F:04"),
    ("glucose", "C0:FF:EE:00:0F:05"),
    ("heart_rate", "C0:FF:EE:00:0F:06"),
)


def _hub_config(
    directory: Path,
    broker: MosquittoBroker,
    pki: RigPki,
    port: str,
    speed: float,
    *,
    field: bool = False,
    feedback: FeedbackConfig | None = None,
) -> tuple[Path, bytes]:
    identity = pki.client(HUB_ID)
    path = directory / "narhub.toml"
    command_key = None
    if field:  # remote management on, with a region command key pinned
        from region.command_sender import RegionCommandKey  # noqa: PLC0415 - bench only

        command_key = RegionCommandKey.init(directory / "region-command", kid="bench-cmd-1")
    config = init_hub(
        path,
        hub_id=HUB_ID,
        broker_url=f"mqtts://127.0.0.1:{broker.port}",
        ca_file=pki.ca_file,
        patient_pseudonym=None,
        data_dir=directory / "data",
        ble_backend="bluez",
        command_key=None if command_key is None else command_key.public_file,
        command_kid="bench-cmd-1",
    )
    if field:
        from technician.pairing import with_device  # noqa: PLC0415 - bench only

        for kind, address in FIELD_DEVICES:
            config = with_device(config, address, kind)
    batching = config.batching
    config = config.model_copy(
        update={
            "uplink": config.uplink.model_copy(
                update={"cert_file": identity.cert_file, "key_file": identity.key_file}
            ),
            "sensors": config.sensors.model_copy(
                update={"boards": [BoardConfig(port=f"serial:{port}")]}
            ),
            # Day time runs `speed` times faster: so do the windows and deadlines.
            "store": config.store.model_copy(
                update={
                    "commit_window_s": config.store.commit_window_s / speed,
                    "continuous_commit_window_s": (
                        config.store.continuous_commit_window_s or config.store.commit_window_s
                    )
                    / speed,
                }
            ),
            "batching": batching.model_copy(
                update={
                    "clinical_s": batching.clinical_s / speed,
                    "continuous_s": batching.continuous_s / speed,
                    "environmental_s": batching.environmental_s / speed,
                    "telemetry_s": batching.telemetry_s / speed,
                }
            ),
            # This machine's kernel may say "unsynchronised" while its clock is right.
            "clock": config.clock.model_copy(update={"require_sync": False}),
            "feedback": feedback,
        }
    )
    path.write_text(render_config(config))
    from gateway.config import load_config  # noqa: PLC0415 - validate what we wrote

    load_config(path)
    return path, identity.key_file.read_bytes()


class HubProcess:
    """``narhub run`` as a child process, with the sd_notify socket systemd would own."""

    def __init__(self, directory: Path, config_path: Path) -> None:
        self._directory = directory
        self._runtime: Path | None = None
        self._config_path = config_path
        self._notify_path = str(directory / "notify")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(self._notify_path)
        self._notify.setblocking(False)
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.ready_at: float | None = None

    def _on_notify(self) -> None:
        with contextlib.suppress(BlockingIOError):
            if b"READY=1" in self._notify.recv(4096) and self.ready_at is None:
                self.ready_at = time.monotonic()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def runtime_dir(self) -> Path | None:
        """The hub's runtime directory (``$RUNTIME_DIRECTORY``, its activity file), once started."""
        return self._runtime

    async def start(self) -> None:
        env = hub_environment(os.environ, self._directory / "pycache")
        warm_up = await asyncio.create_subprocess_exec(sys.executable, "-c", _WARM_UP, env=env)
        if await warm_up.wait() != 0:
            raise FootprintError(f"compiling the service's modules failed: {_WARM_UP}")
        asyncio.get_running_loop().add_reader(self._notify.fileno(), self._on_notify)
        env |= {"NOTIFY_SOCKET": self._notify_path, "WATCHDOG_USEC": "2000000"}
        # RuntimeDirectory=narhub: systemd gives the service a directory in /run (tmpfs) for
        # its activity file; /dev/shm is this machine's tmpfs (gateway/activity.py).
        runtime = Path(tempfile.mkdtemp(prefix="narhub-run-", dir=_RUNTIME_PARENT))
        self._runtime = runtime
        env[RUNTIME_DIRECTORY_ENV] = str(runtime)
        env.pop("WATCHDOG_PID", None)
        with (self._directory / "hub.stderr").open("wb") as stderr:
            self.started = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from technician.entry import main; main()",
                "run",
                "--config",
                str(self._config_path),
                env=env,
                stderr=stderr,
            )

    async def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 30)

    async def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self._notify.fileno())
        self._notify.close()
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._runtime is not None:  # systemd removes it when the service stops
            shutil.rmtree(self._runtime, ignore_errors=True)

    def stderr_tail(self) -> str:
        text = (self._directory / "hub.stderr").read_text(errors="replace")
        return "\n".join(text.splitlines()[-15:])


def _rows(day: Sequence[DayReading]) -> list[ReadingRow]:
    t0_ms = day[0].t_ms
    streams: dict[tuple[str, str, int, str], int] = {}
    return [
        _board_reading(
            streams.setdefault((r.stream, r.device, r.mdc_code, r.unit), len(streams)), t0_ms, r
        )
        for r in day
    ]


async def _startup(hub: HubProcess, replay: ReplayBoard, first: ReadingRow) -> dict[str, Any]:
    """Process start to READY and to the first reading accepted (committed, ACKed)."""
    await hub.start()
    try:
        await asyncio.wait_for(replay.linked.wait(), _STARTUP_TIMEOUT_S)
        replay.send([first])
        await replay.wait_acked(1, _STARTUP_TIMEOUT_S)
    except (TimeoutError, FootprintError, ReplayError) as exc:
        raise FootprintError(f"hub did not start: {exc}\n{hub.stderr_tail()}") from exc
    if hub.ready_at is None or replay.first_ack_at is None:
        raise FootprintError(f"no READY=1 from the hub\n{hub.stderr_tail()}")
    first_s = replay.first_ack_at - hub.started
    return {
        "ready_s": round(hub.ready_at - hub.started, 3),
        "first_reading_accepted_s": round(first_s, 3),
        "target_s": TARGET_STARTUP_S,
        "target_met": first_s < TARGET_STARTUP_S,
    }


async def _load(
    pid: int, replay: ReplayBoard, region: _Region, rows: Sequence[ReadingRow], hours: float
) -> dict[str, Any]:
    """The slice at speed; figures from the hub's /proc files."""
    rss_samples: list[int] = []
    cpu0, written0 = proc_cpu_s(pid), proc_write_bytes(pid)
    started = time.monotonic()
    await replay.play(rows, lambda: rss_samples.append(proc_status_kib(pid)["VmRSS"]))
    await replay.wait_acked(len(rows) + 1, _DRAIN_TIMEOUT_S)
    await region.wait_for(len(rows) + 1, _DRAIN_TIMEOUT_S)
    real_s = time.monotonic() - started
    cpu1, written1 = proc_cpu_s(pid), proc_write_bytes(pid)
    end = proc_status_kib(pid)
    rss_samples.append(end["VmRSS"])
    written = None if written0 is None or written1 is None else written1 - written0
    n = len(rows) + 1
    return {
        "rss_kib": {
            "max": max(rss_samples),
            "end": end["VmRSS"],
            "hwm": end["VmHWM"],
            "end_anon": end["RssAnon"],
        },
        "cpu": {
            "seconds_per_day_hour": round((cpu1 - cpu0) / hours, 2),
            "seconds_replay": round(cpu1 - cpu0, 2),
        },
        "disk": {
            "bytes_written_replay": written,
            "bytes_per_day": None if written is None else round(written * 24 / hours),
            "bytes_per_reading": None if written is None else round(written / n, 1),
        },
        "real_s": round(real_s, 1),
    }


async def _measure(
    directory: Path,
    day: Sequence[DayReading],
    *,
    speed: float,
    idle_s: float,
    field: bool,
    feedback: frozenset[str] = frozenset(),
    settle_s: float = 0.0,
) -> dict[str, Any]:
    pki = RigPki.create(directory / "pki")
    broker = MosquittoBroker(pki, directory / "broker")
    broker.start()
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    replay = ReplayBoard(speed, master)
    loop.add_reader(master, replay.on_readable)
    frames = Path(tempfile.mkdtemp(prefix="narhub-fb-", dir=_RUNTIME_PARENT))
    config_path, key_pem = _hub_config(
        directory,
        broker,
        pki,
        os.ttyname(slave),
        speed,
        field=field,
        feedback=feedback_config(frames, feedback) if feedback else None,
    )
    hub = HubProcess(directory, config_path)
    region = _Region(broker, pki, key_pem)
    subscribed = asyncio.Event()
    region_task = asyncio.create_task(region.run(subscribed), name="footprint-region")
    hours = max((day[-1].t_ms - day[0].t_ms) / HOUR_MS, 1 / 60)
    try:
        await asyncio.wait_for(subscribed.wait(), 20)
        rows = _rows(day)
        startup = await _startup(hub, replay, rows[0])
        cpu_startup = proc_cpu_s(hub.pid)
        await asyncio.sleep(settle_s)  # outputs opened off the start-up path finish first
        cpu_settle = proc_cpu_s(hub.pid) - cpu_startup
        cpu_idle = proc_cpu_s(hub.pid)
        await asyncio.sleep(idle_s)  # idle: nothing arrives, the hub's own timers only
        idle = proc_status_kib(hub.pid)
        cpu_idle = proc_cpu_s(hub.pid) - cpu_idle
        load = await _load(hub.pid, replay, region, rows[1:], hours)
        exit_code = await hub.stop()
    finally:
        loop.remove_reader(master)
        await hub.close()
        region_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, MqttError):
            await region_task
        os.close(master)
        os.close(slave)
        broker.stop()
        shutil.rmtree(frames, ignore_errors=True)
    rss = load.pop("rss_kib")
    return {
        "startup": startup,
        "rss_mib": {
            "idle": round(idle["VmRSS"] / 1024, 1),
            # Of which private (heap, Python objects) and file-backed (code, shared libraries).
            "idle_anon": round(idle["RssAnon"] / 1024, 1),
            "idle_file": round(idle["RssFile"] / 1024, 1),
            "under_load_max": round(rss["max"] / 1024, 1),
            "under_load_end": round(rss["end"] / 1024, 1),
            "under_load_end_anon": round(rss["end_anon"] / 1024, 1),
            "hwm": round(rss["hwm"] / 1024, 1),
            "target_mb": TARGET_RSS_MB,  # 60 MB = 57.2 MiB
            "target_met": rss["hwm"] * 1024 <= TARGET_RSS_MB * 1_000_000,
        },
        "cpu": {
            **load["cpu"],
            "idle_seconds_per_real_hour": round(cpu_idle / idle_s * 3600, 1),
            "startup_seconds": round(cpu_startup, 2),
            "settle_seconds": round(cpu_settle, 2),
            "settle_s": settle_s,
        },
        "disk": {**load["disk"], "filesystem": fs_type(directory)},
        "replay": {
            "readings": len(day),
            "day_hours": round(hours, 3),
            "speed": speed,
            "real_s": load["real_s"],
            "delivered": region.readings,
            "batches": region.batches,
        },
        "hub_exit_code": exit_code,
    }


def day_slice(
    start_hour: float, hours: float, *, cgm_interval_min: int | None = None
) -> tuple[DayReading, ...]:
    """The reference day's readings from ``start_hour`` (hours after 06:00) for ``hours``;
    with a CGM's records every ``cgm_interval_min`` minutes when given."""
    t0 = DEFAULT_START_MS + round(start_hour * HOUR_MS)
    t1 = t0 + round(hours * HOUR_MS)
    day = (
        reference_day()
        if cgm_interval_min is None
        else reference_day(cgm=True, cgm_interval_min=cgm_interval_min)
    )
    return tuple(r for r in day if t0 <= r.t_ms < t1)


def run(
    *,
    duration_s: float = 5.0,
    speed: float = DEFAULT_SPEED,
    start_hour: float = DEFAULT_START_HOUR,
    hours: float = DEFAULT_HOURS,
    whole_day: bool = False,
    field: bool = False,
    cgm_interval_min: int | None = None,
    feedback: str = "off",
    feedback_outputs: str = "light,button,display,voice",
) -> dict[str, object]:
    """Measure; ``duration_s``: how long the hub is left idle for the idle figure.

    ``field``: configure the hub as in a home: the reference day's six BLE devices (BlueZ
    backend) and remote management with a pinned region command key. ``feedback``: ``on``
    runs the hub with every feedback output (:mod:`rig.bench.feedbackcost`), ``both`` runs
    it without and with and reports what the feedback adds."""
    if feedback not in {"off", "on", "both"}:
        raise ValueError(f"feedback must be off, on or both, not {feedback!r}")
    if duration_s <= 0 or speed <= 0 or hours <= 0:
        raise ValueError("duration, speed and hours must be positive")
    if whole_day:
        start_hour, hours = 0.0, DAY_MS / HOUR_MS
    day = day_slice(start_hour, hours, cgm_interval_min=cgm_interval_min)
    if not day:
        raise ValueError(f"no reference-day readings from hour {start_hour} for {hours} h")
    outputs = frozenset(o.strip() for o in feedback_outputs.split(",") if o.strip())
    runs = {"off": [frozenset[str]()], "on": [outputs], "both": [frozenset(), outputs]}[feedback]
    measured = []
    for with_feedback in runs:
        with tempfile.TemporaryDirectory(prefix="nh-fp-", dir="/tmp") as tmp:
            measured.append(
                asyncio.run(
                    _measure(
                        Path(tmp),
                        day,
                        speed=speed,
                        idle_s=duration_s,
                        field=field,
                        feedback=with_feedback,
                        # Both runs alike: the idle figure after what starts off the path.
                        settle_s=0.0 if feedback == "off" else SETTLE_S,
                    )
                )
            )
    figures = measured[-1]
    extra: dict[str, Any] = {}
    if feedback != "off":
        extra["feedback"] = {"outputs": sorted(outputs), "cycle": cycle_cost()}
    if feedback == "both":
        extra["feedback"]["without"] = measured[0]
        extra["feedback"]["added"] = added_by_feedback(measured[0], measured[1])
    return {
        "benchmark": "footprint",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "slice": {
            "start_hour_after_06": start_hour,
            "hours": hours,
            "whole_day": whole_day,
            "cgm_interval_min": cgm_interval_min,
        },
        "field_configuration": field,
        "feedback_configuration": feedback != "off",
        **figures,
        **extra,
        "notes": [
            "readings arrive through the sensor link (a replay board on a pty): each carries an "
            "idempotency key, BLE notifications do not",
            *(
                [
                    "six BLE devices paired (BlueZ backend): this machine has no BlueZ, so the "
                    "central's D-Bus connection fails and is retried; no BLE session exists",
                    "[remote] on with a pinned region command key: the hub subscribes to its "
                    "command topic",
                ]
                if field
                else [
                    "no BLE device configured: bleak is imported, no D-Bus connection is made",
                    "no [remote] section: remote management is not loaded (--field: both)",
                ]
            ),
            "the hub runs with the unit's Environment= only and compiled bytecode, as installed",
            "the activity file is in a tmpfs runtime directory ($RUNTIME_DIRECTORY), as under "
            "systemd; the store is held exclusively (no -shm file), as configured by default",
            "the night's oximetry arrives as board readings (acknowledged: 1 s commit window); "
            "in the field it is a BLE stream on the 60 s continuous window, so the disk figure "
            "here is pessimistic (the store's per-reading bytes of the real mix: bench pipeline)",
            "commit window and batching deadlines divided by speed (day-time equivalent)",
        ],
    }
