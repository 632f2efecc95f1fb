"""The assistant diagnostic sessions ask: retrieval, then Claude or the offline answerer.

One question, in order (the reference's *Diagnostic Flow with Context
Injection* behind its *AI Gateway*):

1. no model configured → retrieve and quote the passages (``answer_offline``);
2. the response cache (per tenant; key = normalized question + equipment +
   mode + model): a hit streams the stored answer, no retrieval, no API call;
3. the tenant's AI request limit (model requests per clock hour, in Postgres);
4. retrieve passages from the global manuals and the tenant's own
   (equipment manufacturer first, topped up without the filter);
5. the Messages API, streamed: each text delta goes to the session as it
   arrives; the final chunk carries the citations the answer uses;
6. one ledger row (tokens, cost from the price table) and the cache entry,
   in one transaction, *before* the final chunk — the session stops
   reading after it.

Failures raise ``EnsembleError`` (the session shows their message) after a
``failed`` ledger row; nothing here swallows a question.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from ensemble.errors import EnsembleError, InvalidInput, RateLimited
from ensemble.log import get_logger
from ensemble.persistence.repos import knowledge as repo

from .._answer import answer_offline
from .._prompt import TokenUsage, build_prompt, cache_key, cited, cost_usd, price_for, retrieval_query
from .._types import SearchResult
from ..assistant import AnswerCitation, Assistant, AssistantChunk, AssistantRequest, EchoAssistant
from ..claude import ClaudeClient, ClaudeConfig, Completion, open_claude

if TYPE_CHECKING:
    from ._service import KnowledgeService

__all__ = ["KnowledgeAssistant", "open_assistant"]

log = get_logger("ensemble.knowledge.assistant")

OFFLINE_MODEL = "offline"
_WORDS_PER_PIECE = 6
_TRUNCATED = "\n\n(The answer was cut at the length limit; ask a narrower question for the rest.)"


class KnowledgeAssistant:
    """Implements :class:`ensemble.knowledge.assistant.Assistant` over a :class:`KnowledgeService`."""

    def __init__(self, service: KnowledgeService, claude: ClaudeClient | None) -> None:
        self.service = service
        self.claude = claude
        self.counts = {"answered": 0, "cache_hit": 0, "offline": 0, "failed": 0, "refused": 0}

    @property
    def online(self) -> bool:
        return self.claude is not None

    async def answer(self, request: AssistantRequest) -> AsyncGenerator[AssistantChunk, None]:
        tenant = _tenant(request)
        started = time.monotonic()
        if self.claude is None:
            results = await self.retrieve(request, tenant)
            async with aclosing(self._offline(request, tenant, results, started)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        settings = self.service.settings
        model = self.claude.config.model
        key = cache_key(request, model) if settings.ai_cache_ttl_s > 0 else None
        hit = await self.service.db.run(repo.cache_lookup, tenant, key) if key else None
        if hit is not None:
            async with aclosing(self._cached(request, tenant, hit, started)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        allowed, _, remaining = await self.service.db.run(repo.take_request, tenant, settings.ai_requests_per_hour)
        if not allowed:
            self.counts["refused"] += 1
            limit = settings.ai_requests_per_hour
            raise RateLimited(
                f"your organisation has used its {limit} AI requests for this hour; "
                f"try again in {max(1, round(remaining / 60))} min",
                retry_after=remaining, details={"limit": limit, "period_s": 3600},
            )
        prompt = build_prompt(request, await self.retrieve(request, tenant))
        completion: Completion | None = None
        try:
            async with aclosing(self.claude.stream(prompt)) as stream:
                async for item in stream:
                    if isinstance(item, Completion):
                        completion = item
                    else:
                        yield AssistantChunk.piece(item)
        except EnsembleError as exc:
            self.counts["failed"] += 1
            await self._record(request, tenant, model, "failed", TokenUsage(), started, error=exc.message)
            raise
        assert completion is not None  # the client's stream always ends with one
        text = completion.text
        if completion.stop_reason == "max_tokens" and text:
            text += _TRUNCATED
            yield AssistantChunk.piece(_TRUNCATED)
        citations = cited(text, prompt.citations)
        usage = self._usage(completion.model, completion.usage, cached=False)
        answer = {"key": key, "question": request.question, "text": text, "citations": citations} if key and text else None
        self.counts["answered"] += 1
        await self._record(request, tenant, completion.model, "answered", completion.usage, started, answer=answer)
        yield AssistantChunk.done(text, citations, usage)

    async def retrieve(self, request: AssistantRequest, tenant: uuid.UUID) -> list[SearchResult]:
        """Passages for the prompt: the equipment's manufacturer first, then anything relevant."""
        k = self.service.settings.ai_context_passages
        query = retrieval_query(request)
        manufacturer = request.equipment.manufacturer if request.equipment else None
        results: list[SearchResult] = []
        if manufacturer:
            results = await self.service.search(query, tenant_id=tenant, k=k, manufacturer=manufacturer)
        if len(results) < k:
            seen = {r.chunk_id for r in results}
            more = await self.service.search(query, tenant_id=tenant, k=k)
            results += [r for r in more if r.chunk_id not in seen][: k - len(results)]
        return results

    async def _offline(
        self, request: AssistantRequest, tenant: uuid.UUID, results: list[SearchResult], started: float
    ) -> AsyncGenerator[AssistantChunk, None]:
        answer = answer_offline(request.question, results)
        async with aclosing(_pieces(answer.text)) as pieces:
            async for piece in pieces:
                yield piece
        self.counts["offline"] += 1
        await self._record(request, tenant, OFFLINE_MODEL, "offline", TokenUsage(), started)
        usage = {**self._usage(OFFLINE_MODEL, TokenUsage(), cached=False), "offline": True}
        yield AssistantChunk.done(answer.text, [_citation(c) for c in answer.citations], usage)

    async def _cached(
        self, request: AssistantRequest, tenant: uuid.UUID, hit: dict[str, Any], started: float
    ) -> AsyncGenerator[AssistantChunk, None]:
        async with aclosing(_pieces(hit["answer"])) as pieces:
            async for piece in pieces:
                yield piece
        self.counts["cache_hit"] += 1
        await self._record(request, tenant, hit["model"], "cache_hit", TokenUsage(), started)
        citations = [_citation(c) for c in hit["citations"] or []]
        yield AssistantChunk.done(hit["answer"], citations, self._usage(hit["model"], TokenUsage(), cached=True))

    def _usage(self, model: str, usage: TokenUsage, *, cached: bool) -> dict[str, Any]:
        return {
            "model": model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "cost_usd": self._cost(model, usage),
            "cached": cached,
        }

    def _cost(self, model: str, usage: TokenUsage) -> float:
        return cost_usd(usage, price_for(model, self.service.settings.ai_price_table))

    async def _record(
        self,
        request: AssistantRequest,
        tenant: uuid.UUID,
        model: str,
        outcome: str,
        usage: TokenUsage,
        started: float,
        *,
        answer: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if outcome == "answered" and price_for(model, self.service.settings.ai_price_table) is None:
            log.warning("ai_price_unknown", model=model)
        row = {
            "tenant_id": tenant, "session_id": request.session_id, "request_id": request.request_id, "model": model,
            "outcome": outcome, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
            "cost_usd": self._cost(model, usage), "latency_ms": int((time.monotonic() - started) * 1000),
            "error": error,
        }
        try:
            await self.service.db.run(repo.record_usage, row, answer, self.service.settings.ai_cache_ttl_s)
        except EnsembleError as exc:
            # Accounting must not cost the technician the answer they waited for.
            log.error("ai_usage_not_recorded", tenant=str(tenant), outcome=outcome, error=exc.message)

    def statistics(self) -> dict[str, Any]:
        return {"online": self.online, **self.counts}


def _tenant(request: AssistantRequest) -> uuid.UUID:
    try:
        return uuid.UUID(request.tenant_id)
    except ValueError:
        raise InvalidInput("the assistant needs the session's tenant id") from None


def _citation(c: Any) -> AnswerCitation:
    return {"n": int(c["n"]), "source": str(c["source"]), "page": int(c["page"]), "document_id": str(c["document_id"])}


async def _pieces(text: str) -> AsyncGenerator[AssistantChunk, None]:
    """A stored answer streamed a few words at a time, so clients render it like a live one."""
    words = text.split(" ")
    for i in range(0, len(words), _WORDS_PER_PIECE):
        piece = " ".join(words[i : i + _WORDS_PER_PIECE])
        if i + _WORDS_PER_PIECE < len(words):
            piece += " "
        await trio.lowlevel.checkpoint()
        yield AssistantChunk.piece(piece)


@asynccontextmanager
async def open_assistant(service: KnowledgeService, *, http_client: Any = None) -> AsyncIterator[Assistant]:
    """The assistant ``ENSEMBLE_AI_ASSISTANT`` asks for, with its API client's lifetime."""
    settings = service.settings
    if settings.ai_assistant == "echo":
        yield EchoAssistant()
        return
    if settings.ai_assistant == "offline" or settings.anthropic_api_key is None:
        reason = "configured" if settings.ai_assistant == "offline" else "no ANTHROPIC_API_KEY"
        log.info("assistant_offline", reason=reason)
        yield KnowledgeAssistant(service, None)
        return
    config = ClaudeConfig(
        api_key=settings.anthropic_api_key.get_secret_value(),
        model=settings.ai_model,
        max_tokens=settings.ai_max_tokens,
        timeout_s=settings.ai_timeout_s,
        connect_timeout_s=settings.ai_connect_timeout_s,
        max_retries=settings.ai_max_retries,
        base_url=settings.ai_base_url,
    )
    async with open_claude(config, http_client=http_client) as claude:
        yield KnowledgeAssistant(service, claude)
