"""The Anthropic Messages API, streamed under trio, with errors in our own terms.

``AsyncAnthropic`` runs natively on trio (its HTTP client is anyio-based),
so there is no bridge crossing here.  :meth:`ClaudeClient.stream` yields the
answer's text deltas as they arrive and ends with one :class:`Completion`
(text, token usage, stop reason).

Every way a call can fail ends in an ``EnsembleError`` whose message a
technician can read in the session: ``RateLimited`` when Anthropic throttles
us (with its retry-after), ``Unavailable`` for timeouts, overload, refused
keys, unreachable hosts and rejected requests.  A whole answer has a
deadline (``timeout_s``) on top of the SDK's per-read timeout, because a
stream that trickles one byte a minute never trips a read timeout.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from ensemble.errors import EnsembleError, RateLimited, Unavailable

from ._prompt import Prompt, TokenUsage

__all__ = ["ClaudeConfig", "ClaudeClient", "Completion", "open_claude"]


@dataclass(frozen=True, slots=True)
class ClaudeConfig:
    api_key: str
    model: str
    max_tokens: int = 1024
    timeout_s: float = 45.0
    connect_timeout_s: float = 10.0
    max_retries: int = 2
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: TokenUsage
    model: str
    stop_reason: str | None


class ClaudeClient:
    def __init__(self, client: Any, config: ClaudeConfig) -> None:
        self._client = client
        self.config = config

    async def stream(self, prompt: Prompt) -> AsyncGenerator[str | Completion, None]:
        """Text deltas (``str``), then one :class:`Completion`."""
        cfg = self.config
        pieces: list[str] = []
        # One deadline for the whole answer, applied to each await separately:
        # a cancel scope must not stay open across a ``yield`` (the consumer's
        # code would run inside it).
        deadline = trio.current_time() + cfg.timeout_s
        try:
            async with AsyncExitStack() as stack:
                with trio.fail_at(deadline):
                    stream = await stack.enter_async_context(
                        self._client.messages.stream(
                            model=cfg.model, max_tokens=cfg.max_tokens, system=prompt.system, messages=prompt.messages
                        )
                    )
                texts = stream.text_stream.__aiter__()
                if hasattr(texts, "aclose"):  # closed first if our consumer stops early
                    stack.push_async_callback(texts.aclose)
                while True:
                    with trio.fail_at(deadline):
                        try:
                            text = await texts.__anext__()
                        except StopAsyncIteration:
                            break
                    if text:
                        pieces.append(text)
                        yield text
                with trio.fail_at(deadline):
                    final = await stream.get_final_message()
        except trio.TooSlowError:
            raise Unavailable(f"the AI service did not finish its answer within {cfg.timeout_s:g} s") from None
        except EnsembleError:
            raise
        except Exception as exc:
            raise _translate(exc, cfg) from exc
        usage = getattr(final, "usage", None)
        yield Completion(
            text="".join(pieces),
            usage=TokenUsage(
                input_tokens=_int(getattr(usage, "input_tokens", 0)),
                output_tokens=_int(getattr(usage, "output_tokens", 0)),
                cache_read_tokens=_int(getattr(usage, "cache_read_input_tokens", 0)),
                cache_write_tokens=_int(getattr(usage, "cache_creation_input_tokens", 0)),
            ),
            model=str(getattr(final, "model", None) or cfg.model),
            stop_reason=getattr(final, "stop_reason", None),
        )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and value > 0 else 0


def _translate(exc: Exception, cfg: ClaudeConfig) -> EnsembleError:
    """The SDK's exception as the one Ensemble error that means the same to a technician."""
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return Unavailable(f"the AI service did not answer within {cfg.timeout_s:g} s")
    if isinstance(exc, anthropic.APIConnectionError):
        return Unavailable("the AI service cannot be reached (network error)")
    if isinstance(exc, anthropic.APIStatusError):
        status = int(getattr(exc, "status_code", 0) or 0)
        detail = _api_message(exc)
        if status == 429:
            return RateLimited(
                "the AI service is rate limiting this server", retry_after=_retry_after(exc), details={"upstream": detail}
            )
        if status in (401, 403):
            return Unavailable("the AI service refused the API key (check ANTHROPIC_API_KEY)")
        if status == 529 or "overloaded" in detail.lower():
            return Unavailable("the AI service is overloaded; ask again in a minute")
        if 400 <= status < 500:
            return Unavailable(f"the AI service rejected the request ({status}: {detail})")
        return Unavailable(f"the AI service failed ({status or 'error'}: {detail})")
    if isinstance(exc, anthropic.AnthropicError):
        return Unavailable(f"the AI service failed ({type(exc).__name__})")
    return Unavailable(f"the AI service failed ({type(exc).__name__})")


def _api_message(exc: Any) -> str:
    message = getattr(exc, "api_message", None)
    if not message:
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            error = body.get("error")
            message = error.get("message") if isinstance(error, dict) else None
    return str(message or getattr(exc, "message", "") or type(exc).__name__)[:300]


def _retry_after(exc: Any) -> float:
    response = getattr(exc, "response", None)
    raw = response.headers.get("retry-after") if response is not None else None
    try:
        return max(1.0, float(raw)) if raw is not None else 30.0
    except ValueError:
        return 30.0


@asynccontextmanager
async def open_claude(config: ClaudeConfig, *, http_client: Any = None) -> AsyncIterator[ClaudeClient]:
    """A client for the service's lifetime (one connection pool for every session).

    ``http_client`` replaces the SDK's HTTP client (tests pass one with a fake
    transport; the base URL setting is the other way to reach a fake server).
    """
    import anthropic

    kwargs: dict[str, Any] = {
        "api_key": config.api_key,
        "max_retries": config.max_retries,
        "timeout": _timeout(config),
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if http_client is not None:
        kwargs["http_client"] = http_client
    async with anthropic.AsyncAnthropic(**kwargs) as client:
        yield ClaudeClient(client, config)


def _timeout(config: ClaudeConfig) -> Any:
    import anthropic

    # ``anthropic.Timeout`` is the SDK's own HTTP library's class (httpx or httpx2).
    return anthropic.Timeout(config.timeout_s, connect=config.connect_timeout_s)
