"""Hypothesis strategies for every protocol message, derived from type hints.

The derivation reads the same ``Annotated`` constraints the codec compiles, so
generated messages are valid by construction; the two cross-field rules are
restated here by hand rather than by asking the code under test.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Annotated

from hypothesis import strategies as st

from ensemble.hubs.protocol import CommandAck, FileProgress, Message
from ensemble.hubs.protocol._schema import Length, Pattern, Range

# Real-world-ish bounds keep examples small and fast; the codec's own limits
# are exercised by the bad-input table.
_MAX_ITEMS = 4
_MAX_TEXT = 40
_TEXT = st.characters(codec="utf-8")


def _meta(meta: tuple[Any, ...], kind: type) -> Any:
    return next((m for m in meta if isinstance(m, kind)), None)


def strategy_for_type(tp: Any, meta: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    if typing.get_origin(tp) is Annotated:
        return strategy_for_type(tp.__origin__, meta + tuple(tp.__metadata__))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return st.none() | strategy_for_type(inner, meta)
    if tp is str:
        pattern = _meta(meta, Pattern)
        if pattern is not None:
            return st.from_regex(pattern.regex, fullmatch=True)
        length = _meta(meta, Length) or Length()
        hi = _MAX_TEXT if length.hi is None else min(length.hi, _MAX_TEXT)
        return st.text(_TEXT, min_size=length.lo, max_size=hi)
    if tp is bool:
        return st.booleans()
    if tp is int:
        rng = _meta(meta, Range) or Range()
        lo = None if rng.lo is None else int(rng.lo)
        hi = None if rng.hi is None else int(rng.hi)
        return st.integers(lo, hi)
    if tp is float:
        rng = _meta(meta, Range) or Range()
        return st.floats(rng.lo, rng.hi, allow_nan=False, allow_infinity=False)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if typing.get_origin(tp) is tuple:
        length = _meta(meta, Length) or Length()
        item = strategy_for_type(typing.get_args(tp)[0])
        hi = _MAX_ITEMS if length.hi is None else min(length.hi, _MAX_ITEMS)
        return st.lists(item, min_size=length.lo, max_size=hi).map(tuple)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return strategy_for_class(tp)
    raise TypeError(f"no strategy for {tp!r}")


def strategy_for_class(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {f.name: strategy_for_type(hints[f.name]) for f in dataclasses.fields(cls)}
    base = st.builds(cls, **kwargs)
    # Cross-field rules, restated from the protocol description.
    if cls is CommandAck:
        return base.filter(lambda m: m.success or m.error is not None)
    if cls is FileProgress:
        return base.map(
            lambda m: dataclasses.replace(m, bytes_sent=min(m.bytes_sent, m.bytes_total))
        )
    return base


def messages(classes: typing.Iterable[type[Message]]) -> st.SearchStrategy[Message]:
    return st.one_of([strategy_for_class(c) for c in classes])
