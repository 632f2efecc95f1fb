"""A local stand-in for the Anthropic Messages API, spoken over real HTTP.

The server under test reaches it through ``ENSEMBLE_AI_BASE_URL``, so the
real SDK, its HTTP client, retries and SSE parsing all run; only the far end
is ours.  Responses use the API's formats: the ``text/event-stream`` of a
streamed message (message_start, content_block_start, ping,
content_block_delta/text_delta..., content_block_stop, message_delta with
usage, message_stop), error bodies ``{"type": "error", "error": {...}}`` and
the mid-stream ``event: error``.

Each request takes the next scripted behaviour (``fake.script.append(...)``),
or :attr:`FakeAnthropic.default` when the script is empty.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import h11
import trio

MODEL = "claude-sonnet-4-6"


@dataclass
class Reply:
    pieces: list[str]
    input_tokens: int = 1200
    output_tokens: int = 80
    cache_read_tokens: int = 0
    cache_write_tokens: int = 900
    stop_reason: str = "end_turn"
    delay: float = 0.0  # between deltas


@dataclass
class Fail:
    status: int
    type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BreakStream:
    """Some deltas, then an ``event: error`` (what an overloaded API does mid-answer)."""

    pieces: list[str]
    error_type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass
class Hang:
    """Headers and the first events, then nothing: the client must give up on its own."""

    pieces: list[str] = field(default_factory=list)


Behaviour = Reply | Fail | BreakStream | Hang


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def _message_start(reply_usage: dict[str, int]) -> bytes:
    return _event("message_start", {
        "type": "message_start",
        "message": {
            "id": f"msg_{secrets.token_hex(12)}", "type": "message", "role": "assistant", "model": MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": reply_usage,
        },
    })


def _start_events(usage: dict[str, int]) -> list[bytes]:
    return [
        _message_start(usage),
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        _event("ping", {"type": "ping"}),
    ]


def _delta(text: str) -> bytes:
    return _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


class FakeAnthropic:
    def __init__(self) -> None:
        self.url = ""
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: deque[Behaviour] = deque()
        self.default: Callable[[dict[str, Any]], Behaviour] = lambda body: Reply(["Check the capacitor ", "first [1]."])

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def serve(self, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        task_status.started(f"http://127.0.0.1:{port}")
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                head = await _next(conn, stream)
                if not isinstance(head, h11.Request):
                    return
                body = b""
                while True:
                    event = await _next(conn, stream)
                    if isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
                headers = {k.decode().lower(): v.decode() for k, v in head.headers}
                await self._answer(conn, stream, body, headers)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return
        finally:
            await stream.aclose()

    async def _answer(self, conn: h11.Connection, stream: trio.SocketStream, body: bytes, headers: dict[str, str]) -> None:
        request = json.loads(body)
        self.requests.append(request)
        self.headers.append(headers)
        behaviour = self.script.popleft() if self.script else self.default(request)

        async def send(event: Any) -> None:
            data = conn.send(event)
            if data:
                await stream.send_all(data)

        if isinstance(behaviour, Fail):
            payload = json.dumps({"type": "error", "error": {"type": behaviour.type, "message": behaviour.message},
                                  "request_id": "req_fake"}).encode()
            await send(h11.Response(status_code=behaviour.status, headers=[
                ("content-type", "application/json"), ("content-length", str(len(payload))), ("request-id", "req_fake"),
                *behaviour.headers.items(),
            ]))
            await send(h11.Data(data=payload))
            await send(h11.EndOfMessage())
            return
        await send(h11.Response(status_code=200, headers=[
            ("content-type", "text/event-stream"), ("transfer-encoding", "chunked"), ("request-id", "req_fake"),
        ]))
        if isinstance(behaviour, Reply):
            usage = {"input_tokens": behaviour.input_tokens, "cache_creation_input_tokens": behaviour.cache_write_tokens,
                     "cache_read_input_tokens": behaviour.cache_read_tokens, "output_tokens": 1}
            for chunk in _start_events(usage):
                await send(h11.Data(data=chunk))
            for piece in behaviour.pieces:
                if behaviour.delay:
                    await trio.sleep(behaviour.delay)
                await send(h11.Data(data=_delta(piece)))
            for chunk in (
                _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
                _event("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": behaviour.stop_reason, "stop_sequence": None},
                                         "usage": {"output_tokens": behaviour.output_tokens}}),
                _event("message_stop", {"type": "message_stop"}),
            ):
                await send(h11.Data(data=chunk))
        elif isinstance(behaviour, BreakStream):
            for chunk in _start_events({"input_tokens": 10, "output_tokens": 1}):
                await send(h11.Data(data=chunk))
            for piece in behaviour.pieces:
                await send(h11.Data(data=_delta(piece)))
            await send(h11.Data(data=_event("error", {"type": "error", "error": {"type": behaviour.error_type,
                                                                                "message": behaviour.message}})))
        else:  # Hang
            for chunk in _start_events({"input_tokens": 10, "output_tokens": 1}):
                await send(h11.Data(data=chunk))
            for piece in behaviour.pieces:
                await send(h11.Data(data=_delta(piece)))
            await trio.sleep_forever()
        await send(h11.EndOfMessage())


async def _next(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            continue
        return event


@asynccontextmanager
async def open_fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    async with trio.open_nursery() as nursery:
        fake.url = await nursery.start(fake.serve)
        try:
            yield fake
        finally:
            nursery.cancel_scope.cancel()
