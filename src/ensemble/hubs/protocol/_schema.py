"""Field constraints, the ``Message`` base and the per-class wire compiler.

Messages are plain frozen dataclasses.  Their type hints (with ``Annotated``
constraints such as ``Range`` and ``Length``) are read once per class, the first
time the class is registered in a ``MessageSet`` or encoded, and turned into a
flat list of per-field ``load`` (wire -> Python, validating) and ``dump``
(Python -> wire, validating) closures.  The per-frame path therefore does no
introspection: one dict lookup per field plus the checks themselves.

Supported field shapes: ``str``, ``int``, ``float``, ``bool``, ``StrEnum``
subclasses, nested frozen dataclasses, ``tuple[X, ...]`` and ``X | None``.
Anything else is a programming error and fails loudly at compile time.

Errors are raised as ``FieldError`` carrying the path to the offending field;
the codec turns them into ``ensemble.errors.InvalidInput`` with that path in
the message, so callers never see this class.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, ClassVar, Generic, TypeVar, dataclass_transform

__all__ = [
    "MAX_SAFE_INT",
    "Count",
    "FieldError",
    "Id",
    "Length",
    "Message",
    "MessageSet",
    "Millis",
    "Name",
    "Pattern",
    "Range",
    "Seq",
    "Text",
    "record_spec",
    "wire_message",
]

_C = TypeVar("_C")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def wire_message(cls: type[_C]) -> type[_C]:
    """``@dataclass(frozen=True, slots=True, kw_only=True)``, spelled so type checkers see the fields.

    (A plain ``_frozen = dataclasses.dataclass(...)`` alias works at run time,
    but mypy then sees no ``__init__`` parameters on the messages.)
    """
    return dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)


# JSON numbers beyond 2**53 lose precision in JavaScript dashboards, so every
# unbounded integer on the wire is capped there instead of at int64.
MAX_SAFE_INT = 2**53 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Range:
    """Inclusive numeric bounds for an ``int`` or ``float`` field."""

    lo: float | None = None
    hi: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Length:
    """Inclusive bounds on characters of a ``str`` or items of a tuple."""

    lo: int = 0
    hi: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Pattern:
    """A ``str`` field must fully match ``regex``; ``what`` is said on mismatch."""

    regex: str
    what: str


# Reusable field types.  Ids are opaque strings (UUIDs in practice).
Id = Annotated[str, Length(1, 128)]
Name = Annotated[str, Length(0, 256)]
Text = Annotated[str, Length(0, 2048)]
Millis = Annotated[int, Range(0, MAX_SAFE_INT)]  # Unix time in milliseconds
Count = Annotated[int, Range(0, MAX_SAFE_INT)]
Seq = Annotated[int, Range(0, MAX_SAFE_INT)]


class Message:
    """Base of every wire message.

    Subclasses are ``@dataclass(frozen=True, slots=True, kw_only=True)`` and
    set ``type`` as a ``ClassVar``: the discriminator is a property of the
    class, so it can never disagree with the fields.
    """

    __slots__ = ()
    type: ClassVar[str]


class FieldError(Exception):
    """A value failed validation; ``path`` is built while the stack unwinds."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        # Innermost part first: appending on the way out is cheaper than
        # building path strings on the happy path.
        self.path: list[str] = [] if field is None else [field]

    def dotted(self) -> str:
        out = ""
        for part in reversed(self.path):
            out += part if (part.startswith("[") or not out) else "." + part
        return out


Convert = Callable[[Any], Any]  # validates one value, returns its other form
_MISSING: Any = object()


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    load: Convert
    dump: Convert
    required: bool
    omit_none: bool  # ``X | None`` fields are left out of the frame when None


class RecordSpec:
    """Compiled wire mapping for one dataclass."""

    __slots__ = ("cls", "fields", "check", "_plan")

    def __init__(self, cls: type, fields: tuple[_Field, ...], check: Callable[[Any], None] | None) -> None:
        self.cls = cls
        self.fields = fields
        self.check = check
        # Plain tuples: unpacking them in the per-frame loops is cheaper than
        # attribute lookups on _Field.
        self._plan = tuple((f.name, f.load, f.dump, f.required, f.omit_none) for f in fields)

    def load(self, data: dict[Any, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for name, load, _, required, _ in self._plan:
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    raise FieldError("missing", name)
                continue  # the dataclass default applies
            try:
                kwargs[name] = load(value)
            except FieldError as e:
                e.path.append(name)
                raise
        obj = self.cls(**kwargs)
        if self.check is not None:
            self.check(obj)
        return obj

    def dump(self, obj: Any, out: dict[str, Any]) -> dict[str, Any]:
        if type(obj) is not self.cls:
            raise FieldError(f"must be {self.cls.__name__}, got {_describe(obj)}")
        for name, _, dump, _, omit_none in self._plan:
            value = getattr(obj, name)
            if value is None and omit_none:
                continue
            try:
                out[name] = dump(value)
            except FieldError as e:
                e.path.append(name)
                raise
        if self.check is not None:
            self.check(obj)
        return out


_SPECS: dict[type, RecordSpec] = {}


def record_spec(cls: type) -> RecordSpec:
    """The compiled spec of ``cls``, compiling it on first use."""
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _compile_record(cls)
    return spec


def _compile_record(cls: type) -> RecordSpec:
    if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} must be a frozen dataclass")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = []
    for dc_field in dataclasses.fields(cls):
        if dc_field.name == "type":
            raise TypeError(f"{cls.__name__}: 'type' is the discriminator, not a field")
        has_default = (
            dc_field.default is not dataclasses.MISSING or dc_field.default_factory is not dataclasses.MISSING
        )
        tp, meta = _strip(hints[dc_field.name])
        optional = False
        if _is_optional(tp):
            optional = True
            if dc_field.default is not None:
                raise TypeError(f"{cls.__name__}.{dc_field.name}: optional fields must default to None")
        load, dump = _compile(tp, meta)
        fields.append(_Field(dc_field.name, load, dump, not has_default, optional))
    check = getattr(cls, "_check", None)
    return RecordSpec(cls, tuple(fields), check)


def _strip(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(tp) is Annotated:
        return tp.__origin__, tuple(tp.__metadata__)
    return tp, ()


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _find(meta: tuple[Any, ...], kind: type) -> Any:
    for m in meta:
        if isinstance(m, kind):
            return m
    return None


def _compile(tp: Any, meta: tuple[Any, ...]) -> tuple[Convert, Convert]:
    """Return ``(load, dump)`` for one annotated type."""
    if _is_optional(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {tp!r}")
        inner_tp, inner_meta = _strip(args[0])
        inner_load, inner_dump = _compile(inner_tp, meta + inner_meta)
        return (
            lambda v: None if v is None else inner_load(v),
            lambda v: None if v is None else inner_dump(v),
        )
    if tp is str:
        c = _str_checker(_find(meta, Length), _find(meta, Pattern))
        return c, c
    if tp is bool:
        return _check_bool, _check_bool
    if tp is int:
        c = _int_checker(_find(meta, Range))
        return c, c
    if tp is float:
        c = _float_checker(_find(meta, Range))
        return c, c
    if isinstance(tp, type) and issubclass(tp, enum.StrEnum):
        return _enum_checkers(tp)
    if typing.get_origin(tp) is tuple:
        return _tuple_checkers(tp, _find(meta, Length))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _record_checkers(tp)
    raise TypeError(f"unsupported field type {tp!r}")


def _check_bool(v: Any) -> bool:
    if v is True or v is False:
        return v
    raise FieldError(f"must be a boolean, got {_describe(v)}")


def _str_checker(length: Length | None, pattern: Pattern | None) -> Convert:
    lo, hi = (length.lo, length.hi) if length is not None else (0, None)
    rx = re.compile(pattern.regex) if pattern is not None else None

    def check(v: Any) -> str:
        if not isinstance(v, str):
            raise FieldError(f"must be a string, got {_describe(v)}")
        n = len(v)
        if n < lo:
            raise FieldError("must not be empty" if lo == 1 else f"must have at least {lo} characters")
        if hi is not None and n > hi:
            raise FieldError(f"must have at most {hi} characters (got {n})")
        if rx is not None and rx.fullmatch(v) is None:
            assert pattern is not None
            raise FieldError(f"must be {pattern.what}")
        # json.loads turns "\ud800" into a lone surrogate that no UTF-8 socket
        # (nor msgpack) can send on; refuse it here rather than crash a broadcast.
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise FieldError("must be valid Unicode (no lone surrogates)") from None
        return v

    return check


def _range_error(v: float, rng: Range) -> FieldError | None:
    if rng.lo is not None and v < rng.lo:
        return FieldError(f"must be >= {_num(rng.lo)} (got {v})")
    if rng.hi is not None and v > rng.hi:
        return FieldError(f"must be <= {_num(rng.hi)} (got {v})")
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _int_checker(rng: Range | None) -> Convert:
    def check(v: Any) -> int:
        # bool is an int subclass; True is never a valid count.
        if type(v) is not int:
            raise FieldError(f"must be an integer, got {_describe(v)}")
        if rng is not None and (err := _range_error(v, rng)) is not None:
            raise err
        return v

    return check


def _float_checker(rng: Range | None) -> Convert:
    def check(v: Any) -> float:
        t = type(v)
        if t is int:
            v = float(v)  # JSON writes 20.0 as 20 in many encoders
        elif t is not float:
            raise FieldError(f"must be a number, got {_describe(v)}")
        if not math.isfinite(v):
            raise FieldError("must be a finite number")
        if rng is not None and (err := _range_error(v, rng)) is not None:
            raise err
        return v  # type: ignore[no-any-return]

    return check


def _enum_checkers(tp: type[enum.StrEnum]) -> tuple[Convert, Convert]:
    members = {m.value: m for m in tp}
    allowed = ", ".join(members)

    def load(v: Any) -> enum.StrEnum:
        m = members.get(v) if isinstance(v, str) else None
        if m is None:
            if isinstance(v, str):
                shown = v if len(v) <= 40 else v[:37] + "..."
                raise FieldError(f"must be one of {allowed}, got {shown!r}")
            raise FieldError(f"must be a string, got {_describe(v)}")
        return m

    def dump(v: Any) -> str:
        if not isinstance(v, tp):
            raise FieldError(f"must be {tp.__name__}, got {_describe(v)}")
        return v.value

    return load, dump


def _tuple_checkers(tp: Any, length: Length | None) -> tuple[Convert, Convert]:
    args = typing.get_args(tp)
    if len(args) != 2 or args[1] is not Ellipsis:
        raise TypeError(f"only tuple[X, ...] is supported, not {tp!r}")
    item_tp, item_meta = _strip(args[0])
    item_load, item_dump = _compile(item_tp, item_meta)
    lo, hi = (length.lo, length.hi) if length is not None else (0, None)

    def each(v: Any, conv: Convert, kinds: tuple[type, ...], what: str) -> Iterator[Any]:
        if not isinstance(v, kinds):
            raise FieldError(f"must be {what}, got {_describe(v)}")
        items = typing.cast(Sequence[Any], v)
        n = len(items)
        if n < lo:
            raise FieldError(f"must have at least {lo} items")
        if hi is not None and n > hi:
            raise FieldError(f"must have at most {hi} items (got {n})")
        for i, item in enumerate(items):
            try:
                yield conv(item)
            except FieldError as e:
                e.path.append(f"[{i}]")
                raise

    return (
        lambda v: tuple(each(v, item_load, (list, tuple), "a list")),
        lambda v: list(each(v, item_dump, (tuple,), "a tuple")),
    )


def _record_checkers(tp: type) -> tuple[Convert, Convert]:
    spec = record_spec(tp)

    def load(v: Any) -> Any:
        if not isinstance(v, dict):
            raise FieldError(f"must be an object, got {_describe(v)}")
        return spec.load(v)

    return load, lambda v: spec.dump(v, {})


M_co = TypeVar("M_co", bound=Message, covariant=True)


class MessageSet(Generic[M_co]):
    """The message types one side accepts, keyed by their ``type`` string.

    Hub and dashboard protocols reuse some type strings (``printer_status``,
    ``ping``) with different shapes, so decoding always names the set.
    """

    __slots__ = ("name", "classes", "_by_type")

    def __init__(self, name: str, *classes: type[M_co]) -> None:
        self.name = name
        self.classes = classes
        self._by_type: dict[str, tuple[type[M_co], RecordSpec]] = {}
        for cls in classes:
            if cls.type in self._by_type:
                raise TypeError(f"{name}: duplicate message type {cls.type!r}")
            self._by_type[cls.type] = (cls, record_spec(cls))

    def lookup(self, type_name: str) -> tuple[type[M_co], RecordSpec] | None:
        return self._by_type.get(type_name)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._by_type)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._by_type

    def __repr__(self) -> str:
        return f"<MessageSet {self.name}: {', '.join(sorted(self._by_type))}>"
