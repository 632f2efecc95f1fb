"""The assistant's prompt, cache key and cost: pure functions, no I/O.

Prompt layout (the reference's *Diagnostic Flow with Context Injection*),
ordered from the most stable to the least so that Anthropic prompt caching
can reuse the prefix::

    system[0]  the HVAC assistant's instructions      cache_control (same for every request)
    system[1]  equipment + answer mode                (same for a whole session)
    system[2]  numbered manual passages               cache_control (same for a follow-up on the same context)
    messages   the session's recent conversation, then the question

The passages are numbered exactly as :func:`~ensemble.knowledge.citations_for`
numbers them, so the model's ``[n]`` markers map to the final citations.
A block shorter than the model's minimum cacheable length is simply not
cached by the API; the markers cost nothing then.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ._answer import NumberedCitation, citations_for, format_context
from ._types import SearchResult
from .assistant import AnswerCitation, AssistantRequest, EquipmentContext

__all__ = [
    "PROMPT_VERSION",
    "SYSTEM_PROMPT",
    "Prompt",
    "TokenUsage",
    "build_prompt",
    "cache_key",
    "cited",
    "cost_usd",
    "normalize_question",
    "price_for",
    "retrieval_query",
]

# Part of every cache key: changing the prompt must not serve answers written for the old one.
PROMPT_VERSION: Final = "v1"

SYSTEM_PROMPT: Final = """You are an expert HVAC diagnostic assistant helping technicians in the field.

Your role:
- Provide accurate, actionable diagnostic guidance
- Reference equipment manuals and specifications when available
- Suggest step-by-step troubleshooting procedures
- Warn about safety hazards (electrical, refrigerant, pressure, combustion)
- Recommend when to escalate to a senior technician

Guidelines:
- Be concise but thorough; technicians read this on a phone on a roof
- Use technical terminology appropriately
- Always consider safety first
- Give specific measurements and values when the documentation has them
- When you use a numbered passage of the documentation, cite it with its number in square brackets, e.g. [2]
- Never invent a citation; if the documentation does not cover the question, say so and answer from general practice
- Several technicians may be in the conversation; their names precede their messages"""

_MODES: Final = {
    "guided": "Answer mode: guided. Walk the technician through one step at a time and say what to measure next.",
    "expert": "Answer mode: expert. The technician is experienced: be brief, skip the basics, give values and causes.",
    "quick": "Answer mode: quick. Answer in at most three short sentences.",
}

_CITATION = re.compile(r"\[(\d{1,2})\]")


@dataclass(frozen=True, slots=True)
class Prompt:
    """The arguments of one Messages API call, plus the citations its passages carry."""

    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    citations: list[NumberedCitation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def retrieval_query(request: AssistantRequest) -> str:
    """The text searched for: the question plus the equipment, as the reference does."""
    parts = [request.question.strip()]
    eq = request.equipment
    if eq is not None:
        parts += [p for p in (eq.manufacturer, eq.model, eq.type) if p]
    return " ".join(parts)


def _equipment_block(equipment: EquipmentContext | None, mode: str) -> str:
    lines = [_MODES.get(mode, _MODES["guided"])]
    if equipment is not None:
        known = [
            f"{label}: {value}"
            for label, value in (
                ("Name", equipment.name), ("Manufacturer", equipment.manufacturer), ("Model", equipment.model),
                ("System type", equipment.type), ("Serial", equipment.serial),
            )
            if value
        ]
        if known:
            lines.append("Equipment being diagnosed:\n" + "\n".join(f"- {k}" for k in known))
    return "\n\n".join(lines)


def _turns(request: AssistantRequest) -> list[dict[str, Any]]:
    """History then the question, as alternating user/assistant turns.

    Several technicians share one "user" side, so each user line is prefixed
    with its sender; consecutive lines of one side are merged because the
    API expects the roles to alternate, starting with the user.
    """
    turns: list[tuple[str, str]] = []
    items = [(m.role, m.text if m.role == "assistant" else f"[{m.sender_name}] {m.text}") for m in request.history]
    asker = request.asked_by or "Technician"
    items.append(("user", f"[{asker}] {request.question.strip()}"))
    for role, text in items:
        if not text.strip():
            continue
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{text}")
        else:
            turns.append((role, text))
    while turns and turns[0][0] != "user":
        turns.pop(0)
    return [{"role": role, "content": text} for role, text in turns]


def build_prompt(request: AssistantRequest, results: Sequence[SearchResult]) -> Prompt:
    citations, _ = citations_for(results)
    context = format_context(results)
    if context:
        context += "\n\nUse this documentation to give accurate guidance, citing passages by number."
    else:
        context = "No passage of the manuals matched this question. Say so, then answer from general HVAC practice."
    system: list[dict[str, Any]] = [
        {"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": _equipment_block(request.equipment, request.mode)},
        {"type": "text", "text": context, "cache_control": {"type": "ephemeral"}},
    ]
    return Prompt(system=system, messages=_turns(request), citations=citations)


def cited(text: str, citations: Sequence[NumberedCitation]) -> list[AnswerCitation]:
    """The citations the answer refers to with ``[n]``; all of them if it names none.

    An answer that names no passage was still written from them, so the
    technician gets the whole list rather than nothing to check against.
    """
    numbers = {int(m) for m in _CITATION.findall(text)}
    chosen = [c for c in citations if c["n"] in numbers] or list(citations)
    return [
        {"n": c["n"], "source": c["source"], "page": c["page"], "document_id": c["document_id"]} for c in chosen
    ]


def normalize_question(text: str) -> str:
    """Case, width, whitespace and trailing punctuation do not make a new question."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = re.sub(r"\s+", " ", folded).strip()
    return folded.rstrip(" ?!.")


def cache_key(request: AssistantRequest, model: str) -> str:
    """The response cache key: normalized question + equipment context + mode + model.

    Conversation history is deliberately not part of it (the reference's
    ``buildCacheKey``): repeated field questions hit, at the price that a
    follow-up phrased identically in two sessions gets the same answer.
    """
    eq = request.equipment
    equipment = [
        (getattr(eq, name) or "").strip().casefold() if eq is not None else ""
        for name in ("manufacturer", "model", "type")
    ]
    material = json.dumps(
        [PROMPT_VERSION, model, request.mode, normalize_question(request.question), equipment],
        separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def price_for(model: str, table: Mapping[str, tuple[float, float, float, float]]) -> tuple[float, float, float, float] | None:
    """The longest model-name prefix in ``table`` that ``model`` starts with."""
    best: str | None = None
    for prefix in table:
        if model.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return table[best] if best is not None else None


def cost_usd(usage: TokenUsage, prices: tuple[float, float, float, float] | None) -> float:
    """USD for ``usage``; prices are per million tokens (input, output, cache write, cache read)."""
    if prices is None:
        return 0.0
    p_in, p_out, p_write, p_read = prices
    total = (
        usage.input_tokens * p_in
        + usage.output_tokens * p_out
        + usage.cache_write_tokens * p_write
        + usage.cache_read_tokens * p_read
    )
    return round(total / 1_000_000, 6)
