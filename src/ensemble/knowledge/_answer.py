"""Answers without a language model, and the citation shapes an LLM answer shares.

When no ``ANTHROPIC_API_KEY`` is set the assistant still answers: with the
most relevant sentences of the top passages, quoted verbatim and cited, and
labelled as excerpts so nobody mistakes them for advice composed for the
situation.  Pure functions: no I/O, no clock, deterministic.

:func:`format_context` renders the same numbered passages for the Claude
prompt ("[1] Carrier 24ACC6 Service Manual p.4 ..."), so an LLM answer and an
offline answer cite with the same ``[n]`` numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

from ._text import analyze
from ._types import SearchResult

__all__ = ["Answer", "NumberedCitation", "answer_offline", "citations_for", "format_context"]

EXCERPTS_LABEL: Final = "Excerpts from the manuals"
_SENTENCE: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


class NumberedCitation(TypedDict):
    n: int
    source: str
    page: int
    document_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: list[NumberedCitation] = field(default_factory=list)
    offline: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citations": [dict(c) for c in self.citations], "offline": self.offline}


def citations_for(results: Sequence[SearchResult]) -> tuple[list[NumberedCitation], list[int]]:
    """Numbered citations, one per distinct (document, page), and each result's number."""
    numbers: dict[tuple[str, int], int] = {}
    citations: list[NumberedCitation] = []
    per_result: list[int] = []
    for r in results:
        key = (r.citation["document_id"], r.citation["page"])
        if key not in numbers:
            numbers[key] = len(citations) + 1
            citations.append(
                {"n": numbers[key], "source": r.citation["source"], "page": r.citation["page"], "document_id": r.citation["document_id"]}
            )
        per_result.append(numbers[key])
    return citations, per_result


def format_context(results: Sequence[SearchResult]) -> str:
    """Numbered passages for a language-model prompt (the reference's buildContextPrompt)."""
    if not results:
        return ""
    _, numbers = citations_for(results)
    blocks = [
        f"[{n}] {r.citation['source']} p.{r.citation['page']}\n{r.text}" for n, r in zip(numbers, results)
    ]
    return "Relevant documentation:\n\n" + "\n\n".join(blocks)


def _units(text: str) -> list[str]:
    units: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("|"):
            units.append(line)  # a table row is quoted whole or not at all
        else:
            units.extend(s for s in _SENTENCE.split(line) if s)
    return units


def _excerpt(question_terms: set[str], text: str, max_chars: int) -> str:
    units = _units(text)
    scored = [(len(question_terms & set(analyze(u))), i) for i, u in enumerate(units)]
    if not any(score for score, _ in scored):
        chosen = list(range(len(units)))  # nothing matches word for word: quote from the start
    else:
        chosen = [i for score, i in sorted(scored, key=lambda si: (-si[0], si[1])) if score]
    picked: list[int] = []
    size = 0
    for i in chosen:
        if picked and size + len(units[i]) > max_chars:
            continue
        picked.append(i)
        size += len(units[i])
    table_rows = [i for i in picked if units[i].startswith("|")]
    if table_rows:
        # Keep the column names of a quoted table row: walk up to the table's first row.
        header = table_rows[0]
        while header > 0 and units[header - 1].startswith("|"):
            header -= 1
        if header not in picked:
            picked.append(header)
    picked.sort()
    parts: list[str] = []
    for prev, i in zip([None, *picked], picked):
        if prev is not None and i != prev + 1:
            parts.append("…")
        parts.append(units[i])
    return "\n".join(parts) if table_rows else " ".join(parts)


def answer_offline(
    question: str,
    results: Sequence[SearchResult],
    *,
    max_passages: int = 3,
    max_chars_per_passage: int = 480,
) -> Answer:
    """Quote and cite the best passages for ``question`` (no language model)."""
    if not results:
        return Answer(
            text=(
                "No passage of the manuals matched this question. Try naming the manufacturer, "
                "the model number or the exact error code."
            ),
        )
    chosen = list(results[:max_passages])
    citations, numbers = citations_for(chosen)
    terms = set(analyze(question))
    blocks = [f"{EXCERPTS_LABEL} (quoted passages, not a generated answer):"]
    for n, r in zip(numbers, chosen):
        heading = r.metadata.get("heading")
        where = f"{r.citation['source']}, p.{r.citation['page']}" + (f" - {heading}" if heading else "")
        blocks.append(f"[{n}] {where}\n\"{_excerpt(terms, r.text, max_chars_per_passage)}\"")
    blocks.append("Sources: " + "; ".join(f"[{c['n']}] {c['source']} p.{c['page']}" for c in citations))
    return Answer(text="\n\n".join(blocks), citations=citations)
