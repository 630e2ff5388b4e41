"""Generic Health Sensor observations: IEEE 11073-10206 (ACOM) observations as the PHD IG 2.0.0
maps them (docs/protocols/phd.md 2.11). A GHS observation carries its own MDC type code, so
the mapping is generic, by observation class:

====================== =======================================================================
class                  observations
====================== =======================================================================
numeric                one, the type's MDC code, its FLOAT value in the unit's UCUM code
compound               one per component (flag ``component-of:<type>``): the FHIR mapping
                       builds the compound Observation, as for blood pressure
simple discrete        one coded observation (``coded_value`` = the MDC code)
compound discrete evt  one coded observation per event code
string                 one, special ``"text"``, the text in the flag ``text:<string>``
sample array           one: its first value, and the whole array in the flag
                       ``sampled-data:<period ms> <factor> <origin> <raw samples...>`` for the
                       FHIR ``SampledData`` (PHD IG, RTSA: the samples as sent, with the
                       device's scale factor and offset)
compound state/event   one: the bits as an integer, masks in ``bits-supported:`` and
                       ``bits-state-event:`` flags (the IG's BITs profile)
bundle                 the members' observations; a member without a time stamp, patient or
                       status takes the bundle's
TLV-encoded, unknown   none (the bytes stay on the dataclass)
====================== =======================================================================

Times: a time-of-day stamp is taken as sent (aware UTC when the device says UTC, naive local
otherwise); a tick-counter stamp is placed on the collector's UTC timeline through the
device's Elapsed Time read in the session (the coincident time stamp,
:class:`~protocols.gatt.ghs.ReceivedHealthObservation`), with the flag
``time-from-tick-counter``; without that read it has no time (``device-time-unknown``).
Measurement Status bits become kebab-case flags, the patient becomes ``user_id``, a stored
record number ``sequence_number``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from protocols.gatt import observation as obs
from protocols.gatt.acom import (
    BundleValue,
    CompoundDiscreteEventValue,
    CompoundStateEventValue,
    CompoundValue,
    DiscreteValue,
    HealthObservation,
    NumericValue,
    ObservationValue,
    SampleArrayValue,
    StringValue,
)
from protocols.gatt.elapsed_time import ElapsedTime
from protocols.gatt.ghs import ReceivedHealthObservation, StoredHealthObservation
from protocols.gatt.medfloat import MedFloat
from protocols.gatt.registry import observations

#: MDC partition 4 (dimensions) term -> UCUM, for the unit codes GHS observations carry
#: (IEEE 11073-10101 partition 4; the terms are the Philips GHS simulator's ``UnitCode``
#: values less 4 x 65536).
UCUM_BY_MDC_DIM: dict[int, str] = {
    512: "1",  # MDC_DIM_DIMLESS
    544: "%",  # MDC_DIM_PERCENT
    1280: "m",  # MDC_DIM_M
    1297: "cm",  # MDC_DIM_CENTI_M
    1376: "[in_i]",  # MDC_DIM_INCH
    1728: "g",  # MDC_DIM_X_G
    1731: "kg",  # MDC_DIM_KILO_G
    1760: "[lb_av]",  # MDC_DIM_LB
    2130: "mg/dL",  # MDC_DIM_MILLI_G_PER_DL
    2176: "s",  # MDC_DIM_SEC
    2194: "ms",  # MDC_DIM_MILLI_SEC
    2208: "min",  # MDC_DIM_MIN
    2528: "/min",  # MDC_DIM_PER_MIN
    2720: "/min",  # MDC_DIM_BEAT_PER_MIN
    2784: "/min",  # MDC_DIM_RESP_PER_MIN
    3843: "kPa",  # MDC_DIM_KILO_PASCAL
    3872: "mm[Hg]",  # MDC_DIM_MMHG
    4274: "mV",  # MDC_DIM_MILLI_VOLT
    4416: "[degF]",  # MDC_DIM_FAHR
    4722: "mmol/L",  # MDC_DIM_MILLI_MOLE_PER_L
    6048: "Cel",  # MDC_DIM_DEGC
}

TEXT_SPECIAL = "text"
TEXT_FLAG = "text:"
SAMPLED_DATA_FLAG = "sampled-data:"
TICK_FLAG = "time-from-tick-counter"


def ucum(unit_code: int) -> str:
    """The UCUM code of an MDC unit term; an unknown term as a UCUM annotation."""
    return UCUM_BY_MDC_DIM.get(unit_code, f"{{MDC_DIM_{unit_code}}}")


def _kebab(name: str | None) -> str:
    return (name or "").lower().replace("_", "-")


@dataclasses.dataclass(frozen=True, slots=True)
class _Common:
    """What every observation of one Health Observation shares."""

    timestamp: dt.datetime | None
    flags: frozenset[str]
    user_id: int | None
    sequence_number: int | None


def _timestamp(
    stamp: ElapsedTime | None, received: ReceivedHealthObservation
) -> tuple[dt.datetime | None, frozenset[str]]:
    if stamp is None:
        return None, frozenset()
    unknown = frozenset({"device-time-unknown"})
    try:
        if not stamp.tick_counter:
            return stamp.to_datetime(), frozenset()
        clock, collector = received.clock, received.clock_collector_utc
        if clock is None or collector is None or not clock.tick_counter:
            return None, unknown
        return collector - (clock.elapsed - stamp.elapsed), frozenset({TICK_FLAG})
    except OverflowError:  # a Time Value beyond the calendar (48 bits of units)
        return None, unknown


def _common(o: HealthObservation, received: ReceivedHealthObservation) -> _Common:
    timestamp, flags = _timestamp(o.time_stamp, received)
    if o.measurement_status is not None:
        flags |= {_kebab(member.name) for member in o.measurement_status}
    if o.supplemental_information:
        flags |= {f"supplemental-type:{code}" for code in o.supplemental_information}
    if o.measurement_duration_s is not None and o.measurement_duration_s.value is not None:
        flags |= {f"measurement-duration-s:{o.measurement_duration_s.value}"}
    return _Common(timestamp, flags, o.patient_id, received.record_number)


def _numeric(
    code: int, value: MedFloat, unit: str, c: _Common, extra: frozenset[str]
) -> obs.Observation:
    return obs.Observation.from_medfloat(
        code,
        obs.MDC_TABLE.get(code, (None, None))[1],
        value,
        unit,
        timestamp=c.timestamp,
        flags=c.flags | extra,
        user_id=c.user_id,
        sequence_number=c.sequence_number,
    )


def _coded(code: int, value: int, c: _Common, extra: frozenset[str]) -> obs.Observation:
    return obs.Observation(
        code,
        None,
        None,
        None,
        "",
        timestamp=c.timestamp,
        flags=c.flags | extra,
        user_id=c.user_id,
        sequence_number=c.sequence_number,
        coded_value=value,
    )


def sampled_data_flag(value: SampleArrayValue) -> str | None:
    """``sampled-data:<period ms> <factor> <origin> <samples...>``, or ``None`` when the
    array cannot be one (a special scale, offset or period, or no samples)."""
    scale, offset, period = value.scale_factor, value.offset, value.sample_period_s
    if scale.value is None or offset.value is None or period.value is None:
        return None
    if not value.samples or not value.samples_per_period:
        return None
    interval_ms = (period.value * 1000 / value.samples_per_period).normalize()
    samples = " ".join(str(s) for s in value.raw_samples())
    return f"{SAMPLED_DATA_FLAG}{interval_ms} {scale.value} {offset.value} {samples}"


def _sample_array(code: int, value: SampleArrayValue, c: _Common) -> list[obs.Observation]:
    flag = sampled_data_flag(value)
    if flag is None or value.scale_factor.value is None or value.offset.value is None:
        return []
    first = Decimal(value.raw_samples()[0]) * value.scale_factor.value + value.offset.value
    return [
        obs.Observation(
            code,
            obs.MDC_TABLE.get(code, (None, None))[1],
            first,
            None,
            ucum(value.unit_code),
            timestamp=c.timestamp,
            flags=c.flags | {flag},
            user_id=c.user_id,
            sequence_number=c.sequence_number,
        )
    ]


def _value(
    code: int, value: ObservationValue, c: _Common, extra: frozenset[str] = frozenset()
) -> list[obs.Observation]:
    """The observations of one value of type ``code``."""
    if isinstance(value, NumericValue):
        return [_numeric(code, value.value, ucum(value.unit_code), c, extra)]
    if isinstance(value, DiscreteValue):
        return [_coded(code, value.code, c, extra)]
    if isinstance(value, CompoundDiscreteEventValue):
        return [_coded(code, event, c, extra) for event in value.codes]
    if isinstance(value, StringValue):
        return [
            obs.Observation(
                code,
                None,
                None,
                TEXT_SPECIAL,
                "1",
                timestamp=c.timestamp,
                flags=c.flags | extra | {f"{TEXT_FLAG}{value.text}"},
                user_id=c.user_id,
                sequence_number=c.sequence_number,
            )
        ]
    if isinstance(value, SampleArrayValue):
        return _sample_array(code, value, c)
    if isinstance(value, CompoundStateEventValue):
        bits = {
            f"bits-supported:0x{value.supported_mask.hex()}",
            f"bits-state-event:0x{value.state_event_mask.hex()}",
        }
        return [
            obs.Observation(
                code,
                None,
                Decimal(int.from_bytes(value.value, "little")),
                None,
                "1",
                timestamp=c.timestamp,
                flags=c.flags | extra | bits,
                user_id=c.user_id,
                sequence_number=c.sequence_number,
            )
        ]
    if isinstance(value, CompoundValue):
        part = frozenset({f"component-of:{code}"})
        return [o for comp in value.components for o in _value(comp.type, comp.value, c, part)]
    return []  # TLV-encoded and unknown classes: attributes, not observations


def _inherit(member: HealthObservation, bundle: HealthObservation) -> HealthObservation:
    """A bundle member with the bundle's common fields where it has none of its own."""
    changes = {
        name: getattr(bundle, name)
        for name in ("time_stamp", "patient_id", "measurement_status", "supplemental_information")
        if getattr(member, name) is None and getattr(bundle, name) is not None
    }
    return dataclasses.replace(member, **changes) if changes else member


def _observation(
    o: HealthObservation, received: ReceivedHealthObservation
) -> list[obs.Observation]:
    if isinstance(o.value, BundleValue):
        return [
            out
            for member in o.value.observations
            for out in _observation(_inherit(member, o), received)
        ]
    if o.observation_type is None:
        return []  # no type, nothing to name it by (ACOM requires one outside bundles)
    return _value(o.observation_type, o.value, _common(o, received))


@observations(ReceivedHealthObservation)
def received_observations(value: ReceivedHealthObservation) -> list[obs.Observation]:
    """The observations of a Live or Stored Health Observation received in a session."""
    return _observation(value.observation, value)


@observations(HealthObservation)
def live_observations(value: HealthObservation) -> list[obs.Observation]:
    """A Live Health Observation decoded on its own (no session clock)."""
    return received_observations(ReceivedHealthObservation(value))


@observations(StoredHealthObservation)
def stored_observations(value: StoredHealthObservation) -> list[obs.Observation]:
    """A Stored Health Observation decoded on its own (no session clock)."""
    return received_observations(ReceivedHealthObservation(value.observation, value.record_number))
