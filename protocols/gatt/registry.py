"""The characteristic registry: 16-bit UUID -> codec spec (decode, encode, observation mapping).

A profile module declares each characteristic once, where its dataclass is defined::

    @characteristic(
        0x2A35,
        "Blood Pressure Measurement",
        gss="3.31 Blood Pressure Measurement",
        service="BLS 1.1 section 3.1",
        table=Table(...),
    )
    @dataclass(frozen=True, slots=True)
    class BloodPressureMeasurement: ...

The decorator generates the codec from the table (:class:`~protocols.gatt.generator.Codec`)
and registers it with its citations. A characteristic whose layout is not a flags-and-fields
table (the Record Access Control Point, Heart Rate's RR list, Device Information strings) is
registered with :meth:`Registry.codec` around its hand-written decoder. The mapping to
observations is registered apart, by value type, with :meth:`Registry.observations` in
:mod:`protocols.gatt.mapping`.

Registration is refused (:class:`~protocols.gatt.errors.RegistryError`) for a UUID that is
already registered, a value type that already has a different encoder or a mapping, so two
modules can never silently claim the same characteristic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from protocols.errors import EncodeError
from protocols.gatt.errors import DecodeError, RegistryError
from protocols.gatt.generator import Codec, Decoder
from protocols.gatt.schema import Table

if TYPE_CHECKING:
    from protocols.gatt.observation import Observation

T = TypeVar("T")
D = TypeVar("D", bound=Callable[[bytes], Any])

#: A value's encoder: the characteristic value bytes of a decoded (or built) value.
Encoder = Callable[[Any], bytes]
#: A value's mapping to MDC/LOINC/UCUM observations.
Mapper = Callable[[Any], "list[Observation]"]
M = TypeVar("M", bound=Mapper)


@dataclass(frozen=True, slots=True)
class CharacteristicSpec:
    """What the registry holds for one characteristic.

    Attributes:
        uuid: the 16-bit characteristic UUID.
        name: its name in the GATT Specification Supplement.
        gss: the GSS section that defines the value ("3.31 Blood Pressure Measurement").
        service: the profile or service specification section that uses it.
        value_types: the dataclasses its decoder returns (RACP has three).
        decode / encode: the codec.
        generated: the codec generated from a table, ``None`` for a hand-written one.
    """

    uuid: int
    name: str
    gss: str
    service: str
    value_types: tuple[type, ...]
    decode: Decoder
    encode: Encoder
    generated: Codec | None = None

    @property
    def table(self) -> Table | None:
        """The declaration the codec was generated from, ``None`` for a hand-written one."""
        return None if self.generated is None else self.generated.table


class Registry:
    """Characteristic specs by UUID, encoders and observation mappings by value type."""

    def __init__(self) -> None:
        self._specs: dict[int, CharacteristicSpec] = {}
        self._decoders: dict[int, Decoder] = {}
        self._encoders: dict[type, Encoder] = {}
        self._tables: dict[type, Table | None] = {}
        self._mappings: dict[type, Mapper] = {}

    # --- registration ---------------------------------------------------------------------

    def add(self, spec: CharacteristicSpec) -> CharacteristicSpec:
        """Register ``spec``; refused if its UUID is taken or a value type has another encoder.

        A value type may serve several UUIDs (Temperature Measurement and Intermediate
        Temperature; the Device Information strings) when they share one encoder or table.
        """
        if not 0 <= spec.uuid <= 0xFFFF:
            raise RegistryError(spec.uuid, "not a 16-bit UUID")
        if spec.uuid in self._specs:
            taken = self._specs[spec.uuid].name
            raise RegistryError(spec.uuid, f"already registered as {taken}")
        for value_type in spec.value_types:
            if value_type not in self._encoders:
                continue
            same_table = spec.table is not None and self._tables[value_type] is spec.table
            if not same_table and self._encoders[value_type] is not spec.encode:
                raise RegistryError(value_type.__name__, "already has another encoder")
        for value_type in spec.value_types:
            self._encoders.setdefault(value_type, spec.encode)
            self._tables.setdefault(value_type, spec.table)
        self._specs[spec.uuid] = spec
        self._decoders[spec.uuid] = spec.decode
        return spec

    def characteristic(
        self,
        uuid: int,
        name: str,
        *,
        gss: str,
        service: str,
        table: Table,
        constants: Mapping[str, object] | None = None,
    ) -> Callable[[type[T]], type[T]]:
        """Class decorator: generate the codec of ``table`` for the class and register it.

        ``constants`` are attribute values this UUID implies (``intermediate=True``).
        """

        def register(cls: type[T]) -> type[T]:
            codec = Codec(cls, table, name=name, characteristic=uuid, constants=constants)
            encoder = self._encoders.get(cls) if self._tables.get(cls) is table else None
            self.add(
                CharacteristicSpec(
                    uuid, name, gss, service, (cls,), codec.decode, encoder or codec.encode, codec
                )
            )
            return cls

        return register

    def codec(
        self,
        uuid: int,
        name: str,
        *,
        gss: str,
        service: str,
        values: tuple[type, ...],
        encode: Encoder,
    ) -> Callable[[D], D]:
        """Function decorator: register a hand-written decoder and its encoder."""

        def register(decode: D) -> D:
            self.add(CharacteristicSpec(uuid, name, gss, service, values, decode, encode))
            return decode

        return register

    def observations(self, *value_types: type) -> Callable[[M], M]:
        """Function decorator: register the observation mapping of these value types."""

        def register(mapper: M) -> M:
            for value_type in value_types:
                if value_type in self._mappings:
                    raise RegistryError(value_type.__name__, "already has an observation mapping")
            for value_type in value_types:
                self._mappings[value_type] = mapper
            return mapper

        return register

    # --- lookup ---------------------------------------------------------------------------

    def spec(self, uuid: int) -> CharacteristicSpec:
        """The spec of ``uuid``; ``KeyError`` when none is registered."""
        return self._specs[uuid]

    def mapping(self, value_type: type) -> Mapper | None:
        """The observation mapping of a value type, or ``None`` (features, clocks ...)."""
        return self._mappings.get(value_type)

    @property
    def decoders(self) -> Mapping[int, Decoder]:
        """Decoders by UUID (a live view for the dispatching facade)."""
        return self._decoders

    @property
    def encoders(self) -> Mapping[type, Encoder]:
        """Encoders by value type (a live view)."""
        return self._encoders

    @property
    def mappings(self) -> Mapping[type, Mapper]:
        """Observation mappings by value type (a live view)."""
        return self._mappings

    def __contains__(self, uuid: object) -> bool:
        return uuid in self._specs

    def __iter__(self) -> Iterator[int]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    # --- use ------------------------------------------------------------------------------

    def decode(self, uuid: int, data: bytes) -> Any:
        """Decode ``data`` as the value of ``uuid``."""
        decoder = self._decoders.get(uuid)
        if decoder is None:
            raise DecodeError(
                uuid, "characteristic", "no decoder for this characteristic", offset=0
            )
        return decoder(data)

    def encode(self, value: object) -> bytes:
        """Encode a value of a registered type."""
        encoder = self._encoders.get(type(value))
        if encoder is None:
            raise EncodeError("characteristic", f"no encoder for {type(value).__name__}")
        return encoder(value)

    def to_observations(self, value: object) -> list[Observation]:
        """The observations of a value; none for a type without a mapping."""
        mapper = self._mappings.get(type(value))
        return [] if mapper is None else mapper(value)


#: The registry of every characteristic :mod:`protocols.gatt` supports.
REGISTRY = Registry()
characteristic = REGISTRY.characteristic
codec = REGISTRY.codec
observations = REGISTRY.observations
