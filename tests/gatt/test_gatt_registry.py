"""The characteristic registry and the generator behind it.

A toy profile, declared the way a real one is (a table, the class decorator, a mapping), is
registered in a fresh :class:`Registry` so the package's own registry stays untouched.
"""

from __future__ import annotations

import ast
import enum
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from gatt_strategies import BY_CHARACTERISTIC, date_times, sfloats
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import gatt as g
from protocols.errors import EncodeError
from protocols.gatt.codec import load_all
from protocols.gatt.datetime_ import DATE_TIME_FIELD
from protocols.gatt.errors import RegistryError
from protocols.gatt.generator import Codec, slot_constructor
from protocols.gatt.kinds import SFLOAT, Enumerated, UInt
from protocols.gatt.registry import REGISTRY, Registry
from protocols.gatt.schema import Field, Flags, FlagValue, Table

PACKAGE = Path(g.__file__).parent
TOY = 0xFFA0  # a 16-bit UUID no SIG characteristic uses; the toy is not a real profile


class ToyUnit(enum.Enum):
    CELSIUS = "Cel"
    FAHRENHEIT = "[degF]"


class ToySite(enum.IntEnum):
    ARM = 1
    EAR = 2


TOY_TABLE = Table(
    flags=Flags(rfu=0xF0),
    fields=(
        Field("Reading", SFLOAT, "reading"),
        Field("Time Stamp", DATE_TIME_FIELD, "time_stamp", present=0x02),
        Field("User ID", UInt(1), "user_id", present=0x04),
        Field("Site", Enumerated(ToySite, "Site"), "site", present=0x08),
    ),
    flag_values=(FlagValue("unit", 0x01, ToyUnit.CELSIUS, ToyUnit.FAHRENHEIT),),
)


def _toy_registry() -> tuple[Registry, type]:
    registry = Registry()

    @registry.characteristic(
        TOY, "Toy Reading", gss="none (test)", service="none (test)", table=TOY_TABLE
    )
    @dataclass(frozen=True, slots=True)
    class ToyReading:
        reading: g.MedFloat
        unit: ToyUnit = ToyUnit.CELSIUS
        time_stamp: g.DateTime | None = None
        user_id: int | None = None
        site: ToySite | None = None
        corrections: frozenset[str] = frozenset()

    @registry.observations(ToyReading)
    def toy_observations(m: ToyReading) -> list[g.Observation]:
        return [g.Observation.from_medfloat(1, None, m.reading, m.unit.value, user_id=m.user_id)]

    return registry, ToyReading


REGISTRY_UNDER_TEST, ToyReading = _toy_registry()

toy_readings = st.builds(
    ToyReading,
    reading=sfloats,
    unit=st.sampled_from(ToyUnit),
    time_stamp=st.none() | date_times,
    user_id=st.none() | st.integers(0, 255),
    site=st.none() | st.sampled_from(ToySite),
)


@settings(max_examples=200, deadline=None)
@given(value=toy_readings)
def test_a_registered_profile_round_trips(value: object) -> None:
    registry = REGISTRY_UNDER_TEST
    wire = registry.encode(value)
    assert registry.decode(TOY, wire) == value
    assert registry.decode(TOY, wire) == value  # the fast path, compiled on first use
    assert registry.encode(registry.decode(TOY, wire)) == wire
    [observation] = registry.to_observations(value)
    assert observation.unit == value.unit.value  # type: ignore[attr-defined]


def test_the_toy_layout_follows_its_table() -> None:
    registry = REGISTRY_UNDER_TEST
    value = ToyReading(g.MedFloat.of("36.6"), ToyUnit.FAHRENHEIT, None, 7, ToySite.EAR)
    # Flags 0x0D (unit, user ID, site), SFLOAT 36.6 = 0xF16E, user 7, site 2.
    assert registry.encode(value) == bytes.fromhex("0d6ef10702")
    spec = registry.spec(TOY)
    assert (spec.name, spec.value_types, spec.table) == ("Toy Reading", (ToyReading,), TOY_TABLE)


@pytest.mark.parametrize(
    ("data", "offset", "reason"),
    [
        (b"", 0, "empty value: needs Flags"),
        (b"\x10\x00\x00", 0, "reserved flag bits set (0x10)"),
        (b"\x04\x00", 1, "truncated Reading: needs 2 bytes, has 1"),
        (b"\x04\x00\x00", 3, "truncated User ID: needs 1 bytes, has 0"),
        (b"\x00\x00\x00\x00", 3, "1 trailing bytes"),
        (b"\x08\x00\x00\x03", 3, "reserved Site 3"),
        (bytes.fromhex("020000e8070d01000000"), 5, "Date Time month 13 out of range"),
    ],
)
def test_the_toy_general_path_names_the_field(data: bytes, offset: int, reason: str) -> None:
    with pytest.raises(g.DecodeError) as info:
        REGISTRY_UNDER_TEST.decode(TOY, data)
    assert (info.value.characteristic, info.value.offset, info.value.reason) == (
        TOY,
        offset,
        reason,
    )


def test_a_duplicate_uuid_is_refused_and_the_first_stays() -> None:
    registry, first = _toy_registry()

    with pytest.raises(RegistryError) as info:

        @registry.characteristic(TOY, "Other", gss="-", service="-", table=TOY_TABLE)
        @dataclass(frozen=True, slots=True)
        class Other:
            reading: g.MedFloat
            unit: ToyUnit = ToyUnit.CELSIUS
            time_stamp: g.DateTime | None = None
            user_id: int | None = None
            site: ToySite | None = None

    assert info.value.key == TOY
    assert "Toy Reading" in info.value.reason
    assert isinstance(info.value, ValueError)
    assert registry.spec(TOY).value_types == (first,)
    assert isinstance(registry.decode(TOY, b"\x00\x00\x00"), first)


def test_the_package_registry_refuses_a_second_blood_pressure_measurement() -> None:
    with pytest.raises(RegistryError):
        REGISTRY.codec(
            g.BLOOD_PRESSURE_MEASUREMENT,
            "Impostor",
            gss="-",
            service="-",
            values=(),
            encode=bytes,
        )(bytes)
    assert REGISTRY.spec(g.BLOOD_PRESSURE_MEASUREMENT).name == "Blood Pressure Measurement"


def test_a_second_encoder_or_mapping_for_a_type_is_refused() -> None:
    registry, toy = _toy_registry()
    with pytest.raises(RegistryError) as info:
        registry.codec(0xFFA1, "Copy", gss="-", service="-", values=(toy,), encode=repr)(bytes)
    assert info.value.key == "ToyReading"
    assert 0xFFA1 not in registry
    with pytest.raises(RegistryError):
        registry.observations(toy)(lambda m: [])


def test_one_table_may_serve_two_uuids_with_one_encoder() -> None:
    registry, toy = _toy_registry()
    registry.characteristic(0xFFA2, "Toy Copy", gss="-", service="-", table=TOY_TABLE)(toy)
    assert registry.spec(0xFFA2).encode is registry.spec(TOY).encode


def test_a_table_that_does_not_fit_its_class_is_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class Missing:
        reading: g.MedFloat
        required: int

    with pytest.raises(TypeError, match="required"):
        Codec(
            Missing,
            Table(fields=(Field("Reading", SFLOAT, "reading"),)),
            name="x",
            characteristic=1,
        )
    with pytest.raises(TypeError, match="unknown"):
        Codec(Missing, Table(fields=(Field("R", SFLOAT, "nope"),)), name="x", characteristic=1)


def test_encoding_checks_paired_fields_and_ranges() -> None:
    with pytest.raises(EncodeError, match="go together"):
        g.encode(g.WeightMeasurement(Decimal(70), bmi_kg_m2=Decimal("22.1")))
    with pytest.raises(EncodeError, match="User ID"):
        REGISTRY_UNDER_TEST.encode(ToyReading(g.MedFloat.of(1), user_id=256))
    with pytest.raises(EncodeError):
        REGISTRY_UNDER_TEST.encode(ToyReading(g.MedFloat.of(1), unit=None))  # type: ignore[arg-type]


load_all()  # profiles load on first use; these tests walk all of them
GENERATED = sorted(u for u in REGISTRY if REGISTRY.spec(u).generated is not None)


@pytest.mark.parametrize("characteristic", GENERATED, ids=lambda c: f"0x{c:04X}")
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fast_and_general_paths_agree(characteristic: int, data: st.DataObject) -> None:
    generated = REGISTRY.spec(characteristic).generated
    assert generated is not None
    wire = g.encode(data.draw(BY_CHARACTERISTIC[characteristic]))  # type: ignore[arg-type]
    general = generated.general(wire)
    fast = generated.decode(wire)
    assert repr(fast) == repr(general)
    assert generated.decode(wire) == general


def test_every_characteristic_cites_its_specifications() -> None:
    assert set(REGISTRY) == set(g.SUPPORTED_CHARACTERISTICS)
    for uuid in REGISTRY:
        spec = REGISTRY.spec(uuid)
        assert spec.gss
        assert spec.service
        assert spec.name in spec.gss


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


# The facade, the Observation type and units, and the registry that joins codecs to mappings.
FACADE = {"__init__.py", "codec.py", "observation.py", "units.py", "registry.py"}
WIRE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in FACADE)


@pytest.mark.parametrize("path", WIRE, ids=lambda p: p.name)
def test_wire_modules_never_import_the_mapping(path: Path) -> None:
    imported = _imports(path)
    assert not {n for n in imported if n.startswith("protocols.gatt.mapping")}
    assert "protocols.gatt.observation" not in imported


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 600


def test_object_new_and_slot_setters_live_only_in_the_generator() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if path.name != "generator.py":
            assert "object.__new__" not in text, path.name
            assert ".__set__" not in text, path.name


@dataclass(frozen=True, slots=True)
class _ToyBase:
    first: int


@dataclass(frozen=True, slots=True)
class _ToyDerived(_ToyBase):
    second: str


def test_slot_constructor_sets_the_fields_a_slotted_base_declares() -> None:
    built = slot_constructor(_ToyDerived)(1, "two")
    assert built == _ToyDerived(1, "two")
    with pytest.raises(AttributeError):
        built.first = 3  # type: ignore[misc]


def _decoders_held(decoder: object) -> int:
    """The per-flags decoders a generated ``decode`` holds in its table (list or dict)."""
    held: set[int] = set()
    for name, value in decoder.__globals__.items():  # type: ignore[attr-defined]
        if name == "__builtins__":
            continue
        table = getattr(value, "__self__", value)  # a dict's bound ``get``: the dict
        if isinstance(table, dict):
            held.update(id(f) for f in table.values() if callable(f))
        elif isinstance(table, list):
            held.update(id(f) for f in table if callable(f))
    return len(held)


def test_a_16_bit_flags_codec_holds_a_decoder_only_for_the_values_seen() -> None:
    # Body Composition's 16-bit flags have 8192 valid values; a decoder (or a closure waiting
    # to compile one) for each from import on cost the hub about 3.5 MiB (issue #18).
    spec = REGISTRY.spec(g.BODY_COMPOSITION_MEASUREMENT)
    assert spec.table is not None
    assert spec.table.flags is not None
    codec = Codec(spec.value_types[0], spec.table, name=spec.name, characteristic=spec.uuid)
    assert _decoders_held(codec.decode) == 0
    wire = bytes.fromhex("00001000")  # no optional field, Body Fat Percentage 1.6 %
    assert codec.decode(wire) == codec.general(wire)
    assert codec.decode(wire) == codec.general(wire)  # the compiled decoder this time
    assert _decoders_held(codec.decode) == 1
    reserved = spec.table.flags.rfu & -spec.table.flags.rfu  # the lowest reserved bit
    with pytest.raises(g.DecodeError) as info:
        codec.decode(reserved.to_bytes(2, "little") + b"\x10\x00")
    assert (info.value.offset, info.value.reason.startswith("reserved")) == (0, True)
    assert _decoders_held(codec.decode) == 1


def test_a_one_byte_flags_codec_shares_one_first_use_decoder() -> None:
    registry, _ = _toy_registry()
    generated = registry.spec(TOY).generated
    assert generated is not None
    assert _decoders_held(generated.decode) == 2  # the general path and the first use
    generated.decode(bytes.fromhex("0d6ef10702"))
    assert _decoders_held(generated.decode) == 3
