"""The edge pipeline: decoded events and sensor-board readings -> stages -> the outbox.

Every source commits through :class:`Pipeline`, one path: BLE events with
:meth:`Pipeline.commit_events` (map, then the rest), sensor-board readings with
:meth:`Pipeline.commit` (the board source maps its frames itself, :mod:`gateway.board_source`).

Stages (docs/pipeline.md), each its own module and a pure function where it can be:

1. **map** (here): a decoded BLE measurement becomes one :class:`Reading` per observation
   (MDC code, UCUM unit, exact value or special, device time, clock offset, priority
   ``clinical``, ``continuous`` for oximetry and heart-rate streams, a de-duplication key for
   device records: :mod:`gateway.dedup`);
2. **validate** (:mod:`gateway.validate`): special values, plausibility per code, clock sanity:
   flags only;
3. **thresholds** (:mod:`gateway.thresholds`): the care team's limits make a reading an alert;
4. **reduce** (:mod:`gateway.aggregate`): opt-in deadband/window for non-clinical data only;
5. **commit**: :meth:`gateway.outbox.AsyncOutbox.add` (group commit); the source is
   acknowledged only after it returns. De-duplication happens inside that transaction, by the
   keys of :mod:`gateway.dedup`.

A clinical reading is never dropped or altered here: a malformed payload is counted by the
central and kept as a raw record (flag ``undecoded``, its bytes as hex: see
:mod:`protocols.uplink.undecoded`); a decoded one becomes one Reading per observation, at
most flagged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from drivers.ble import ClockObservation, MeasurementEvent
from gateway.aggregate import Reducer, ReductionRule
from gateway.dedup import record_key, trusted_key
from gateway.outbox import AsyncOutbox
from gateway.reading import Reading
from gateway.thresholds import Threshold, ThresholdTable, apply_thresholds, threshold_table
from gateway.validate import (
    DEVICE_AHEAD_LIMIT_S,
    FLAG_DEVICE_TIME,
    corrected_time_plausible,
    validate,
)
from protocols.gatt import (
    BATTERY_LEVEL,
    HEART_RATE_MEASUREMENT,
    PLX_CONTINUOUS_MEASUREMENT,
    DeviceInformationString,
    Observation,
    SystemId,
    to_observations,
)
from protocols.uplink import CODED_FLAG, Priority
from protocols.uplink.device_facts import DIS_MDC, FLAG_DEVICE_INFO, clock_flags
from protocols.uplink.undecoded import RAW_RECORD_MDC, raw_fields, raw_stream

logger = logging.getLogger(__name__)

#: Device status values (Battery, Device Information): reported by the central, not readings.
_STATUS_CHARACTERISTICS = frozenset({BATTERY_LEVEL})
#: Characteristics that stream continuously (their readings may wait longer for a batch).
CONTINUOUS_CHARACTERISTICS = frozenset({PLX_CONTINUOUS_MEASUREMENT, HEART_RATE_MEASUREMENT})

_NO_FLAGS: frozenset[str] = frozenset()
_DEVICE_INFO = frozenset({FLAG_DEVICE_INFO})
_SUSPECT_TIME = frozenset({FLAG_DEVICE_TIME})
_CLINICAL = Priority.CLINICAL
_ALERT = Priority.ALERT
#: The flag of a compound measurement's component (``component-of:{compound MDC code}``).
COMPONENT_FLAG_PREFIX = "component-of:"
#: Builds a Reading from a tuple of all its fields in order (``Reading._make`` without its
#: length check: :func:`readings_from_event` passes all fifteen, which
#: tests/pipeline/test_pipeline_hot_path.py checks against the named-field constructor).
_new_reading = tuple.__new__


def _value_and_flags(o: Observation) -> tuple[Decimal | None, frozenset[str]]:
    """A coded observation (e.g. glucose meal context) travels as its MDC value code."""
    if o.value is None and o.special is None and o.coded_value is not None:
        return Decimal(o.coded_value), o.flags | {CODED_FLAG}
    return o.value, o.flags


def _clock(event: MeasurementEvent) -> tuple[frozenset[str], int | None]:
    """The session's observed device clock: its offset, and for a time-stamped value the flags
    that carry the offset and the hub's time of the read to the region, which reports them as
    the PHD IG's coincident time stamp (:mod:`protocols.uplink.device_facts`)."""
    clock = event.clock
    if clock is None or clock.offset_s is None:
        return frozenset(), None
    offset_ms = round(clock.offset_s * 1000)
    if event.device_time is None:
        return frozenset(), offset_ms
    try:
        read_ms = round(clock.hub_time.timestamp() * 1000)  # naive local, like the stamps
    except (OverflowError, ValueError, OSError):  # out of the platform's range
        return frozenset(), offset_ms
    return clock_flags(clock.offset_s, read_ms), offset_ms


def _device_information(event: MeasurementEvent, text: str) -> list[Reading]:
    """A Device Information string as a device-information reading (not a measurement: the
    region makes it part of the device's Device resource; docs/protocols/uplink.md, "Device
    facts").
    An empty string says nothing and travels as nothing."""
    if not text:
        return []
    code = DIS_MDC[event.characteristic]
    return _text_reading(event, f"{event.device}/{code}", code, text, _DEVICE_INFO)


def _raw_record(event: MeasurementEvent) -> list[Reading]:
    """A value no decoder accepted, kept as a raw record (:mod:`protocols.uplink.undecoded`):
    its bytes as hex, its characteristic's UUID, the device and the reception time. Clinical
    priority: it may be a measurement a newer decoder reads at the region."""
    special, flags = raw_fields(event.characteristic, event.raw)
    stream = raw_stream(event.device, event.characteristic)
    return _text_reading(event, stream, RAW_RECORD_MDC, special, flags)


def _text_reading(
    event: MeasurementEvent, stream: str, mdc_code: int, text: str, flags: frozenset[str]
) -> list[Reading]:
    """The one reading of a value that travels as text (``special``), at clinical priority."""
    return [
        Reading(
            stream=stream,
            device=event.device,
            mdc_code=mdc_code,
            unit="",
            value=None,
            special=text,
            hub_wall_ms=event.hub_wall_ms,
            hub_mono_ns=event.hub_mono_ns,
            priority=_CLINICAL,
            flags=flags,
        )
    ]


#: The flag carrying the device's user index of a measurement (a shared cuff or scale).
USER_INDEX_FLAG = "user-index"
#: BLS 1.0 3.1.1.5: User ID 0xFF is "unknown user".
_UNKNOWN_USER = 0xFF


def user_index(measurement: object) -> int | None:
    """The user index a measurement names (Blood Pressure, Weight, Body Composition User ID
    field); ``None`` when it has none or names the unknown user (0xFF)."""
    user = getattr(measurement, "user_id", None)
    if not isinstance(user, int) or user == _UNKNOWN_USER:
        return None
    return user


#: Slack around "stamped after the hub set the clock": the Date Time's 1 s resolution, and the
#: write that sets the clock comes just after the read.
_AFTER_SET_SLACK = dt.timedelta(seconds=2)


def device_wall_ms(
    device_time: dt.datetime, clock: ClockObservation | None, received_ms: int | None = None
) -> int | None:
    """When a time-stamped measurement was taken, as epoch ms on the hub's clock; ``None``
    when the stamp, corrected, is no time at all (outside years 1-9999: a garbage stamp or
    clock, which the device's bytes may be).

    A device stamps a measurement with its own clock, naive local time (GATT Date Time,
    GSS 3.70; the hub sets it to its local time through CTS, docs/protocols/phd.md 4).
    A stored record downloaded hours later was taken at its time stamp, not at its reception:
    the PHD IG (Observation.effective[x]) takes the time stamp, corrected by the device
    clock's offset from the hub's clock when the session observed it (whole seconds: the
    Date Time has a 1 s resolution, the rest of the read offset is link latency). Without an
    observed offset the stamp is taken as the hub's local time. Local time becomes epoch ms in
    the hub's zone (``datetime.timestamp`` of a naive time; ``fold`` 0 in the repeated DST hour).

    When the hub then set the device clock (``clock.adjusted``), a measurement taken *during*
    this connection is stamped with the corrected clock: its stamp lies between the hub's
    time at the clock read and the measurement's reception (``received_ms``), and keeps no
    offset. Every other stamp was made by the old clock. (A device running ahead by ``d``
    whose old-clock stamp happens to fall in that interval, a measurement taken ``d`` before
    the connection, is taken for a new one: a window as wide as the connection.)
    """
    if device_time.tzinfo is not None:
        # A stamp that names its zone (a GHS Elapsed Time in UTC): an instant already.
        return _aware_ms(device_time, clock)
    naive = device_time
    if clock is not None and clock.offset_s is not None:
        after_set = False
        if clock.adjusted and received_ms is not None:
            received = dt.datetime.fromtimestamp(received_ms / 1000)  # noqa: DTZ006 - naive local
            after_set = (
                clock.hub_time.replace(tzinfo=None) - _AFTER_SET_SLACK
                <= naive
                <= received + _AFTER_SET_SLACK
            )
        if not after_set:
            try:
                naive -= dt.timedelta(seconds=round(clock.offset_s))
            except OverflowError:
                return None
    try:
        return round(naive.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):  # out of the platform's range
        return None


def _aware_ms(device_time: dt.datetime, clock: ClockObservation | None) -> int | None:
    """Epoch ms of an aware device stamp, corrected by the session's observed offset (the
    device's clock, read as an aware time too, minus the hub's; ``gateway`` never guesses a
    zone the device did not state)."""
    try:
        if clock is not None and clock.offset_s is not None:
            device_time -= dt.timedelta(seconds=round(clock.offset_s))
        return round(device_time.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        return None


def readings_from_event(event: MeasurementEvent) -> list[Reading]:
    """The Readings of one decoded measurement (none for a display-only value; one raw record
    for a value no decoder accepted).

    The hot path of the pipeline (``narhub bench pipeline``, part "throughput"): event fields
    are read once, and each Reading is built from its fields in order (``tuple.__new__``, what
    ``Reading._make`` does, without its Python frame).
    """
    measurement = event.measurement
    characteristic = event.characteristic
    if measurement is None:
        return [] if event.error is None else _raw_record(event)
    if characteristic in _STATUS_CHARACTERISTICS:
        return []
    if characteristic in DIS_MDC and isinstance(measurement, DeviceInformationString):
        return _device_information(event, measurement.value)
    if characteristic in DIS_MDC and isinstance(measurement, SystemId):
        return _device_information(event, measurement.eui64)
    observations = to_observations(measurement)
    if not observations:
        return []
    clock = event.clock
    clock_flags: frozenset[str] = _NO_FLAGS
    offset_ms = None
    if clock is not None and clock.offset_s is not None:
        clock_flags, offset_ms = _clock(event)
    user = user_index(measurement)
    if user is not None:
        clock_flags = clock_flags | {f"{USER_INDEX_FLAG}:{user}"}
    continuous = characteristic in CONTINUOUS_CHARACTERISTICS
    device = event.device
    wall_ms = event.hub_wall_ms
    mono_ns = event.hub_mono_ns
    sequence_number = event.sequence_number
    stamped: dict[dt.datetime, int] = {}
    readings: list[Reading] = []
    append = readings.append
    for o in observations:
        value = o.value
        flags = o.flags
        if value is None and o.special is None and o.coded_value is not None:
            value, flags = _value_and_flags(o)
        if clock_flags:
            flags |= clock_flags
        device_time = o.timestamp
        source_ms = key = None
        if device_time is not None:
            source_ms = stamped.get(device_time)
            if source_ms is None:
                source_ms = device_wall_ms(device_time, clock, wall_ms)
                if source_ms is None:
                    # No time to take: the reception time stands in, and the flag says why
                    # (the reading still travels; the stamp is kept as the device sent it).
                    flags = flags | _SUSPECT_TIME
                else:
                    stamped[device_time] = source_ms
        # The record's identity on the device: the event's (a glucose RACP record), else the
        # observation's own (a CGM record: its session and time offset).
        record = sequence_number if sequence_number is not None else o.sequence_number
        if record is not None or device_time is not None:
            key = record_key(
                device,
                o.mdc_code,
                value if value is not None else o.special,
                sequence_number=record,
                device_time=device_time,
            )
        append(
            _new_reading(
                Reading,
                (
                    f"{device}/{o.mdc_code}",
                    device,
                    o.mdc_code,
                    o.unit,
                    value,
                    o.special,
                    wall_ms,
                    mono_ns,
                    device_time,
                    _CLINICAL,
                    flags,
                    key,
                    source_ms,
                    offset_ms,
                    continuous,
                ),
            )
        )
    return readings


def _alert_compounds(readings: list[Reading], alerted: set[tuple[str, int]]) -> list[Reading]:
    """The readings with the components of an alerted compound measurement alerts too.

    A threshold applies to one code (a systolic pressure), but the components of one
    measurement (systolic, diastolic, mean: flag ``component-of:150020``) are one FHIR
    Observation at the region (PHD IG PhdCompoundNumericObservation), so they travel in one
    batch: a component left ``clinical`` would leave later than its alerted sibling. Readings
    of one measurement share the device and the reception's monotonic time.
    """
    return [
        r._replace(priority=_ALERT)
        if r.priority != _ALERT and (r.device, r.hub_mono_ns) in alerted and _is_component(r)
        else r
        for r in readings
    ]


def _is_component(reading: Reading) -> bool:
    return any(f.startswith(COMPONENT_FLAG_PREFIX) for f in reading.flags)


@dataclass(frozen=True)
class PipelineSettings:
    """What the stages need from the configuration."""

    #: Shared devices: address (upper case) -> the patient's user index on it (BLS 1.0
    #: 3.1.1.5 User ID; WSS/BCS the same). Readings of other user indexes are not forwarded.
    user_slots: tuple[tuple[str, int], ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    reduction: tuple[ReductionRule, ...] = ()
    max_device_ahead_s: float = DEVICE_AHEAD_LIMIT_S


#: Called with the readings of each commit once they are durable (the activity file, tests).
OnStored = Callable[[list[Reading]], None]


class Pipeline:
    """Runs the stages and commits; one per hub (the reducer keeps per-stream state)."""

    def __init__(
        self,
        outbox: AsyncOutbox,
        settings: PipelineSettings | None = None,
        *,
        on_stored: OnStored | None = None,
    ) -> None:
        self.outbox = outbox
        self.settings = settings or PipelineSettings()
        self._thresholds: ThresholdTable = threshold_table(self.settings.thresholds)
        self._reducer = Reducer(self.settings.reduction)
        self._on_stored = on_stored
        #: Event commits under way (a cancelled caller leaves its commit running: :meth:`flush`).
        self._committing: set[asyncio.Future[int]] = set()
        #: Events whose mapping raised (a defect: logged at ERROR, the others still stored).
        self.unmappable_events = 0
        self._slots = {address.upper(): index for address, index in self.settings.user_slots}
        #: Per device: measurements of another user's slot, not forwarded.
        self.other_user_events: dict[str, int] = {}

    def _patients_slot(self, events: Sequence[MeasurementEvent]) -> Sequence[MeasurementEvent]:
        """The events of the patient's user slot (all of them on unshared devices); the
        others are counted and dropped here, never stored (another person's measurement)."""
        slots = self._slots
        if not slots:
            return events
        kept = []
        for e in events:
            slot = slots.get(e.device.upper())
            user = user_index(e.measurement)
            if slot is not None and user is not None and user != slot:
                self.other_user_events[e.device] = self.other_user_events.get(e.device, 0) + 1
                continue
            kept.append(e)
        return kept

    def set_thresholds(self, thresholds: tuple[Threshold, ...]) -> None:
        """Sort every reading processed from now on by these limits (a remote configuration
        update; readings already stored keep their priority)."""
        self.settings = dataclasses.replace(self.settings, thresholds=thresholds)
        # The pipeline reads its table on every batch; swapping the reference is atomic.
        self._thresholds = threshold_table(thresholds)

    def from_events(self, events: Sequence[MeasurementEvent]) -> list[Reading]:
        """Map decoded events to readings (stage 1).

        An event whose mapping raises (a defect, never expected) costs only itself: the
        others of the batch are mapped one by one and stored, the failure is logged by
        characteristic and exception type (no address, no value) and counted."""
        events = self._patients_slot(events)
        try:
            return [r for e in events for r in readings_from_event(e)]
        except Exception:  # noqa: BLE001 - isolated below, event by event
            out: list[Reading] = []
            for e in events:
                try:
                    out.extend(readings_from_event(e))
                except Exception as exc:  # noqa: BLE001 - one poison event, not the batch
                    self.unmappable_events += 1
                    logger.error(
                        "event of characteristic %#06x not mapped (%s): skipped",
                        e.characteristic,
                        type(exc).__name__,
                    )
            return out

    def process(self, readings: Iterable[Reading]) -> list[Reading]:
        """Stages 2-4: validate, thresholds, reduce."""
        ahead = self.settings.max_device_ahead_s
        table = self._thresholds
        out: list[Reading] = []
        append = out.append
        alerted: set[tuple[str, int]] = set()
        for r in readings:
            checked = validate(r, max_device_ahead_s=ahead)
            if FLAG_DEVICE_TIME in checked.flags:
                if checked.device_time is not None and not corrected_time_plausible(
                    checked, max_device_ahead_s=ahead
                ):
                    # A suspect time stamp is not when the measurement was taken: the
                    # reception time is the better estimate (the flag says why).
                    checked = checked._replace(source_wall_ms=None)
                checked = trusted_key(checked)
            if table:
                alert = apply_thresholds(checked, table)
                if alert is not checked and _is_component(alert):
                    alerted.add((alert.device, alert.hub_mono_ns))
                checked = alert
            append(checked)
        if alerted:
            out = _alert_compounds(out, alerted)
        return self._reducer.process(out) if self._reducer.active else out

    async def commit(self, readings: Iterable[Reading]) -> int:
        """Run the stages and store; returns the number of new readings stored, after the
        commit (only then may the source be acknowledged). A source that sends again what it
        has not seen acknowledged (a board) may cancel it: what was handed to the outbox is
        committed all the same, and a resend is stored once (:mod:`gateway.dedup`)."""
        return await self._add(self.process(readings))

    async def _add(self, stored: list[Reading]) -> int:
        if not stored:
            return 0
        count = await self.outbox.add(stored)
        if self._on_stored is not None:
            self._on_stored(stored)
        return count

    async def commit_events(self, events: Sequence[MeasurementEvent]) -> int:
        """Map, run the stages and store decoded events, then acknowledge each event (the
        central may then advance its RACP record cursors).

        Shielded: a live notification is never sent again, so once events have left the
        central's queue a cancelled caller must not lose them; the commit goes on (not
        acknowledged to the cancelled caller) and :meth:`flush` waits for it."""
        committing = asyncio.ensure_future(self.commit(self.from_events(events)))
        self._committing.add(committing)
        committing.add_done_callback(self._committing.discard)
        count = await asyncio.shield(committing)
        for event in events:
            event.acknowledge()
        return count

    async def flush(self) -> None:
        """Once the sources have stopped: wait for the commits of cancelled callers, then
        store what the reducer still holds (open windows), so a shutdown loses nothing."""
        if self._committing:
            await asyncio.wait(set(self._committing))
        await self._add(self.drain())

    def drain(self) -> list[Reading]:
        """What the reducer still holds (open windows), to store at shutdown."""
        return self._reducer.flush()
