"""Characteristic values as declarative tables: the vocabulary every codec is generated from.

The GATT Specification Supplement (GSS) describes each characteristic value as a table: an
optional Flags field, then fields in wire order, each one always present or present when a
flag bit is set, with the flags' remaining bits selecting a unit or marking a fact. A
:class:`Table` writes that table down once, field by field, in the GSS's own field names:

* :class:`Field`: a wire field (its GSS name, its :class:`Kind`, the dataclass attribute or
  attributes it fills and the flag bits that make it present),
* :class:`Flags`: the flags header (its reserved bits, and for PLX Features the header *is* a
  value: Supported Features),
* :class:`FlagValue`: an attribute a flag bit selects (a unit, "context follows"),
* :class:`Conflict`: a field value that rules out flagged fields (Weight 0xFFFF).

:mod:`protocols.gatt.generator` builds the decoder (one specialised fast path per flags value,
and one general path that names the first bad field), the encoder and the error layouts from a
table, the way construct compiles a ``Struct`` and bumble builds HCI packet classes from their
field lists. :mod:`protocols.gatt.kinds` holds the field kinds shared by the profiles.

A :class:`Kind` describes one field type to the generator: the ``struct`` format of its raw
values, a snippet of Python for the fast path (which may bail out to the general path), the
check that names what is wrong, the builder used by the general path and the encoder.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: The statement a fast-path snippet uses to hand a value to the general path, which either
#: raises the precise :class:`~protocols.gatt.DecodeError` or builds the value (a cache miss).
BAIL = "return _g_general(data)"

#: A problem found by :meth:`Kind.check`: (reason, offset relative to the field's first byte).
Problem = tuple[str, int]

#: An error layout: ``(field name, size in bytes)`` in wire order.
Layout = tuple[tuple[str, int], ...]


class Source:
    """Python source being generated, and the namespace its names resolve in.

    Generated code only ever refers to names made by :meth:`const` (prefixed ``_g_``), to the
    raw-value locals the generator hands to each kind and to locals made by :meth:`local`
    (prefixed ``_l_``), so no name can shadow another.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, object] = {}
        self._locals = 0

    def const(self, value: object, hint: str) -> str:
        """A name bound to ``value`` in the generated code's namespace."""
        for name, bound in self.namespace.items():
            if bound is value:
                return name
        name = f"_g_{hint}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def local(self, hint: str) -> str:
        """A fresh local variable name."""
        self._locals += 1
        return f"_l_{hint}{self._locals}"

    def line(self, text: str) -> None:
        """Append one statement (indented by the caller's convention: one level)."""
        self.lines.append(text)


class Kind(abc.ABC):
    """One wire field type: how its bytes are read, checked, built and written.

    Attributes:
        fmt: the ``struct`` format letters of its raw values (little-endian, one letter per
            raw value, no counts).
        size: its size in bytes.
        width: how many dataclass attributes it fills (1, or more for a packed byte).
    """

    fmt: str
    size: int
    width: int = 1

    def specialise(self, flags: int) -> Kind:
        """The kind to use when the characteristic's flags are ``flags`` (default: itself)."""
        del flags
        return self

    def layout(self, name: str) -> Layout:
        """The error layout entries of a field of this kind named ``name``."""
        return ((name, self.size),)

    @abc.abstractmethod
    def emit(self, src: Source, raws: Sequence[str]) -> tuple[str, ...]:
        """Emit fast-path statements; return one expression per attribute.

        ``raws`` are the names of the local variables holding this field's raw values. A
        statement may be ``if <invalid>: <BAIL>``; the expressions are evaluated once each.
        """

    def check(self, raws: Sequence[int]) -> Problem | None:
        """The first problem with these raw values, or ``None`` (default: any is valid)."""
        del raws
        return None

    @abc.abstractmethod
    def build(self, raws: Sequence[int]) -> tuple[object, ...]:
        """The attribute values of raw values that passed :meth:`check`."""

    @abc.abstractmethod
    def encode(self, values: Sequence[object], what: str, name: str) -> tuple[int, ...]:
        """The raw values to pack for these attribute values.

        Raises :class:`~protocols.errors.EncodeError` (``what`` names the characteristic,
        ``name`` the field) when a value cannot be represented exactly.
        """


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a characteristic value, in wire order.

    Attributes:
        name: the field's name in the GSS (used in errors: "truncated Time Stamp").
        kind: its wire type.
        attr: the dataclass attribute it fills, or a tuple of them for a kind of width > 1.
        present: the flag bits that must all be set for the field to be on the wire; 0 when
            it always is. Fields with the same bits are set together (a pair).
    """

    name: str
    kind: Kind
    attr: str | tuple[str, ...]
    present: int = 0

    @property
    def attrs(self) -> tuple[str, ...]:
        """The attributes this field fills, in the kind's output order."""
        return (self.attr,) if isinstance(self.attr, str) else self.attr


@dataclass(frozen=True, slots=True)
class Flags:
    """The flags header at offset 0.

    Attributes:
        rfu: reserved bits; a value with any of them set is rejected.
        size: 1, or 2 for a 16-bit header.
        name: its GSS name ("Flags", "Supported Features").
        attr: the attribute that keeps the header as a value (PLX Features), else ``None``.
        convert: turns the raw header into that attribute's value (an ``IntFlag``).
    """

    rfu: int
    size: int = 1
    name: str = "Flags"
    attr: str | None = None
    convert: Callable[[int], object] = int

    @property
    def label(self) -> str:
        """How errors name the header's bits ("reserved flag bits set")."""
        return "flag" if self.name == "Flags" else self.name


@dataclass(frozen=True, slots=True)
class FlagValue:
    """An attribute selected by a flag bit: ``when_set`` if ``mask`` is set, else ``clear``.

    With ``clear=False, when_set=True`` the attribute is a boolean and encodes by truth;
    otherwise it must be one of the two (a unit) and encodes the bit when it *is* ``when_set``.
    """

    attr: str
    mask: int
    clear: object
    when_set: object

    @property
    def is_bool(self) -> bool:
        """True for a boolean attribute."""
        return self.clear is False and self.when_set is True


@dataclass(frozen=True, slots=True)
class Conflict:
    """A raw value of one field that forbids the fields of flag bits ``flags``.

    GSS 3.252.2.2 (Weight): when the weight is "Measurement Unsuccessful" (0xFFFF), the BMI and
    Height fields "shall be disabled".
    """

    field: str
    raw: int
    flags: int
    reason: str
    encode_reason: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Table:
    """A characteristic value's layout: flags header, fields, flag-selected attributes.

    ``sequential_errors``: the general path reports problems in wire order, truncation
    included ("truncated Time Stamp" before a bad Temperature Type), as the Health Thermometer
    codec always has; by default the length is checked against the flags' layout first.
    """

    fields: tuple[Field, ...]
    flags: Flags | None = None
    flag_values: tuple[FlagValue, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    sequential_errors: bool = False
