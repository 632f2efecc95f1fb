"""Text analysis shared by the lexical ranking and the hashing embedder.

Both rankers must see the *same* terms, otherwise fusing their rankings would
reward different spellings on each side.  The analyzer is deliberately small:

* lower-case, split on anything that is not a letter or digit;
* tokens that mix letters and digits ("24acc6", "e4", "xv20i") are *model
  tokens*: never stemmed, never mapped, so an exact model number or error code
  matches only itself;
* hyphen/slash compounds are also emitted joined ("R-410A" -> "r410a", "A/C" ->
  "ac") because technicians write them both ways;
* a light suffix stripper (plural, -ing, -ed, final -e) instead of a full
  Porter stemmer: enough for "cycling"/"cycles"/"cycle" to meet, cheap enough
  to run on 100k chunks;
* a small HVAC lexicon folds field slang onto the word manuals use ("tstat"
  -> thermostat, "blinking" -> flash).  It is applied to documents and queries
  alike, so it changes what matches, never only one side.

Changing anything here changes the hashing embedder's vectors: bump the
version in ``HashingEmbedder.name`` so stored indexes are rebuilt.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

__all__ = ["analyze", "is_model_token", "MODEL_TOKEN_MIN_PREFIX"]

_TOKEN_RE: Final = re.compile(r"[a-z0-9]+(?:[-/][a-z0-9]+)*")
_HAS_DIGIT: Final = re.compile(r"\d")
_HAS_ALPHA: Final = re.compile(r"[a-z]")

# A nameplate model ("24ACC636A003") may be looked up by its family prefix
# ("24ACC6"); prefixes shorter than this are too ambiguous to try.
MODEL_TOKEN_MIN_PREFIX: Final = 4

_STOPWORDS: Final = frozenset(
    """
    a about above after again all also am an and any are as at be been before
    being below between both but by can could did do does doing don down during
    each few for from further had has have having he her here hers him his how i
    if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours out over own same she should so some
    such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while
    who whom why will with would you your yours
    won t s d ll ve re m isn doesn didn wasn aren hasn haven shouldn wouldn
    couldn get got getting please tell know need want show give guy guys
    """.split()
)

# Field slang -> the word the manuals use.  Keys and values are *stemmed* forms
# (see _stem) because the map is applied after stemming.
_LEXICON: Final[dict[str, str]] = {
    "tstat": "thermostat",
    "stat": "thermostat",
    "blink": "flash",
    "blinking": "flash",
    "flashing": "flash",
    "freon": "refrigerant",
    "ignitor": "igniter",
    "icing": "ice",
    "iced": "ice",
    "frozen": "ice",
    "freez": "ice",
    "frost": "ice",
    "frosted": "ice",
    "amperage": "amp",
    "psig": "psi",
    "fault": "error",
    "tev": "txv",
    "cap": "capacitor",
    "hi": "high",
    "lo": "low",
    "cond": "condenser",
    "evap": "evaporator",
    "aircon": "ac",
    "tonnage": "ton",
    "recharg": "charg",
    "undercharg": "charg",
    "overcharg": "charg",
}


@lru_cache(maxsize=1 << 17)
def is_model_token(token: str) -> bool:
    """True for tokens mixing letters and digits: model numbers, error codes."""
    return bool(_HAS_DIGIT.search(token)) and bool(_HAS_ALPHA.search(token))


def _stem(token: str) -> str:
    # Why not Porter: it is much slower in pure Python and over-stems part
    # names ("condenser" -> "condens"); these few rules cover what matters.
    if len(token) <= 3 or not token.isalpha():
        return token
    if token.endswith("ies") and len(token) > 4:
        token = token[:-3] + "y"
    elif token.endswith("sses"):
        token = token[:-2]
    elif token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    for suffix in ("ing", "ed"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
            # "tripped" -> "tripp" -> "trip", "running" -> "runn" -> "run"
            if len(token) >= 4 and token[-1] == token[-2] and token[-1] not in "lsz":
                token = token[:-1]
            break
    if token.endswith("e") and len(token) > 4:
        token = token[:-1]
    if token.endswith("y") and len(token) > 4 and token[-2] not in "aeiou":
        token = token[:-1] + "i"
    return token


@lru_cache(maxsize=1 << 17)
def _normalize(token: str) -> str:
    # Cached: manual vocabulary is small and Zipfian, so nearly every token
    # is a repeat; this halves the cost of analyzing a 100k-chunk corpus.
    if is_model_token(token):
        return token
    stemmed = _stem(token)
    return _LEXICON.get(stemmed, _LEXICON.get(token, stemmed))


def analyze(text: str) -> list[str]:
    """Terms of ``text`` in order, for ranking and embedding (see module doc)."""
    terms: list[str] = []
    for raw in _TOKEN_RE.findall(text.lower()):
        if "-" in raw or "/" in raw:
            parts = re.split(r"[-/]", raw)
            joined = "".join(parts)
            if is_model_token(joined) or all(len(p) == 1 for p in parts):
                # "r-410a" -> "r410a"; "a/c" -> "ac"; "68-70" stays two numbers
                if len(joined) <= 16:
                    terms.append(_normalize(joined))
                    if all(len(p) == 1 for p in parts):
                        continue
            for part in parts:
                if len(part) > 1 and part not in _STOPWORDS:
                    terms.append(_normalize(part))
            continue
        if raw in _STOPWORDS:
            continue
        terms.append(_normalize(raw))
    return terms
