"""The reference day: one deterministic day of readings in the home of a patient with heart
failure and COPD, and the default batching of the gateway. Every benchmark uses it.

Pure and deterministic: the same ``seed`` (and ``start_ms``) always gives the same readings,
byte for byte; nothing here reads a clock or a file. The day runs for 24 h from ``start_ms``
(06:00 by default) so that the night's oximetry is one block:

- blood pressure twice (systolic, diastolic, mean, pulse; ``mm[Hg]``, ``/min``), weight once
  (``kg``, resolution 5 g as the Weight Scale sends it), body temperature twice (``Cel``),
  SpO2 spot checks three times (the evening one below the care team's threshold: an alert),
  glucose four times with meal and tester context (coded MDC values, ``coded`` flag);
- an overnight pulse oximeter at 1 Hz for 8 h (22:00-06:00): slow drift, desaturation dips,
  dropouts sent as the 11073 special value NaN (``special="nan"``);
- a 30-minute walk with a heart-rate strap: heart rate once a second and every RR interval,
  converted exactly from 1/1024 s to ``ms`` as :mod:`protocols.gatt.heart_rate` does;
- two rooms' air temperature and relative humidity every 60 s, about 200 motion events, bed
  occupancy changes and door events from the sensor boards (narhub private MDC codes, as
  :mod:`gateway.board_source` assigns them, units from :data:`protocols.sensorlink.SENSOR_KINDS`);
- hub telemetry every 5 minutes (narhub private codes, see ``docs/protocols/uplink.md``);
- with ``cgm=True`` only (so that the default day, and every figure measured on it, stays
  as it was): a continuous glucose monitor's record every ``cgm_interval_min`` minutes for the
  24 h (288 records at 5 minutes, 1,440 at 1): the glucose in ``mg/dL`` (MDC_CONC_GLU_ISF)
  with its quality flag and its trend in ``mg/dL/min`` (a component of the glucose), as
  :mod:`protocols.gatt.mapping.cgm` maps a CGM Measurement record; from its own random
  stream, so the rest of the day is the same with or without it.

Times are what the gateway stamps today: the hub's wall clock at reception, in ms. A BLE
notification leaves the device at its own sampling clock (a few ppm off), waits for the next
connection event (BlueZ's default 30 ms interval) and then for the host (BlueZ, D-Bus, the
event loop: about a millisecond, sometimes tens). Sensor-board readings are stamped when the
hub commits them, a few ms after the board's own 60 s tick.

Devices are named as the gateway names them: BLE devices by address (``C4:7F:...``), sensor
boards by ``machine.unique_id()`` in hex, the hub itself as ``hub``; the addresses and ids
are drawn from the seed, so two seeds are two different homes.

Batching (:func:`plan_batches`) is the gateway's default: alerts leave at once, clinical spot
readings within 10 s, continuous clinical, environmental and telemetry readings within 5 min.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.reading import Reading
from protocols.gatt.observation import (  # IEEE 11073-10101 codes (docs/protocols/phd.md 3.2)
    MDC_CONC_GLU_CAPILLARY_PLASMA,
    MDC_CONC_GLU_ISF,
    MDC_CONC_GLU_TREND,
    MDC_CTXT_GLU_MEAL,
    MDC_CTXT_GLU_MEAL_CASUAL,
    MDC_CTXT_GLU_MEAL_FASTING,
    MDC_CTXT_GLU_MEAL_POSTPRANDIAL,
    MDC_CTXT_GLU_MEAL_PREPRANDIAL,
    MDC_CTXT_GLU_TESTER,
    MDC_CTXT_GLU_TESTER_SELF,
    MDC_ECG_HEART_RATE,
    MDC_ECG_TIME_PD_RR_GL,
    MDC_MASS_BODY_ACTUAL,
    MDC_PRESS_BLD_NONINV_DIA,
    MDC_PRESS_BLD_NONINV_MEAN,
    MDC_PRESS_BLD_NONINV_SYS,
    MDC_PULS_OXIM_PULS_RATE,
    MDC_PULS_OXIM_SAT_O2,
    MDC_PULS_RATE_NON_INV,
    MDC_TEMP_BODY,
)
from protocols.uplink import CODED_FLAG, Priority, WireReading

#: 2025-03-12T06:00:00Z: the default start of the reference day.
DEFAULT_START_MS = 1_741_759_200_000
DEFAULT_SEED = 20_250_312
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

#: Latency classes of the default batching policy (maximum wait before a batch leaves).
ALERT_DELAY_MS = 0
SPOT_DELAY_MS = 10_000
CONTINUOUS_DELAY_MS = 300_000

#: narhub private codes: MDC partition 2 (SCADA) x 65536 + private term 0xF000 + kind, as
#: ``gateway.board_source.NARHUB_PRIVATE_BASE`` (sensor kinds from the sensor link, spec section 4).
NARHUB_PRIVATE_BASE = 2 * 65536 + 0xF000
KIND_AIR_TEMPERATURE = 1
KIND_RELATIVE_HUMIDITY = 2
KIND_MOTION_EVENTS = 3
KIND_DOOR_OPEN = 4
KIND_OCCUPANCY = 6
#: Hub telemetry: private terms 0xF100 + n (documented in docs/protocols/uplink.md).
NARHUB_TELEMETRY_BASE = NARHUB_PRIVATE_BASE + 0x100
TELEMETRY_CPU_TEMPERATURE = NARHUB_TELEMETRY_BASE + 1
TELEMETRY_WIFI_RSSI = NARHUB_TELEMETRY_BASE + 2
TELEMETRY_OUTBOX_READINGS = NARHUB_TELEMETRY_BASE + 3
TELEMETRY_MEMORY_AVAILABLE = NARHUB_TELEMETRY_BASE + 4

_NAN = "nan"
#: BlueZ's default connection interval (24 x 1.25 ms).
_CONNECTION_INTERVAL_MS = 30.0


@dataclass(frozen=True, slots=True)
class DayReading:
    """One reading of the reference day: a wire reading plus how urgently it must leave."""

    stream: str
    device: str
    mdc_code: int
    unit: str
    t_ms: int
    value: Decimal | None
    special: str | None = None
    priority: Priority = Priority.CLINICAL
    max_delay_ms: int = SPOT_DELAY_MS
    flags: frozenset[str] = frozenset()
    #: Whether the hub keys it for de-duplication (``None``: by its latency class, see
    #: :func:`hub_reading`); a CGM record is keyed though it may wait like a stream.
    keyed: bool | None = None

    def received_at(
        self, hub_wall_ms: int, *, source_key: str | None = None, continuous: bool = False
    ) -> Reading:
        """The reading as the hub's pipeline gets it when received at ``hub_wall_ms`` (its
        monotonic clock in step, no device time, no source clock)."""
        return Reading(
            stream=self.stream,
            device=self.device,
            mdc_code=self.mdc_code,
            unit=self.unit,
            value=self.value,
            special=self.special,
            hub_wall_ms=hub_wall_ms,
            hub_mono_ns=hub_wall_ms * 1_000_000,
            priority=self.priority,
            flags=self.flags,
            source_key=source_key,
            continuous=continuous,
        )

    def to_wire(self) -> WireReading:
        """The reading as it travels in a batch (received at its own time: ``t_ms``)."""
        return self.received_at(self.t_ms).to_wire()


def _exact(mantissa: int, exponent: int) -> Decimal:
    """``mantissa x 10**exponent``, built exactly from text (no context rounding)."""
    return Decimal(f"{mantissa}E{exponent}")


class _Day:
    """Accumulates the day's readings; one method per kind of source."""

    def __init__(self, seed: int, start_ms: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
        self.start_ms = start_ms
        self.out: list[DayReading] = []
        rng = self.rng
        #: Phase of each BLE connection's event grid, ms.
        self.phase: dict[str, float] = {}
        self.names = {
            name: ":".join(f"{rng.randrange(256):02X}" for _ in range(6))
            for name in ("bpm", "scale", "thermo", "plx-spot", "plx-night", "glucose", "hrm")
        }
        for board in ("board-1", "board-2", "board-3"):
            self.names[board] = rng.randbytes(8).hex()

    def at(self, hours: float) -> int:
        """Epoch ms of a clock time (hours after midnight) within this day (06:00 start)."""
        offset = round((hours - 6) % 24 * HOUR_MS)
        return self.start_ms + offset

    def add(
        self,
        device: str,
        mdc_code: int,
        unit: str,
        t_ms: int,
        value: Decimal | None,
        *,
        stream: str | None = None,
        special: str | None = None,
        priority: Priority = Priority.CLINICAL,
        max_delay_ms: int = SPOT_DELAY_MS,
        flags: frozenset[str] = frozenset(),
        keyed: bool | None = None,
    ) -> None:
        self.out.append(
            DayReading(
                stream=stream if stream is not None else f"{device}/{mdc_code}",
                device=device,
                mdc_code=mdc_code,
                unit=unit,
                t_ms=t_ms,
                value=value,
                special=special,
                priority=priority,
                max_delay_ms=max_delay_ms,
                flags=flags,
                keyed=keyed,
            )
        )

    def received(self, t_ms: float, device: str = "") -> int:
        """Hub reception time (ms) of a BLE notification the device sent at ``t_ms``."""
        rng = self.rng
        phase = self.phase.setdefault(device, rng.uniform(0, _CONNECTION_INTERVAL_MS))
        event = (
            phase + math.ceil((t_ms - phase) / _CONNECTION_INTERVAL_MS) * _CONNECTION_INTERVAL_MS
        )
        host = rng.expovariate(1 / 1.2) + (rng.uniform(5, 25) if rng.random() < 0.01 else 0.0)
        return math.floor(event + 0.3 + host)

    # -- clinical spot readings ------------------------------------------------------------

    def blood_pressure(self, hours: float, sys: int, dia: int, pulse: int) -> None:
        t = self.received(self.at(hours))
        mean = round(dia + (sys - dia) / 3)
        for code, value in (
            (MDC_PRESS_BLD_NONINV_SYS, sys),
            (MDC_PRESS_BLD_NONINV_DIA, dia),
            (MDC_PRESS_BLD_NONINV_MEAN, mean),
        ):
            self.add(self.names["bpm"], code, "mm[Hg]", t, Decimal(value))
        self.add(self.names["bpm"], MDC_PULS_RATE_NON_INV, "/min", t, Decimal(pulse))

    def spot(self, name: str, mdc_code: int, unit: str, hours: float, value: Decimal) -> None:
        """One spot measurement of device ``name`` at a clock time, as the hub receives it."""
        self.add(self.names[name], mdc_code, unit, self.received(self.at(hours)), value)

    def weight(self, hours: float, raw_5g: int) -> None:
        # Weight Scale SI resolution 0.005 kg: raw x 5 x 10^-3 (gatt.weight keeps exponent -3).
        self.spot("scale", MDC_MASS_BODY_ACTUAL, "kg", hours, _exact(raw_5g * 5, -3))

    def temperature(self, hours: float, tenths: int) -> None:
        self.spot("thermo", MDC_TEMP_BODY, "Cel", hours, _exact(tenths, -1))

    def spo2_spot(self, hours: float, spo2: int, pulse: int, *, alert: bool = False) -> None:
        t = self.received(self.at(hours))
        priority = Priority.ALERT if alert else Priority.CLINICAL
        delay = ALERT_DELAY_MS if alert else SPOT_DELAY_MS
        for code, unit, value in (
            (MDC_PULS_OXIM_SAT_O2, "%", spo2),
            (MDC_PULS_OXIM_PULS_RATE, "/min", pulse),
        ):
            self.add(
                self.names["plx-spot"],
                code,
                unit,
                t,
                Decimal(value),
                priority=priority,
                max_delay_ms=delay,
            )

    def glucose(self, hours: float, mg_dl: int, meal: int) -> None:
        t = self.received(self.at(hours))
        self.add(self.names["glucose"], MDC_CONC_GLU_CAPILLARY_PLASMA, "mg/dL", t, Decimal(mg_dl))
        coded = frozenset({CODED_FLAG})
        t_context = self.received(t + 40, "glucose")  # the context notification
        self.add(
            self.names["glucose"], MDC_CTXT_GLU_MEAL, "1", t_context, Decimal(meal), flags=coded
        )
        self.add(
            self.names["glucose"],
            MDC_CTXT_GLU_TESTER,
            "1",
            t_context,
            Decimal(MDC_CTXT_GLU_TESTER_SELF),
            flags=coded,
        )

    def spot_readings(self) -> None:
        rng = self.rng
        self.weight(7.05, 16_870 + rng.randrange(-20, 21))  # about 84.35 kg
        self.blood_pressure(7.25, 132 + rng.randrange(-4, 5), 78 + rng.randrange(-3, 4), 74)
        self.temperature(7.33, 368)
        self.spo2_spot(7.42, 93, 76)
        self.glucose(7.5, 118, MDC_CTXT_GLU_MEAL_FASTING)
        self.glucose(12.4, 131, MDC_CTXT_GLU_MEAL_PREPRANDIAL)
        self.spo2_spot(13.0, 92, 79)
        self.glucose(14.5, 168, MDC_CTXT_GLU_MEAL_POSTPRANDIAL)
        self.blood_pressure(19.0, 141 + rng.randrange(-4, 5), 84 + rng.randrange(-3, 4), 81)
        self.spo2_spot(19.08, 88, 88, alert=True)  # below the care team's 90 % threshold
        self.temperature(19.17, 371)
        self.glucose(21.5, 142, MDC_CTXT_GLU_MEAL_CASUAL)

    # -- continuous clinical -------------------------------------------------------------

    def night_oximetry(self) -> None:
        """8 h at 1 Hz: SpO2 and pulse rate with drift, dips and NaN dropouts."""
        rng = self.rng
        start = self.at(22.0)
        seconds = 8 * 3600
        dips = sorted(rng.sample(range(600, seconds - 600), 14))
        dip_len = {d: rng.randrange(40, 150) for d in dips}
        dip_depth = {d: rng.uniform(4.0, 9.0) for d in dips}
        dropouts: list[tuple[int, int]] = [
            (s, s + rng.randrange(3, 40)) for s in sorted(rng.sample(range(seconds), 8))
        ]
        off = rng.randrange(3 * 3600, 5 * 3600)  # the probe slips off once, for about 4 min
        dropouts.append((off, off + rng.randrange(180, 300)))
        spo2_noise = 0.0
        pulse_noise = 0.0
        period_ms = 1000 * (1 + 23e-6)  # the device's crystal runs 23 ppm fast
        for k in range(seconds):
            t = self.received(start + k * period_ms, "plx-night")
            if any(a <= k < b for a, b in dropouts):
                for code, unit in ((MDC_PULS_OXIM_SAT_O2, "%"), (MDC_PULS_OXIM_PULS_RATE, "/min")):
                    self.add(
                        self.names["plx-night"],
                        code,
                        unit,
                        t,
                        None,
                        special=_NAN,
                        max_delay_ms=CONTINUOUS_DELAY_MS,
                    )
                continue
            hours = k / 3600
            baseline = 92.6 + 0.9 * math.sin(hours / 8 * math.pi) - 0.5 * math.sin(hours * 1.7)
            dip = 0.0
            for d in dips:
                if d <= k < d + dip_len[d]:
                    phase = (k - d) / dip_len[d]
                    dip = dip_depth[d] * math.sin(math.pi * phase) ** 2
            spo2_noise = 0.93 * spo2_noise + rng.gauss(0.0, 0.12)
            pulse_noise = 0.9 * pulse_noise + rng.gauss(0.0, 0.45)
            spo2 = min(100, round(baseline - dip + spo2_noise))
            pulse = round(64 + 3 * math.sin(hours * 0.9) + dip * 1.1 + pulse_noise)
            self.add(
                self.names["plx-night"],
                MDC_PULS_OXIM_SAT_O2,
                "%",
                t,
                Decimal(spo2),
                max_delay_ms=CONTINUOUS_DELAY_MS,
            )
            self.add(
                self.names["plx-night"],
                MDC_PULS_OXIM_PULS_RATE,
                "/min",
                t,
                Decimal(pulse),
                max_delay_ms=CONTINUOUS_DELAY_MS,
            )

    def walk(self) -> None:
        """30 min with a heart-rate strap: HR once a second and each RR interval (exact ms)."""
        rng = self.rng
        start = self.at(15.0)
        seconds = 30 * 60
        beat_ms = 0.0
        next_beat = 0.0
        period_ms = 1000 * (1 - 11e-6)
        for k in range(seconds):
            t = self.received(start + k * period_ms, "hrm")
            progress = k / seconds
            target = 74 + 34 * min(1.0, progress * 6) * min(1.0, (1 - progress) * 8)
            heart_rate = target + rng.gauss(0.0, 1.5)
            rr_raw: list[int] = []
            while next_beat < (k + 1) * 1000:
                beat_ms = 60_000 / heart_rate + rng.gauss(0.0, 12.0)
                next_beat += beat_ms
                rr_raw.append(round(beat_ms * 1.024))  # the strap's 1/1024 s units
            self.add(
                self.names["hrm"],
                MDC_ECG_HEART_RATE,
                "/min",
                t,
                Decimal(round(heart_rate)),
                max_delay_ms=CONTINUOUS_DELAY_MS,
            )
            for raw in rr_raw:
                # Exactly as protocols.gatt.heart_rate: n x 1000 / 1024 ms.
                self.add(
                    self.names["hrm"],
                    MDC_ECG_TIME_PD_RR_GL,
                    "ms",
                    t,
                    Decimal(raw * 1000) / 1024,
                    max_delay_ms=CONTINUOUS_DELAY_MS,
                )

    # -- environmental and telemetry -----------------------------------------------------

    def env(self, board: str, kind: int, index: int, unit: str, t: int, value: Decimal) -> None:
        self.add(
            board,
            NARHUB_PRIVATE_BASE + kind,
            unit,
            t,
            value,
            stream=f"{board}/{kind}/{index}",
            priority=Priority.ENVIRONMENTAL,
            max_delay_ms=CONTINUOUS_DELAY_MS,
        )

    def rooms(self) -> None:
        """Two rooms: air temperature and humidity every 60 s (SHT3x-like noise)."""
        rng = self.rng
        for board, base_c, base_rh in (
            (self.names["board-1"], 21.2, 41.0),
            (self.names["board-2"], 19.4, 47.0),
        ):
            phase = rng.randrange(60_000)
            drift = 0
            temp_walk = 0.0
            rh_walk = 0.0
            for minute in range(24 * 60):
                drift += rng.randrange(-2, 3)  # the board's own clock, ms
                t = self.start_ms + phase + minute * MINUTE_MS + drift + rng.randrange(4)
                hours = 6 + minute / 60
                heating = 0.8 * math.sin((hours - 9) / 24 * 2 * math.pi)
                temp_walk = 0.98 * temp_walk + rng.gauss(0.0, 0.02)
                rh_walk = 0.98 * rh_walk + rng.gauss(0.0, 0.08)
                celsius = base_c + heating + temp_walk + rng.gauss(0.0, 0.015)
                humidity = base_rh - 2 * heating + rh_walk + rng.gauss(0.0, 0.05)
                self.env(board, KIND_AIR_TEMPERATURE, 0, "Cel", t, _exact(round(celsius * 100), -2))
                self.env(
                    board, KIND_RELATIVE_HUMIDITY, 0, "%", t, _exact(round(humidity * 100), -2)
                )

    def events(self) -> None:
        """About 200 motion events, bed occupancy changes, door openings."""
        rng = self.rng
        awake = [(6.2, 13.4), (14.3, 22.0)]
        for _ in range(200):
            start, end = awake[rng.randrange(2)] if rng.random() < 0.93 else (22.0, 30.0)
            hours = rng.uniform(start, end)
            board = self.names[rng.choice(("board-1", "board-1", "board-2", "board-3"))]
            self.env(board, KIND_MOTION_EVENTS, 0, "{events}", self.at(hours % 24), Decimal(1))
        for hours, occupied in (
            (6.3, 0),
            (13.45, 1),
            (14.25, 0),
            (22.0, 1),
            (1.7, 0),
            (1.82, 1),
            (4.15, 0),
            (4.25, 1),
        ):
            t = self.at(hours) + rng.randrange(60_000)
            self.env(self.names["board-2"], KIND_OCCUPANCY, 0, "1", t, Decimal(occupied))
        for hours in (8.5, 11.2, 14.9, 15.55, 17.0, 20.3):
            t = self.at(hours) + rng.randrange(60_000)
            self.env(self.names["board-3"], KIND_DOOR_OPEN, 0, "1", t, Decimal(1))
            self.env(
                self.names["board-3"],
                KIND_DOOR_OPEN,
                0,
                "1",
                t + rng.randrange(4_000, 40_000),
                Decimal(0),
            )

    def telemetry(self) -> None:
        """The hub's own health every 5 minutes."""
        rng = self.rng
        cpu = 480
        for tick in range(24 * 12):
            t = self.start_ms + tick * 5 * MINUTE_MS + rng.randrange(20)
            cpu = max(420, min(560, cpu + rng.randrange(-8, 9)))
            for code, unit, value in (
                (TELEMETRY_CPU_TEMPERATURE, "Cel", _exact(cpu, -1)),
                (TELEMETRY_WIFI_RSSI, "dB[mW]", Decimal(-61 + rng.randrange(-4, 5))),
                (TELEMETRY_OUTBOX_READINGS, "{readings}", Decimal(rng.randrange(0, 40))),
                (TELEMETRY_MEMORY_AVAILABLE, "MiBy", Decimal(212 + rng.randrange(-6, 7))),
            ):
                self.add(
                    "hub",
                    code,
                    unit,
                    t,
                    value,
                    priority=Priority.TELEMETRY,
                    max_delay_ms=CONTINUOUS_DELAY_MS,
                )


def _cgm(day: _Day, seed: int, interval_min: int) -> None:
    """A CGM sensor's day: a record every ``interval_min`` minutes (see the module docstring)."""
    rng = random.Random(seed ^ 0xC6A)  # noqa: S311 - its own stream: the rest is unchanged
    device = ":".join(f"{rng.randrange(256):02X}" for _ in range(6))
    glucose = 110.0
    component = frozenset({f"component-of:{MDC_CONC_GLU_ISF}"})
    for n in range(DAY_MS // (interval_min * MINUTE_MS)):
        sent = day.start_ms + n * interval_min * MINUTE_MS + rng.uniform(0, 2_000)
        t = day.received(sent, device)
        step = rng.gauss(0.0, 1.2) * interval_min + (110 - glucose) * 0.02 * interval_min
        glucose = min(380.0, max(45.0, glucose + step))
        trend = _exact(round(step / interval_min * 10), -1)
        quality = frozenset({f"cgm-quality-percent:{rng.randint(85, 100)}"})
        for code, unit, value, flags in (
            (MDC_CONC_GLU_ISF, "mg/dL", Decimal(round(glucose)), quality),
            (MDC_CONC_GLU_TREND, "mg/dL/min", trend, component),
        ):
            day.add(
                device,
                code,
                unit,
                t,
                value,
                flags=flags,
                max_delay_ms=CONTINUOUS_DELAY_MS,
                keyed=True,
            )


def reference_day(
    seed: int = DEFAULT_SEED,
    *,
    start_ms: int = DEFAULT_START_MS,
    cgm: bool = False,
    cgm_interval_min: int = 5,
) -> tuple[DayReading, ...]:
    """Every reading of the reference day, in the order the hub receives them (time order);
    with ``cgm``, a CGM's records every ``cgm_interval_min`` minutes too (1 to 5 minutes:
    1,440 to 288 records a day)."""
    if not 1 <= cgm_interval_min <= 5:
        raise ValueError("a CGM sends a record every 1 to 5 minutes")
    day = _Day(seed, start_ms)
    day.spot_readings()
    day.night_oximetry()
    day.walk()
    day.rooms()
    day.events()
    day.telemetry()
    if cgm:
        _cgm(day, seed, cgm_interval_min)
    order = sorted(range(len(day.out)), key=lambda i: day.out[i].t_ms)  # stable: ties keep order
    return tuple(day.out[i] for i in order)


def hub_reading(index: int, r: DayReading) -> Reading:
    """A day's reading as the hub's pipeline gets it from its source: received at the day's
    time; spot and environmental readings carry a source key (``day/{index}``: a device record
    or a board frame, which a source may resend); continuous streams none (notifications)."""
    keyed = r.keyed
    if keyed is None:
        keyed = r.priority is Priority.ENVIRONMENTAL or r.max_delay_ms < CONTINUOUS_DELAY_MS
    return r.received_at(
        r.t_ms,
        source_key=f"day/{index}" if keyed else None,
        continuous=r.priority is Priority.CLINICAL and r.max_delay_ms == CONTINUOUS_DELAY_MS,
    )


def day_summary(readings: Sequence[DayReading]) -> dict[str, int]:
    """Readings per device (for reports)."""
    counts: dict[str, int] = {}
    for r in readings:
        counts[r.device] = counts.get(r.device, 0) + 1
    return dict(sorted(counts.items()))


def iter_wire(readings: Iterable[DayReading]) -> Iterator[WireReading]:
    """The wire form of each reading."""
    return (r.to_wire() for r in readings)
