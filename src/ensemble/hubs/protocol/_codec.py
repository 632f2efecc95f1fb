"""Encode and decode messages as JSON text or msgpack binary frames.

Both formats carry the same envelope, ``{"type": ..., <fields>}``: ``type``
first, then the fields in declaration order, ``None`` optionals left out.
JSON is compact (no spaces), UTF-8 (``ensure_ascii=False``) and never contains
NaN/Infinity; msgpack uses the ``str``/``bin`` distinction (``use_bin_type``)
and 64-bit floats.

Decoding is strict about what it understands and tolerant of what it does not:
an oversized frame, bytes that do not parse, a frame that is not an object, an
unknown ``type``, a missing field, a wrong type or an out-of-range value are
refused; *unknown fields* are ignored (see ``_messages``).  Every refusal is an
``InvalidInput`` whose message starts with ``<type>.<field path>:`` and whose
``details["field"]`` holds the path, except a frame over ``max_size``, which is
``PayloadTooLarge`` and is refused before parsing.
"""

import json
from typing import Any, Literal, TypeAlias, TypeVar, overload

import msgpack

from ensemble.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

from ._messages import HUB_MESSAGES, HubMessage
from ._schema import FieldError, Message, MessageSet, record_spec

__all__ = ["DEFAULT_MAX_SIZE", "FORMATS", "Format", "Frame", "decode", "encode", "from_wire", "to_wire"]

Format: TypeAlias = Literal["json", "msgpack"]
FORMATS: tuple[Format, ...] = ("json", "msgpack")
Frame: TypeAlias = str | bytes | bytearray | memoryview

# Hub frames are small (a printer_status is ~300 bytes); 64 KiB leaves room for
# a hello listing many printers while bounding what one frame may cost.
DEFAULT_MAX_SIZE = 64 * 1024

M = TypeVar("M", bound=Message)

_json_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


_MISSING: Any = object()


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity by default; no other parser does.
    raise _NotJson(f"{name} is not valid JSON")


# Built once: json.loads(..., parse_constant=...) would build a decoder per call.
_json_decode = json.JSONDecoder(parse_constant=_refuse_constant).decode


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 66 else text[:63] + "..."


def _invalid(type_name: str, err: FieldError) -> InvalidInput:
    path = err.dotted()
    return InvalidInput(f"{type_name}.{path}: {err.problem}", details={"type": type_name, "field": path})


def to_wire(msg: Message) -> dict[str, Any]:
    """The envelope of ``msg`` as a plain dict, validated like a decoded frame."""
    try:
        return record_spec(type(msg)).dump(msg, {"type": msg.type})
    except FieldError as e:
        raise _invalid(msg.type, e) from None


@overload
def from_wire(obj: object) -> HubMessage: ...
@overload
def from_wire(obj: object, *, accept: MessageSet[M]) -> M: ...
def from_wire(obj: object, *, accept: MessageSet[Message] = HUB_MESSAGES) -> Message:
    """Validate an already-parsed envelope and build its message."""
    if type(obj) is not dict:
        raise InvalidInput(f"frame: must be an object, got {type(obj).__name__}", details={"field": ""})
    type_name = obj.get("type", _MISSING)
    if type_name is _MISSING:
        raise InvalidInput("type: missing", details={"field": "type"})
    if not isinstance(type_name, str):
        raise InvalidInput(f"type: must be a string, got {type(type_name).__name__}", details={"field": "type"})
    entry = accept.lookup(type_name)
    if entry is None:
        raise InvalidInput(
            f"type: unknown message type {_short(type_name)} for {accept.name}", details={"field": "type"}
        )
    try:
        msg: Message = entry[1].load(obj)
    except FieldError as e:
        raise _invalid(type_name, e) from None
    return msg


@overload
def encode(msg: Message, fmt: Literal["json"]) -> str: ...
@overload
def encode(msg: Message, fmt: Literal["msgpack"]) -> bytes: ...
@overload
def encode(msg: Message, fmt: str) -> str | bytes: ...
def encode(msg: Message, fmt: str) -> str | bytes:
    """Encode ``msg``: a ``str`` for ``"json"`` (text frame), ``bytes`` for ``"msgpack"``."""
    if fmt == "json":
        return _json_encode(to_wire(msg))
    if fmt == "msgpack":
        packed: bytes = msgpack.packb(to_wire(msg), use_bin_type=True)
        return packed
    raise UnsupportedMediaType(f"format: unknown wire format {_short(fmt)}; use json or msgpack")


def _oversize(data: Frame, max_size: int) -> int | None:
    """The frame's size in bytes if it exceeds ``max_size``, else None."""
    if not isinstance(data, str):
        n = memoryview(data).nbytes
        return n if n > max_size else None
    # A character is 1 to 4 UTF-8 bytes: only a non-ASCII text near the limit
    # needs the (copying) exact count.
    if len(data) > max_size:
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    if len(data) * 4 <= max_size or data.isascii():
        return None
    n = len(data.encode("utf-8", "surrogatepass"))
    return n if n > max_size else None


def _parse(data: Frame, fmt: str) -> object:
    if fmt == "json":
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            return _json_decode(text)
        except UnicodeDecodeError:
            raise InvalidInput("frame: not valid UTF-8", details={"field": ""}) from None
        except (ValueError, RecursionError) as e:
            raise InvalidInput(f"frame: not valid JSON ({e})", details={"field": ""}) from None
    if fmt == "msgpack":
        if isinstance(data, str):
            raise InvalidInput("frame: msgpack frames must be binary", details={"field": ""})
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
        except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as e:
            # ValueError covers ExtraData, FormatError, StackError and invalid
            # UTF-8 in str; TypeError an unhashable map key.
            raise InvalidInput(f"frame: not valid msgpack ({type(e).__name__})", details={"field": ""}) from None
    raise UnsupportedMediaType(f"format: unknown wire format {_short(fmt)}; use json or msgpack")


@overload
def decode(data: Frame, fmt: str, *, max_size: int = DEFAULT_MAX_SIZE) -> HubMessage: ...
@overload
def decode(data: Frame, fmt: str, *, accept: MessageSet[M], max_size: int = DEFAULT_MAX_SIZE) -> M: ...
def decode(
    data: Frame, fmt: str, *, accept: MessageSet[Message] = HUB_MESSAGES, max_size: int = DEFAULT_MAX_SIZE
) -> Message:
    """Parse and validate one frame.

    ``accept`` is the set of message types this side may receive: the server
    passes ``FROM_HUB`` or ``FROM_DASHBOARD``, the agent ``TO_HUB``.  The
    default, ``HUB_MESSAGES``, accepts both directions of the hub protocol.
    """
    size = _oversize(data, max_size)
    if size is not None:
        raise PayloadTooLarge(
            f"frame: {size} bytes exceeds the limit of {max_size}",
            details={"field": "", "size": size, "max_size": max_size},
        )
    return from_wire(_parse(data, fmt), accept=accept)
