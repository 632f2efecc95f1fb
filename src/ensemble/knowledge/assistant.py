"""The assistant a diagnostic session asks: the interface, and a deterministic stand-in.

A session hands the assistant one :class:`AssistantRequest` (the question,
the recent conversation, the equipment being diagnosed) and iterates the
answer as it is written::

    async for chunk in assistant.answer(request):
        if not chunk.final:
            show(chunk.delta)               # streamed into the session as ai_delta frames
        else:
            store(chunk.text, chunk.citations, chunk.usage)   # one durable new_message

Contract for implementations:

- zero or more delta chunks (``final=False``, ``delta`` non-empty), then
  exactly one final chunk (``final=True``) whose ``text`` is the whole answer
  (not necessarily the concatenation of the deltas: a model may rewrite) with
  its citations and usage.  Nothing after the final chunk is read.
- Refusals and failures are raised, preferably as ``EnsembleError``
  subclasses (``RateLimited`` with ``retry_after``, ``Unavailable``,
  ``InvalidInput``): the session turns the error's message into a visible AI
  error message.  Never hang: the session cancels an answer that takes longer
  than its timeout, so implementations must be cancellable (trio).
- The request is tenant-scoped: retrieve only from the global manuals and
  ``request.tenant_id``'s own.

:class:`EchoAssistant` answers deterministically without a model or an
index; tests use it, and the server uses it until the real assistant
(retrieval + Claude, or the offline answerer) is wired in
``ensemble.server.domain_behaviors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict

import trio

__all__ = [
    "Assistant",
    "AssistantChunk",
    "AssistantRequest",
    "EchoAssistant",
    "EquipmentContext",
    "HistoryMessage",
    "AnswerCitation",
]


class AnswerCitation(TypedDict):
    """One numbered source of an answer (same shape as ``knowledge.NumberedCitation``)."""

    n: int
    source: str
    page: int
    document_id: str


@dataclass(frozen=True, slots=True)
class EquipmentContext:
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    type: str | None = None  # system type: split system, furnace, heat pump, ...
    serial: str | None = None

    def describe(self) -> str:
        parts = [p for p in (self.manufacturer, self.model, self.type) if p]
        return " ".join(parts) or (self.name or "")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "EquipmentContext | None":
        if not data:
            return None
        return cls(
            name=data.get("name"), manufacturer=data.get("manufacturer"), model=data.get("model"),
            type=data.get("type"), serial=data.get("serial"),
        )


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    role: Literal["user", "assistant"]
    sender_name: str
    text: str
    at: str


@dataclass(frozen=True, slots=True)
class AssistantRequest:
    tenant_id: str
    session_id: str
    request_id: str  # unique per session; the answer's reply_to
    question: str
    history: tuple[HistoryMessage, ...] = ()  # oldest first, the question not included
    equipment: EquipmentContext | None = None
    mode: str = "guided"  # guided | expert | quick: how much hand-holding
    asked_by: str = ""  # the technician's name


@dataclass(frozen=True, slots=True)
class AssistantChunk:
    delta: str = ""
    final: bool = False
    text: str = ""  # the final chunk: the whole answer
    citations: tuple[AnswerCitation, ...] = ()
    usage: dict[str, Any] = field(default_factory=dict)  # input_tokens, output_tokens, cost_usd, cached, ...

    @classmethod
    def piece(cls, delta: str) -> "AssistantChunk":
        return cls(delta=delta)

    @classmethod
    def done(
        cls, text: str, citations: tuple[AnswerCitation, ...] | list[AnswerCitation] = (), usage: dict[str, Any] | None = None
    ) -> "AssistantChunk":
        return cls(final=True, text=text, citations=tuple(citations), usage=dict(usage or {}))


class Assistant(Protocol):
    def answer(self, request: AssistantRequest) -> AsyncIterator[AssistantChunk]:
        """Stream the answer to ``request`` (see the module contract)."""
        ...


class EchoAssistant:
    """Deterministic answers for tests and for a server with no assistant wired yet.

    The answer restates the question with the equipment, streamed a few words
    per chunk; it cites the equipment's service manual when equipment is
    known.  ``delay`` seconds pass between chunks (0: just a checkpoint).
    """

    def __init__(self, *, delay: float = 0.0, words_per_chunk: int = 3) -> None:
        self.delay = delay
        self.words_per_chunk = max(1, words_per_chunk)

    def compose(self, request: AssistantRequest) -> tuple[str, tuple[AnswerCitation, ...]]:
        equipment = request.equipment.describe() if request.equipment else ""
        about = f" on the {equipment}" if equipment else ""
        text = (
            f"You asked{about}: {request.question.strip()} "
            f"(I have {len(request.history)} earlier messages of this session.)"
        )
        citations: tuple[AnswerCitation, ...] = ()
        if equipment:
            text += " See the service manual [1]."
            citations = ({"n": 1, "source": f"{equipment} Service Manual", "page": 1, "document_id": "echo"},)
        return text, citations

    async def answer(self, request: AssistantRequest) -> AsyncIterator[AssistantChunk]:
        text, citations = self.compose(request)
        words = text.split(" ")
        for i in range(0, len(words), self.words_per_chunk):
            piece = " ".join(words[i : i + self.words_per_chunk])
            if i + self.words_per_chunk < len(words):
                piece += " "
            if self.delay:
                await trio.sleep(self.delay)
            else:
                await trio.lowlevel.checkpoint()
            yield AssistantChunk.piece(piece)
        prompt_words = len(request.question.split()) + sum(len(m.text.split()) for m in request.history)
        yield AssistantChunk.done(text, citations, {"input_tokens": prompt_words, "output_tokens": len(words), "model": "echo"})
