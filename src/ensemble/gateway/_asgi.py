"""ASGI middleware: never answer before the request body is in.

Theory of operation
-------------------
A route may answer before reading the request body (401, 403, 404, 429,
413 ...).  On Hypercorn's HTTP/1.1 protocol that can wedge the connection:
the unread body chunks wait in the app's receive queue (10 messages), and
when the response ends Hypercorn puts one more message ("disconnect") into
that full queue from the task that is sending the response, which then
waits forever; the client's next request on the keep-alive connection
never gets an answer.  Clients that send headers and body in separate
writes (``requests``, browsers) hit this whenever the body arrives after
the app has answered.

So the final response message is held back until the request's last body
message has been received, by Quart's own reader or by this middleware,
which reads and discards (memory stays flat however large the body).  The
wait is bounded: a client that stops sending gets its answer anyway after
``timeout_s``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

__all__ = ["DrainUnreadBody"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


class DrainUnreadBody:
    def __init__(self, app: ASGIApp, *, timeout_s: float = 10.0) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = trio.Event()

        async def tracking_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" or (
                message["type"] == "http.request" and not message.get("more_body", False)
            ):
                body_done.set()
            return message

        async def discard_rest() -> None:
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    while True:
                        await tracking_receive()

                nursery.start_soon(read)
                await body_done.wait()  # whoever read the last message, we are done
                nursery.cancel_scope.cancel()  # a cancelled channel receive loses nothing

        async def holding_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not body_done.is_set():
                with trio.move_on_after(self.timeout_s):
                    await discard_rest()
            await send(message)

        await self.app(scope, tracking_receive, holding_send)
