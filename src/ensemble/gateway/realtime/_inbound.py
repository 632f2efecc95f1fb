"""Incoming WebSocket frames to events, without I/O (sans-IO).

wsproto's :class:`~wsproto.frame_protocol.FrameProtocol` does the RFC 6455
work (unmasking, fragmentation rules, UTF-8 validation of text, close-code
validation, permessage-deflate when negotiated).  On top of it this module
assembles messages and enforces the size limit *while* a message arrives:
an oversized message is reported once, its remaining fragments are dropped
as they come, and the next message parses normally.  Memory stays bounded
and the connection stays usable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from wsproto.extensions import Extension
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

__all__ = ["InboundParser", "Message", "Ping", "Pong", "PeerClose", "TooBig", "ProtocolViolation", "InboundEvent"]


@dataclass(frozen=True, slots=True)
class Message:
    payload: str | bytes  # str for text frames, bytes for binary


@dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class PeerClose:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class TooBig:
    limit: int


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke RFC 6455: the connection must be closed with ``code``."""

    code: int
    reason: str


InboundEvent = Message | Ping | Pong | PeerClose | TooBig | ProtocolViolation


def _size(chunk: str | bytes) -> int:
    if isinstance(chunk, bytes):
        return len(chunk)
    return len(chunk) if chunk.isascii() else len(chunk.encode("utf-8"))


class InboundParser:
    __slots__ = ("_protocol", "_limit", "_parts", "_size", "_dropping", "_done")

    def __init__(self, max_message_bytes: int, extensions: list[Extension] | None = None) -> None:
        self._protocol = FrameProtocol(client=False, extensions=extensions or [])
        self._limit = max_message_bytes
        self._parts: list[str | bytes] = []
        self._size = 0
        self._dropping = False
        self._done = False  # after a close frame or a violation, nothing more is parsed

    def receive(self, data: bytes) -> list[InboundEvent]:
        """Feed bytes from the socket; the events they complete, in order."""
        if self._done:
            return []
        self._protocol.receive_bytes(data)
        events: list[InboundEvent] = []
        try:
            for frame in self._protocol.received_frames():
                opcode = frame.opcode
                if opcode is Opcode.PING:
                    events.append(Ping(bytes(cast(bytes, frame.payload))))
                elif opcode is Opcode.PONG:
                    events.append(Pong(bytes(cast(bytes, frame.payload))))
                elif opcode is Opcode.CLOSE:
                    code, reason = cast(tuple[int, str], frame.payload)  # wsproto parsed it
                    events.append(PeerClose(int(code), reason))
                    self._done = True
                    break
                else:
                    event = self._data(cast("str | bytes", frame.payload), frame.message_finished)
                    if event is not None:
                        events.append(event)
        except ParseFailed as exc:
            events.append(ProtocolViolation(int(exc.code), str(exc)[:120]))
            self._done = True
        return events

    def _data(self, chunk: str | bytes, finished: bool) -> InboundEvent | None:
        event: InboundEvent | None = None
        if not self._dropping:
            self._size += _size(chunk)
            if self._size > self._limit:
                self._dropping = True
                self._parts.clear()
                event = TooBig(self._limit)
            else:
                self._parts.append(chunk)
        if finished:
            if not self._dropping:
                parts = self._parts
                if len(parts) == 1:
                    event = Message(parts[0])
                elif parts and isinstance(parts[0], str):
                    event = Message("".join(cast(list[str], parts)))
                else:
                    event = Message(b"".join(cast(list[bytes], parts)))
            self._parts = []
            self._size = 0
            self._dropping = False
        return event

