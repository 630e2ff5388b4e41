"""The one generator of fast paths: decoders, encoders and constructors built from tables.

A frozen dataclass sets each field through ``object.__setattr__`` (about 150 ns a field); the
slot descriptor's own ``__set__`` does the same job in a third of the time, and
``object.__new__`` skips ``__init__`` altogether. Those tricks are written here once, as
generated source, instead of by hand in every profile (as construct compiles a ``Struct`` and
dataclasses build ``__init__``):

* :func:`slot_constructor` / :func:`emit_construct`: build an instance of a slotted frozen
  dataclass from values already validated (no ``__post_init__`` runs; the instance is equal to
  one built by ``__init__`` and stays immutable).
* :func:`fast_init`: a class decorator that replaces a dataclass's generated ``__init__`` with
  one that sets the slots directly (same signature and defaults).
* :class:`Codec`: from a :class:`~protocols.gatt.schema.Table` and its dataclass, a decoder
  with one specialised function per flags value (compiled on first use: one exact length
  check, one precompiled ``struct`` unpack, inline checks, slot construction), a general path
  that validates field by field and raises the precise
  :class:`~protocols.gatt.DecodeError`, and an encoder.

The fast path never raises for bad bytes: anything it does not accept goes to the general
path, which either names the problem or builds the value (a first-seen status value, say).
Generated source only ever comes from the tables in this package, never from input bytes.
"""

from __future__ import annotations

import dataclasses
import struct
import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from protocols.errors import EncodeError
from protocols.gatt._wire import fail, length_error
from protocols.gatt.schema import BAIL, Field, Kind, Layout, Source, Table

T = TypeVar("T")

#: A characteristic decoder: value bytes in, a frozen dataclass out.
Decoder = Callable[[bytes], Any]

_new = object.__new__

#: Most valid values a flags header may have (each gets a decoder, compiled on first use):
#: Body Composition Measurement's 16-bit flags define 13 bits (BCS 1.0), 8192 values.
_MAX_FLAG_VALUES = 8192


_SETTERS: dict[type, Mapping[str, Callable[[object, object], None]]] = {}


def slot_setters(cls: type) -> Mapping[str, Callable[[object, object], None]]:
    """The slot descriptors' ``__set__`` of a slotted dataclass, in field order (cached); a
    field inherited from a slotted base dataclass has its descriptor in that base."""
    known = _SETTERS.get(cls)
    if known is not None:
        return known
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    setters: dict[str, Callable[[object, object], None]] = {}
    for f in dataclasses.fields(cls):
        owner = next((k for k in cls.__mro__ if f.name in k.__dict__), cls)
        descriptor = owner.__dict__.get(f.name)
        if not isinstance(descriptor, types.MemberDescriptorType):
            raise TypeError(f"{cls.__name__} needs slots=True for generated construction")
        setters[f.name] = descriptor.__set__
    known = _SETTERS[cls] = types.MappingProxyType(setters)
    return known


def emit_construct(src: Source, cls: type, values: Mapping[str, str]) -> str:
    """Emit statements that build ``cls`` from attribute expressions; the local holding it.

    Every dataclass field must have an expression; the values must be valid already.
    """
    setters = slot_setters(cls)
    if set(values) != set(setters):
        missing, extra = set(setters) - set(values), set(values) - set(setters)
        raise TypeError(f"{cls.__name__}: missing {sorted(missing)}, unknown {sorted(extra)}")
    obj = src.local("o")
    src.line(f"{obj} = {src.const(_new, 'new')}({src.const(cls, cls.__name__)})")
    for name, setter in setters.items():
        src.line(f"{src.const(setter, 'set_' + name)}({obj}, {values[name]})")
    return obj


def _compile(src: Source, name: str, params: str) -> Callable[..., Any]:
    text = f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in src.lines)
    namespace = dict(src.namespace)
    exec(text, namespace)  # noqa: S102 - source generated above from this package's tables
    function: Callable[..., Any] = namespace[name]  # type: ignore[assignment]
    return function


def slot_constructor(cls: type[T]) -> Callable[..., T]:
    """A positional constructor (fields in order) that skips ``__init__`` (see module doc)."""
    names = list(slot_setters(cls))
    src = Source()
    src.line(f"return {emit_construct(src, cls, {n: n for n in names})}")
    return _compile(src, f"new_{cls.__name__}", ", ".join(names))


def fast_init(cls: type[T]) -> type[T]:
    """Class decorator: replace the dataclass ``__init__`` by one that sets the slots.

    The signature and defaults are the dataclass's own; assignment afterwards still raises
    ``FrozenInstanceError``. For classes without ``__post_init__`` or factories.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__; its __init__ must run")
    src = Source()
    params = ["self"]
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: keyword-only or factory default")
        has_default = f.default is not dataclasses.MISSING
        params.append(f"{f.name}={src.const(f.default, 'default')}" if has_default else f.name)
    for name, setter in slot_setters(cls).items():
        src.line(f"{src.const(setter, 'set_' + name)}(self, {name})")
    init = _compile(src, "__init__", ", ".join(params))
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = f"Initialise a {cls.__name__} (generated: slots set directly)."
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@dataclasses.dataclass(frozen=True, slots=True)
class _Placed:
    """A field present in a plan: its kind for these flags, byte offset and raw values."""

    field: Field
    kind: Kind
    offset: int
    first: int
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """The wire layout for one flags value: present fields, ``struct``, error layout."""

    flags: int
    placed: tuple[_Placed, ...]
    struct: struct.Struct
    layout: Layout


class Codec:
    """The generated codec of one characteristic: ``table`` read into dataclass ``cls``.

    Attributes:
        decode: the decoder (strict; raises :class:`~protocols.gatt.DecodeError`).
        name / characteristic: the GSS name and 16-bit UUID used in errors.
    """

    def __init__(
        self,
        cls: type,
        table: Table,
        *,
        name: str,
        characteristic: int,
        constants: Mapping[str, object] | None = None,
    ) -> None:
        self.cls = cls
        self.table = table
        self.name = name
        self.characteristic = characteristic
        self.constants = dict(constants or {})
        self._plans: dict[int, Plan] = {}
        self._defaults = _check(cls, table, self.constants)
        self._groups = _groups(table)
        self.decode: Decoder = self._decoder()

    # --- layout ---------------------------------------------------------------------------

    def plan(self, flags: int) -> Plan:
        """The layout of a value with these flags (cached)."""
        plan = self._plans.get(flags)
        if plan is None:
            plan = self._plans[flags] = self._make_plan(flags)
        return plan

    def _make_plan(self, flags: int) -> Plan:
        header = self.table.flags
        fmt = "<"
        layout: list[tuple[str, int]] = []
        offset = first = 0
        if header is not None:
            fmt += "B" if header.size == 1 else "H"
            layout.append((header.name, header.size))
            offset, first = header.size, 1
        placed = []
        for f in self.table.fields:
            if f.present and flags & f.present != f.present:
                continue
            kind = f.kind.specialise(flags)
            placed.append(_Placed(f, kind, offset, first, len(kind.fmt)))
            fmt += kind.fmt
            layout += kind.layout(f.name)
            offset += kind.size
            first += len(kind.fmt)
        return Plan(flags, tuple(placed), struct.Struct(fmt), tuple(layout))

    def _fixed_values(self, flags: int) -> dict[str, object]:
        """Attribute values that follow from the flags alone, constants and defaults."""
        values: dict[str, object] = dict(self._defaults)
        header = self.table.flags
        if header is not None and header.attr is not None:
            values[header.attr] = header.convert(flags)
        for fv in self.table.flag_values:
            values[fv.attr] = fv.when_set if flags & fv.mask else fv.clear
        values.update(self.constants)
        for f in self.table.fields:
            if f.present and flags & f.present != f.present:
                values.update(dict.fromkeys(f.attrs))
        return values

    def _conflicts(self, plan: Plan) -> list[tuple[_Placed, int, str, str, int]]:
        out: list[tuple[_Placed, int, str, str, int]] = []
        for c in self.table.conflicts:
            if plan.flags & c.flags != c.flags:
                continue
            out.extend(
                (placed, c.raw, c.reason, c.encode_reason, c.offset)
                for placed in plan.placed
                if placed.field.name == c.field
            )
        return out

    # --- decoding -------------------------------------------------------------------------

    def _decoder(self) -> Decoder:
        header = self.table.flags
        if header is None:
            return self._fast(0)
        bits = 8 * header.size
        valid = 1 << (bits - (header.rfu & ((1 << bits) - 1)).bit_count())
        if valid > _MAX_FLAG_VALUES:
            raise TypeError(f"{self.name}: more than {_MAX_FLAG_VALUES} valid flags values")
        src = Source()
        src.namespace["_g_general"] = self.general
        if header.size == 1:
            slots: list[Decoder] = [self.general] * 256
            first_use = self._on_first_use(slots)
            for f in range(256):
                if not f & header.rfu:
                    slots[f] = first_use
            src.line("if data:")
            src.line(f"    return {src.const(slots, 'fast')}[data[0]](data)")
        else:
            by_flags: dict[int, Decoder] = {}
            first_use = self._on_first_use(by_flags)
            src.line("if len(data) >= 2:")
            get = src.const(by_flags.get, "fast")
            first = src.const(first_use, "first_use")
            src.line(f"    return {get}(data[0] | data[1] << 8, {first})(data)")
        src.line(BAIL)
        decoder = _compile(src, "decode", "data")
        decoder.__doc__ = f"Decode {self.name} (0x{self.characteristic:04X}) strictly."
        return decoder

    def _on_first_use(self, slots: Any) -> Decoder:
        """The one decoder of every flags value not compiled yet: it compiles that value's
        decoder into ``slots`` and decodes with it (reserved bits go to :meth:`general`).

        One function for the whole codec, not one per flags value: Body Composition's 8192
        valid values would otherwise hold 8192 closures from import on (issue #18: memory)."""
        header = self.table.flags
        assert header is not None
        rfu, size = header.rfu, header.size

        def first_use(data: bytes) -> Any:
            flags = int.from_bytes(data[:size], "little")
            if flags & rfu:
                return self.general(data)
            fast = slots[flags] = self._fast(flags)
            return fast(data)

        return first_use

    def _fast(self, flags: int) -> Decoder:
        """Generate the decoder of values with these flags (see the module docstring)."""
        plan = self.plan(flags)
        src = Source()
        src.namespace["_g_general"] = self.general
        src.line(f"if len(data) != {plan.struct.size}: {BAIL}")
        count = len(plan.struct.unpack(bytes(plan.struct.size)))
        raws = [f"_r{i}" for i in range(count)]
        if plan.struct.format == "<B":  # one byte: indexing beats a struct call
            src.line("_r0 = data[0]")
        else:
            targets = ["_", *raws[1:]] if self.table.flags is not None else raws
            src.line(f"{', '.join(targets)}, = {src.const(plan.struct.unpack, 'unpack')}(data)")
        values = {a: _literal(src, v) for a, v in self._fixed_values(flags).items()}
        for p in plan.placed:
            exprs = p.kind.emit(src, raws[p.first : p.first + p.count])
            values.update(zip(p.field.attrs, exprs, strict=True))
        for placed, raw, *_ in self._conflicts(plan):
            src.line(f"if {raws[placed.first]} == {raw}: {BAIL}")
        src.line(f"return {emit_construct(src, self.cls, values)}")
        return _compile(src, f"decode_{self.characteristic:04x}_{flags:02x}", "data")

    def general(self, data: bytes) -> Any:
        """Validate field by field and build; raises the precise :class:`DecodeError`."""
        flags = self._header(data)
        plan = self.plan(flags)
        if self.table.sequential_errors:
            self._walk_sequential(data, plan)
        elif len(data) != plan.struct.size:
            raise length_error(self.characteristic, self.name, plan.layout, len(data))
        raws = plan.struct.unpack(data)
        for p in plan.placed:
            self._check(p, raws[p.first : p.first + p.count])
        for placed, raw, reason, _, offset in self._conflicts(plan):
            if raws[placed.first] == raw:
                fail(self.characteristic, self.name, reason, offset)
        values = self._fixed_values(flags)
        for p in plan.placed:
            built = p.kind.build(raws[p.first : p.first + p.count])
            values.update(zip(p.field.attrs, built, strict=True))
        return self.cls(**values)

    def _header(self, data: bytes) -> int:
        header, n = self.table.flags, len(data)
        if header is None:
            return 0
        if self.table.sequential_errors:
            self._check_mandatory(data)
        elif n < header.size:
            if n == 0 and header.size == 1:
                fail(self.characteristic, self.name, "empty value: needs Flags", 0)
            raise length_error(self.characteristic, self.name, ((header.name, header.size),), n)
        flags = int.from_bytes(data[: header.size], "little")
        if flags & header.rfu:
            reason = f"reserved {header.label} bits set (0x{flags:0{2 * header.size}X})"
            fail(self.characteristic, self.name, reason, 0)
        return flags

    def _check(self, p: _Placed, raws: tuple[int, ...]) -> None:
        problem = p.kind.check(raws)
        if problem is not None:
            fail(self.characteristic, self.name, problem[0], p.offset + problem[1])

    def _check_mandatory(self, data: bytes) -> None:
        """Sequential errors: the header and always-present fields must fit first."""
        header = self.table.flags
        entries = [(header.name, header.size)] if header is not None else []
        entries += [(f.name, f.kind.size) for f in self.table.fields if not f.present]
        offset = 0
        for name, size in entries:
            if len(data) < offset + size:
                fail(self.characteristic, self.name, f"truncated {name}", offset)
            offset += size

    def _walk_sequential(self, data: bytes, plan: Plan) -> None:
        """Sequential errors: each field in wire order, truncation first, then its check."""
        n = len(data)
        for p in plan.placed:
            if n < p.offset + p.kind.size:
                fail(self.characteristic, self.name, f"truncated {p.field.name}", p.offset)
            self._check(p, struct.unpack_from("<" + p.kind.fmt, data, p.offset))
        if n != plan.struct.size:
            reason = f"{n - plan.struct.size} trailing bytes"
            fail(self.characteristic, self.name, reason, plan.struct.size)

    # --- encoding -------------------------------------------------------------------------

    def encode(self, value: Any) -> bytes:
        """The characteristic value of ``value``; flags follow from the fields that are set.

        Raises :class:`~protocols.errors.EncodeError` for a value the layout cannot carry.
        """
        flags = self._encode_flags(value)
        plan = self.plan(flags)
        raws: list[int] = [flags] if self.table.flags is not None else []
        for p in plan.placed:
            attrs = tuple(getattr(value, a) for a in p.field.attrs)
            raws.extend(p.kind.encode(attrs, self.name, p.field.name))
        for placed, raw, _, encode_reason, _ in self._conflicts(plan):
            if raws[placed.first] == raw:
                raise EncodeError(self.name, encode_reason)
        return plan.struct.pack(*raws)

    def _encode_flags(self, value: Any) -> int:
        header, flags = self.table.flags, 0
        by_header = header.name if header is not None and header.attr is not None else None
        if header is not None and header.attr is not None:
            flags = int(getattr(value, header.attr))
            if not 0 <= flags < 1 << (8 * header.size) or flags & header.rfu:
                reason = f"reserved {header.name} bits in 0x{flags:0{2 * header.size}X}"
                raise EncodeError(self.name, reason)
        for fv in self.table.flag_values:
            attr = getattr(value, fv.attr)
            if not fv.is_bool and attr is not fv.clear and attr is not fv.when_set:
                raise EncodeError(self.name, f"{fv.attr}: neither {fv.clear} nor {fv.when_set}")
            if bool(attr) if fv.is_bool else attr is fv.when_set:
                flags |= fv.mask
        for mask, fields in self._groups.items():
            present = [getattr(value, a) is not None for f in fields for a in f.attrs]
            names = " and ".join(f.name for f in fields)
            if any(present) and not all(present):
                raise EncodeError(self.name, f"{names} go together")
            if by_header is not None and (flags & mask == mask) != all(present):
                raise EncodeError(self.name, f"{names} must match the {by_header} bits")
            if all(present):
                flags |= mask
        return flags


def _literal(src: Source, value: object) -> str:
    return repr(value) if value is None or isinstance(value, bool) else src.const(value, "value")


def _groups(table: Table) -> dict[int, list[Field]]:
    """Optional fields by the flag bits that make them present (a pair shares its bits)."""
    groups: dict[int, list[Field]] = {}
    for f in table.fields:
        if f.present:
            groups.setdefault(f.present, []).append(f)
    return groups


def _check(cls: type, table: Table, constants: Mapping[str, object]) -> dict[str, object]:
    """Check a table against its dataclass; the defaults of the attributes it does not fill."""
    slots = {s.name: s for s in dataclasses.fields(cls)}
    filled: list[str] = [a for f in table.fields for a in f.attrs]
    filled += [fv.attr for fv in table.flag_values] + list(constants)
    if table.flags is not None and table.flags.attr is not None:
        filled.append(table.flags.attr)
    for f in table.fields:
        if len(f.attrs) != f.kind.width:
            raise TypeError(f"{cls.__name__}: field {f.name} fills {f.kind.width} attributes")
    unknown = sorted(set(filled) - set(slots))
    twice = sorted({a for a in filled if filled.count(a) > 1})
    if unknown or twice:
        raise TypeError(f"{cls.__name__}: unknown attributes {unknown}, filled twice {twice}")
    defaults: dict[str, object] = {}
    for name, slot in slots.items():
        if name in filled:
            continue
        if slot.default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{name} is neither in the table nor defaulted")
        defaults[name] = slot.default
    return defaults
