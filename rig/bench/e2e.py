"""End to end (``narhub bench e2e --json``): the highest rate the real hub holds with nothing lost.

The usual method for gateways: step the offered rate up, hold each step, confirm the best
step that lost nothing for longer, and count every reading at the far end. Here:

- **the source** (:mod:`rig.bench.e2e_source`): sensor boards on ptys, each sending as the
  firmware does with a real board's limits (:mod:`rig.bench.e2e_board`: the ring size of
  ``firmware/boards/<board>/board.py``, the go-back-N window, ACK timeout and frame size of
  ``firmware/sensorfw/link.py``, a UART at ``--baud``), and with ``--ble`` heart-rate straps
  notifying on the emulated radio (:mod:`rig.bench.e2e_ble`). The source keeps its rate on
  its own clock whatever the hub does; a reading a board had to overwrite because its ring
  was full, or a notification a strap could not deliver, is lost;
- **the hub**: ``narhub run`` as its own process, as installed and started by systemd
  (:class:`rig.bench.footprint.HubProcess`: the unit's environment, compiled bytecode, a
  tmpfs runtime directory), configured by ``narhub init``'s defaults except where
  :func:`rig.bench.e2e_hub.hub_config` says;
- **the broker**: Mosquitto with mutual TLS 1.3 and the region's ACL
  (:class:`rig.broker.MosquittoBroker`), reached by the hub through the home's router
  (:class:`rig.router.HomeRouter`), which keeps the hub away from a restarted broker until
  the region has subscribed again, as the region's persistent sessions do in the field;
- **the region**: the reference receiver (:mod:`rig.bench.e2e_region`) writing FHIR NDJSON.

Each step offers ``rate`` readings per second for ``step_s``, then **drains**: it waits until
every board has had every reading acknowledged (or overwritten) and every reading the hub
accepted is in the FHIR output, or ``DRAIN_TIMEOUT_S``; only then it counts, by identity
(:mod:`rig.bench.e2e_count`). Stepping stops at the first step that lost a reading; the best
step that lost none is then held for ``confirm_s``; if that loses, the next lower one. With
``outage``, a last step at a tenth of the best rate has the broker stopped for ``outage_s``
in its middle.

Per step, of the hub process only: CPU seconds (``utime + stime`` of ``/proc/PID/stat``) per
1,000 readings delivered, the peak ``VmRSS`` (sampled twice a second) and ``VmHWM``, bytes
written (``write_bytes`` of ``/proc/PID/io``) per reading delivered, all over the step and
its drain; the outbox depth from the hub's activity file at the end of the step and after
the drain. The machine and its load average before and after each step are in the output:
on a shared machine the figures hold only for that load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import tty
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config import HubConfig, load_config
from region.broker_config import RECEIVER_USER
from rig.bench.e2e_board import (
    BENCH_KIND,
    DEFAULT_BAUD,
    DEFAULT_BOARD,
    BoardCounters,
    BoardLimits,
    EmulatedBoard,
    firmware_limits,
)
from rig.bench.e2e_count import (
    FhirTally,
    Outage,
    SourceLedger,
    StepCount,
    figures,
    outage_figures,
    percentiles_ms,
)
from rig.bench.e2e_hub import HUB_ID, config_summary, hub_config, outbox_depth
from rig.bench.e2e_machine import loadavg, machine
from rig.bench.e2e_region import RegionArgs, RegionProcess
from rig.bench.e2e_source import PacedSource, StepWindow
from rig.bench.footprint import HubProcess
from rig.bench.pipeline import fs_type, proc_write_bytes
from rig.bench.procstat import proc_cpu_s, proc_status_kib
from rig.broker import MosquittoBroker, RigPki
from rig.router import HomeRouter
from rig.sim_boards import close_watched

if TYPE_CHECKING:
    from rig.bench.e2e_ble import CountingStrap, StrapRadio

DEFAULT_RATES = (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
DEFAULT_STEP_S = 30.0
DEFAULT_CONFIRM_S = 60.0
DEFAULT_BOARDS = 4
DEFAULT_OUTAGE_S = 20.0
#: ``--ble``: straps beside the boards, notifying this share of the offered rate together.
BLE_STRAPS = 2
BLE_SHARE = 0.1
DRAIN_TIMEOUT_S = 120.0
_READY_TIMEOUT_S = 60.0
_SAMPLE_S = 0.5
_BOOT_ID_BASE = 0xE2E00000
_MIB = 1024


class E2eError(RuntimeError):
    """The benchmark could not measure (the hub did not start, a board never linked ...)."""


class _Bench:
    """Everything of one run: broker, router, region, boards, straps, hub."""

    def __init__(
        self,
        directory: Path,
        limits: BoardLimits,
        *,
        boards: int,
        ble: bool,
        commit_window_s: float | None,
    ) -> None:
        self.dir = directory
        self.limits = limits
        self.board_count = boards
        self.ble = ble
        self.commit_window_s = commit_window_s
        self.pki = RigPki.create(directory / "pki")
        self.broker = MosquittoBroker(self.pki, directory / "broker")
        self.router: HomeRouter | None = None
        self.region: RegionProcess | None = None
        self.boards: list[EmulatedBoard] = []
        self.straps: list[CountingStrap] = []
        self._strap_radio: StrapRadio | None = None
        self._fds: list[int] = []
        self.hub: HubProcess | None = None
        self.config: HubConfig | None = None
        self.tally: FhirTally | None = None
        self.source: PacedSource | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._heart_rate: tuple[int, str] = (0, "")

    # --- setting up --------------------------------------------------------------------------

    async def start(self) -> None:
        """Broker, router, region, boards, straps, then the hub; returns once all are linked."""
        await asyncio.to_thread(self.broker.start)
        self.router = HomeRouter(self.broker.host, self.broker.port)
        await self.router.__aenter__()
        hub_identity = self.pki.client(HUB_ID)
        receiver = self.pki.client(RECEIVER_USER)
        self.region = RegionProcess(
            RegionArgs(
                self.broker.host,
                self.broker.port,
                f"{RECEIVER_USER}-e2e",
                self.pki.ca_file,
                receiver.cert_file,
                receiver.key_file,
                HUB_ID,
                hub_identity.cert_file.read_bytes(),
                self.dir / "region",
            )
        )
        await asyncio.to_thread(self.region.start)
        self.region.listen()
        ports = self._open_boards()
        transport = await self._start_straps()
        config_path = hub_config(
            self.dir,
            self.pki,
            hub_identity,
            host=self.router.host,
            port=self.router.port,
            board_ports=ports,
            commit_window_s=self.commit_window_s,
            ble_transport=transport,
            strap_addresses=[s.address for s in self.straps],
        )
        self.config = load_config(config_path)
        self.tally = FhirTally(self.region.args.output, self._ledgers())
        self.source = PacedSource(self.boards, self.straps)
        self.hub = HubProcess(self.dir, config_path)
        await self.hub.start()
        await self._wait_linked()

    def _open_boards(self) -> list[str]:
        loop = asyncio.get_running_loop()
        ports = []
        for n in range(self.board_count):
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._fds += [master, slave]
            board = EmulatedBoard(f"e2e-board-{n}", _BOOT_ID_BASE + n, self.limits, master)
            loop.add_reader(master, board.on_readable)
            self.boards.append(board)
            self._tasks.append(loop.create_task(board.run(), name=f"e2e-board-{n}"))
            ports.append(os.ttyname(slave))
        return ports

    async def _start_straps(self) -> str | None:
        if not self.ble:
            return None
        from rig.bench.e2e_ble import StrapRadio, heart_rate_code  # noqa: PLC0415 - bumble

        addresses = [f"C0:FF:EE:00:E2:{n:02X}" for n in range(BLE_STRAPS)]
        radio = StrapRadio(addresses)
        await radio.start()
        self._strap_radio = radio
        self.straps = list(radio.straps)
        self._heart_rate = heart_rate_code()
        return radio.transport_name

    def _ledgers(self) -> dict[str, SourceLedger]:
        ledgers = {
            b.board_id: SourceLedger(
                b.board_id,
                _board_code(),
                b.taken_ns,
                b.overwritten,
                "board_ring_full",
                sent_ns=b.sent_ns,
            )
            for b in self.boards
        }
        for strap in self.straps:
            ledgers[strap.address] = SourceLedger(
                strap.address,
                self._heart_rate[0],
                strap.taken_ns,
                bytes(1 - d for d in strap.delivered),
                "ble_not_delivered",
                first_value=1,
            )
        return ledgers

    async def _wait_linked(self) -> None:
        hub = self.hub
        assert hub is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not (hub.ready_at and all(b.linked for b in self.boards)):
            if hub.process is not None and hub.process.returncode is not None:
                raise E2eError(f"narhub run exited at start:\n{hub.stderr_tail()}")
            if time.monotonic() > deadline:
                raise E2eError(f"the hub did not link every board:\n{hub.stderr_tail()}")
            await asyncio.sleep(0.05)  # another process: poll it, bounded by the deadline
        if self._strap_radio is not None:
            try:
                await self._strap_radio.wait_subscribed(_READY_TIMEOUT_S)
            except TimeoutError:
                tail = hub.stderr_tail()
                raise E2eError(f"the hub did not subscribe to every strap:\n{tail}") from None

    # --- a step ------------------------------------------------------------------------------

    async def step(
        self, rate: float, duration_s: float, *, outage_s: float | None = None
    ) -> tuple[dict[str, Any], StepCount, Outage | None]:
        """Offer ``rate`` readings/s for ``duration_s``, drain, count."""
        hub, source, tally, region = self.hub, self.source, self.tally, self.region
        assert hub is not None
        assert source is not None
        assert tally is not None
        assert region is not None
        strap_rate = rate * BLE_SHARE / len(self.straps) if self.straps else 0.0
        board_rate = rate - strap_rate * len(self.straps)
        if self._strap_radio is not None:
            # A strap the hub let go while the bench was counting (the central ends a session
            # after ``ble.idle_disconnect_s`` without a value) is back before the step starts.
            await self._strap_radio.wait_subscribed(_READY_TIMEOUT_S)
        for board in self.boards:  # the boards' counters are per step (and its drain)
            board.counters = BoardCounters(ring_peak=board.pending)
        load_before = loadavg()
        cpu0, written0 = proc_cpu_s(hub.pid), proc_write_bytes(hub.pid)
        rss_peak = [proc_status_kib(hub.pid)["VmRSS"]]
        sampler = asyncio.create_task(self._sample_rss(rss_peak), name="e2e-rss")
        outage = Outage() if outage_s is not None else None
        outage_task = None
        if outage is not None and outage_s is not None:
            at_s = max(0.0, (duration_s - outage_s) / 2)
            outage_task = asyncio.create_task(self._outage(at_s, outage_s, outage))
        try:
            window = await source.step(board_rate, strap_rate, duration_s)
            queue_end = outbox_depth(hub.runtime_dir)
            if outage_task is not None:
                await outage_task
            drained, drain_s = await self._drain(window)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        cpu1, written1 = proc_cpu_s(hub.pid), proc_write_bytes(hub.pid)
        status = proc_status_kib(hub.pid)
        tally.read(region.written, region.arrival_ns)
        spans = {**window.boards, **window.straps}
        count = figures(spans, self._ledgers(), tally, keep_outcomes=outage is not None)
        delivered = count.delivered
        result = {
            "rate_per_s": rate,
            "duration_s": duration_s,
            **count.to_json(),
            "zero_loss": count.lost == 0 and drained,
            "drained": drained,
            "drain_s": round(drain_s, 1),
            "hub": {
                "cpu_s_per_1000_readings": (
                    round((cpu1 - cpu0) / delivered * 1000, 3) if delivered else None
                ),
                "cpu_s": round(cpu1 - cpu0, 2),
                "rss_peak_mib": round(max(rss_peak) / _MIB, 1),
                "rss_hwm_mib": round(status["VmHWM"] / _MIB, 1),
                "disk_bytes_per_reading": (
                    round((written1 - written0) / delivered, 1)
                    if delivered and written0 is not None and written1 is not None
                    else None
                ),
                "outbox_at_end_of_step": queue_end,
                "outbox_after_drain": outbox_depth(hub.runtime_dir),
            },
            "source": self._source_figures(window, duration_s),
            "loadavg": {"before": load_before, "after": loadavg()},
        }
        return result, count, outage

    async def _sample_rss(self, peak: list[int]) -> None:
        hub = self.hub
        assert hub is not None
        while True:
            await asyncio.sleep(_SAMPLE_S)  # a sampling period, not a synchronisation
            with contextlib.suppress(OSError):
                peak.append(proc_status_kib(hub.pid)["VmRSS"])

    async def _outage(self, at_s: float, outage_s: float, outage: Outage) -> None:
        """The broker away for ``outage_s`` from ``at_s`` into the step."""
        router, region = self.router, self.region
        assert router is not None
        assert region is not None
        await asyncio.sleep(at_s)  # the outage's place in the step
        subscriptions = region.subscriptions
        await router.offline()
        await asyncio.to_thread(self.broker.stop)
        outage.down_ns = time.monotonic_ns()
        await asyncio.sleep(outage_s)  # the outage itself
        await asyncio.to_thread(self.broker.start)
        outage.back_ns = time.monotonic_ns()
        await region.wait_subscriptions(subscriptions + 1, _READY_TIMEOUT_S)
        outage.region_subscribed_ns = time.monotonic_ns()
        router.online()
        outage.router_online_ns = time.monotonic_ns()

    async def _drain(self, window: StepWindow) -> tuple[bool, float]:
        """Wait until every board settled and every accepted reading is in the output."""
        tally, region = self.tally, self.region
        assert tally is not None
        assert region is not None
        start = time.monotonic()
        deadline = start + DRAIN_TIMEOUT_S
        settled = await asyncio.gather(*(b.wait_settled(DRAIN_TIMEOUT_S) for b in self.boards))
        missing = self._expected(window)
        while True:
            tally.read(region.written, region.arrival_ns)
            for name in list(missing):
                seen = tally.seen[name].copies
                missing[name] = {i for i in missing[name] if i not in seen}
                if not missing[name]:
                    del missing[name]
            if not missing or time.monotonic() > deadline:
                return all(settled) and not missing, time.monotonic() - start
            region.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(region.changed.wait(), _SAMPLE_S)

    def _expected(self, window: StepWindow) -> dict[str, set[int]]:
        """Readings the hub accepted (acknowledged board readings, delivered notifications)."""
        expected: dict[str, set[int]] = {}
        for board in self.boards:
            first, end = window.boards[board.board_id]
            expected[board.board_id] = {
                i for i in range(first, min(end, board.tail)) if not board.overwritten[i]
            }
        for strap in self.straps:
            first, end = window.straps[strap.address]
            expected[strap.address] = {i for i in range(first, end) if strap.delivered[i]}
        return {k: v for k, v in expected.items() if v}

    def _source_figures(self, window: StepWindow, duration_s: float) -> dict[str, Any]:
        elapsed_s = max((window.ended_ns - window.started_ns) / 1e9, 1e-9)
        behind = percentiles_ms(list(window.behind_ns))
        boards = [b.counters for b in self.boards]
        out: dict[str, Any] = {
            "offered_per_s_achieved": round(window.offered / elapsed_s, 1),
            "elapsed_s": round(elapsed_s, 2),
            "behind_schedule_ms": behind,
            "boards": {
                "count": len(boards),
                "ring_capacity": self.limits.ring_capacity,
                "ring_peak": max((c.ring_peak for c in boards), default=0),
                "overwritten": sum(c.dropped for c in boards),
                "frames": sum(c.frames for c in boards),
                "readings_sent": sum(c.readings_sent for c in boards),
                "resends": sum(c.resends for c in boards),
                "unlinks": sum(c.unlinks for c in boards),
                "line_utilisation_max": round(
                    max((c.line_busy_s for c in boards), default=0.0) / duration_s, 3
                ),
            },
        }
        if self.straps:
            out["ble"] = {"straps": len(self.straps), "share_of_rate": BLE_SHARE}
        return out

    # --- tearing down ------------------------------------------------------------------------

    async def stop(self) -> dict[str, Any]:
        """Stop the hub (SIGTERM, as systemd does), then everything else."""
        out: dict[str, Any] = {}
        if self.hub is not None and self.hub.process is not None:
            with contextlib.suppress(ProcessLookupError):
                out["hwm_mib"] = round(proc_status_kib(self.hub.pid)["VmHWM"] / _MIB, 1)
            if self.hub.process.returncode is None:
                with contextlib.suppress(TimeoutError, ProcessLookupError):
                    out["exit_code"] = await self.hub.stop()
        return out

    async def close(self) -> None:
        """Release everything (also after a failure)."""
        if self.hub is not None:
            await self.hub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        close_watched(self._fds)
        if self._strap_radio is not None:
            await self._strap_radio.stop()
        if self.region is not None:
            self.region.stop()
        if self.router is not None:
            await self.router.__aexit__(None, None, None)
        await asyncio.to_thread(self.broker.stop)


def _board_code() -> int:
    from gateway.board_source import NARHUB_PRIVATE_BASE  # noqa: PLC0415 - one constant

    return NARHUB_PRIVATE_BASE + BENCH_KIND


async def _measure(
    directory: Path,
    limits: BoardLimits,
    *,
    rates: Sequence[float],
    step_s: float,
    confirm_s: float,
    outage_s: float | None,
    boards: int,
    ble: bool,
    commit_window_s: float | None,
) -> dict[str, Any]:
    bench = _Bench(directory, limits, boards=boards, ble=ble, commit_window_s=commit_window_s)
    steps: list[dict[str, Any]] = []
    confirms: list[dict[str, Any]] = []
    outage_result: dict[str, Any] | None = None
    try:
        await bench.start()
        for rate in rates:
            result, _, _ = await bench.step(rate, step_s)
            steps.append(result)
            if not result["zero_loss"]:
                break
        passed = sorted((s["rate_per_s"] for s in steps if s["zero_loss"]), reverse=True)
        sustained = None
        for rate in passed[:2]:  # the best, then the next lower one if the best did not hold
            result, _, _ = await bench.step(rate, confirm_s)
            confirms.append(result)
            if result["zero_loss"]:
                sustained = rate
                break
        if outage_s is not None:
            base = sustained if sustained is not None else (passed[0] if passed else rates[0])
            duration = max(step_s, 2 * outage_s)  # the outage in the middle half
            result, count, outage = await bench.step(base / 10, duration, outage_s=outage_s)
            assert outage is not None
            outage_result = {**result, **outage_figures(count, outage)}
        hub = await bench.stop()
    finally:
        await bench.close()
    assert bench.config is not None
    best = max((s["rate_per_s"] for s in steps if s["zero_loss"]), default=None)
    return {
        "best_step_rate_per_s": best,
        "best_sustained_zero_loss_rate_per_s": sustained,
        "steps": steps,
        "confirm": confirms,
        "outage": outage_result,
        "hub": {**hub, "configuration": config_summary(bench.config)},
        "region": {
            "receiver_stats": bench.region.stats if bench.region else None,
            "receiver_peak_rss_mib": (
                round(bench.region.peak_rss_kib / _MIB, 1)
                if bench.region and bench.region.peak_rss_kib
                else None
            ),
            "unexpected_readings": bench.tally.unexpected if bench.tally else None,
        },
    }


def run(
    *,
    duration_s: float = 1.0,
    rates: Sequence[float] = DEFAULT_RATES,
    step_s: float = DEFAULT_STEP_S,
    confirm_s: float = DEFAULT_CONFIRM_S,
    outage: bool = True,
    outage_s: float = DEFAULT_OUTAGE_S,
    ble: bool = False,
    boards: int = DEFAULT_BOARDS,
    board: str = DEFAULT_BOARD,
    baud: int = DEFAULT_BAUD,
    commit_window_s: float | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Step, confirm, and (``outage``) the broker outage; ``duration_s`` is accepted for
    ``bench all`` and unused (``step_s`` and ``confirm_s`` set the work). ``workdir``: a
    new directory where the run's files (hub log and store, FHIR output, configuration)
    are kept; by default they go to a temporary directory, removed at the end."""
    del duration_s
    if step_s <= 0 or confirm_s <= 0 or outage_s <= 0 or boards < 1 or baud <= 0:
        raise ValueError("step, confirm and outage seconds, boards and baud must be positive")
    rates = tuple(rates)
    if not rates:
        raise ValueError("at least one rate")
    limits = firmware_limits(board, baud=baud)
    before = loadavg()
    started = time.monotonic()
    if workdir is None:
        directory = Path(tempfile.mkdtemp(prefix="narhub-bench-e2e-", dir="/tmp"))
    else:
        workdir.mkdir(parents=True)  # a new one: FileExistsError names it
        directory = workdir.resolve()
    try:
        figures_ = asyncio.run(
            _measure(
                directory,
                limits,
                rates=rates,
                step_s=step_s,
                confirm_s=confirm_s,
                outage_s=outage_s if outage else None,
                boards=boards,
                ble=ble,
                commit_window_s=commit_window_s,
            )
        )
        filesystem = fs_type(directory)
    finally:
        if workdir is None:
            shutil.rmtree(directory, ignore_errors=True)
    return {
        "benchmark": "e2e",
        "machine": {**machine(), "filesystem": filesystem},
        "loadavg": {"before": before, "after": loadavg()},
        "run_s": round(time.monotonic() - started, 1),
        "method": {
            "rates_per_s": list(rates),
            "step_s": step_s,
            "confirm_s": confirm_s,
            "outage_s": outage_s if outage else None,
            "drain_timeout_s": DRAIN_TIMEOUT_S,
        },
        "source": {
            "boards": boards,
            "board": limits.board,
            "ring_capacity": limits.ring_capacity,
            "window_readings": limits.window_readings,
            "readings_per_frame": limits.max_readings_per_frame,
            "ack_timeout_ms": limits.ack_timeout_ms,
            "max_retries": limits.max_retries,
            "baud": limits.baud,
            "ble_straps": BLE_STRAPS if ble else 0,
            "ble_share_of_rate": BLE_SHARE if ble else 0,
        },
        **figures_,
        "notes": [
            "the machine is shared with other jobs (2 cores): the load average before and "
            "after each step is recorded; the figures hold for that load",
            "source, hub, broker and region share the machine's cores",
            "latency: from the moment the source took a reading (entered the board's ring, "
            "or the strap notified) to the moment its Observation was fsynced by the receiver; "
            "latency_from_first_send: from the moment its frame first left the board's UART",
            "batching deadlines of board and stream readings 1 s (installed: 300 s); "
            "everything else as `narhub init` writes it, clock.require_sync off",
            "boards: the firmware's sending rules and limits emulated in the bench process "
            "(ring, go-back-N window, ACK timeout, frame size, UART baud rate); flash writes "
            "on the board not modelled",
        ],
    }
