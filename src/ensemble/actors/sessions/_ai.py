"""The AI participant's background work: ask the assistant, stream the answer in.

``decide`` cannot do I/O, so an AI question produces a ``Spawn`` effect that
runs :meth:`AiRunner.run` once the question is durable.  The task talks back
to its session only with commands, so everything it causes is an ordinary
turn:

- each delta → ``ai_delta`` (told, never awaited: an ephemeral broadcast; if
  the mailbox is full the delta is dropped, the final message has the text),
- the end → ``ai_answer`` (asked, retried): one durable ``new_message``,
- any failure or the timeout → ``ai_failed``: one durable AI error message.

If the process dies mid-answer, the session's durable alarm (set at the
question) ends the request with an error message after restart, so a
session never waits forever.
"""

from __future__ import annotations

import functools
from contextlib import aclosing
from typing import Any

import trio

from ensemble.actors._behavior import Spawn
from ensemble.actors._system import ActorHandle
from ensemble.actors.sessions._limits import SessionLimits
from ensemble.errors import EnsembleError, Overloaded, RateLimited, Unavailable
from ensemble.knowledge.assistant import Assistant, AssistantChunk, AssistantRequest
from ensemble.log import get_logger

__all__ = ["AiRunner"]

log = get_logger("ensemble.sessions")

_REPORT_ATTEMPTS = 6


class AiRunner:
    def __init__(self, assistant: Assistant, limits: SessionLimits) -> None:
        self.assistant = assistant
        self.limits = limits
        self._slots: trio.Semaphore | None = None
        self.answers = 0
        self.failures = 0
        self.in_flight = 0

    def statistics(self) -> dict[str, int]:
        return {"answers": self.answers, "failures": self.failures, "in_flight": self.in_flight}

    def spawn(self, request: AssistantRequest) -> Spawn:
        return Spawn(functools.partial(self.run, request), name=f"ai:{request.request_id}")

    def _semaphore(self) -> trio.Semaphore:
        if self._slots is None:
            self._slots = trio.Semaphore(self.limits.ai_max_concurrent)
        return self._slots

    async def run(self, request: AssistantRequest, handle: ActorHandle) -> None:
        timeout = self.limits.ai_timeout_s
        reason: str | None = None
        final: AssistantChunk | None = None
        self.in_flight += 1
        try:
            with trio.fail_after(timeout):
                async with self._semaphore():
                    final = await self._stream(request, handle)
        except trio.TooSlowError:
            reason = f"no answer within {timeout:g} s"
        except RateLimited as exc:
            reason = f"{exc.message} (retry in {max(1, round(exc.retry_after))} s)"
        except EnsembleError as exc:
            reason = exc.message
        except Exception as exc:  # the assistant's bug must not leave the session waiting
            log.exception("assistant_failed", session=request.session_id, error=repr(exc))
            reason = f"internal error ({type(exc).__name__})"
        finally:
            self.in_flight -= 1
        if final is not None:
            self.answers += 1
            command: dict[str, Any] = {
                "type": "ai_answer",
                "request_id": request.request_id,
                # As given: the session keeps only what it can store (see _decide.ai_answer).
                "text": final.text,
                "citations": list(final.citations),
                "usage": final.usage,
            }
        else:
            self.failures += 1
            command = {"type": "ai_failed", "request_id": request.request_id, "reason": reason or "no answer"}
        await self._report(handle, command)

    async def _stream(self, request: AssistantRequest, handle: ActorHandle) -> AssistantChunk:
        index = 0
        async with aclosing(self.assistant.answer(request)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                if chunk.final:
                    if not chunk.text.strip():
                        raise Unavailable("the assistant returned an empty answer")
                    return chunk
                if chunk.delta:
                    self._delta(handle, request.request_id, chunk.delta, index)
                    index += 1
        raise Unavailable("the assistant ended without an answer")

    @staticmethod
    def _delta(handle: ActorHandle, request_id: str, delta: str, index: int) -> None:
        try:
            handle.system.tell_nowait(
                handle.address, {"type": "ai_delta", "request_id": request_id, "delta": delta, "index": index}
            )
        except (Overloaded, Unavailable):
            pass  # best effort: the final message carries the whole text

    @staticmethod
    async def _report(handle: ActorHandle, command: dict[str, Any]) -> None:
        delay = 0.1
        for _ in range(_REPORT_ATTEMPTS):
            try:
                await handle.ask(command)
                return
            except (Overloaded, Unavailable):
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)
        # The session's alarm ends the request with an error message.
        log.error("ai_report_dropped", actor=str(handle.address), type=command["type"])
