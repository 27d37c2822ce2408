"""A retrieval baseline: BM25 over a small corpus of (context, response) pairs shipped with Parley.

The bot answers with the response whose context best matches the last thing said to it, never repeating
itself within a conversation. The index is model state shared across conversations: `shared_index(path)`
builds it once per process and every bot of every conversation reads the same object.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from worlds.base import ContextFileError, Message
from worlds.bots.protocol import MessageBot

CORPUS = Path(__file__).resolve().parent.parent / "data" / "dialogue_corpus.jsonl"
FALLBACKS = (
    "Tell me more about that.",
    "Interesting! What makes you say so?",
    "I hadn't thought about it that way. How did that come about?",
    "That's fair. What else is on your mind today?",
)
_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset(
    "a an and are as at be but by do does for from i if in is it its me my of on or so that the this to "
    "was we what with you your".split()
)


def tokenize(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


@dataclass(frozen=True)
class Pair:
    context: str
    response: str


@dataclass
class BM25Index:
    """Okapi BM25 over the contexts of `pairs`."""

    pairs: list[Pair]
    k1: float = 1.5
    b: float = 0.75
    _docs: list[Counter[str]] = field(init=False, repr=False)
    _lengths: list[int] = field(init=False, repr=False)
    _idf: dict[str, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._docs = [Counter(tokenize(p.context)) for p in self.pairs]
        self._lengths = [sum(d.values()) for d in self._docs]
        n = len(self._docs)
        df: Counter[str] = Counter(term for doc in self._docs for term in doc)
        self._idf = {term: math.log((n - k + 0.5) / (k + 0.5) + 1.0) for term, k in df.items()}
        self._avg = (sum(self._lengths) / n) if n else 0.0

    def scores(self, query: str) -> list[float]:
        terms = tokenize(query)
        result = []
        for doc, length in zip(self._docs, self._lengths, strict=True):
            score = 0.0
            for term in terms:
                tf = doc.get(term, 0)
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * length / (self._avg or 1.0))
                    score += self._idf[term] * tf * (self.k1 + 1) / norm
            result.append(score)
        return result

    def search(self, query: str, limit: int = 5) -> list[tuple[float, Pair]]:
        """The best `limit` pairs with a positive score, best first."""
        ranked = sorted(zip(self.scores(query), range(len(self.pairs)), strict=True), reverse=True)
        return [(score, self.pairs[i]) for score, i in ranked[:limit] if score > 0]


def load_pairs(path: str | Path) -> list[Pair]:
    path = Path(path)
    pairs = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                pairs.append(Pair(context=str(item["context"]), response=str(item["response"])))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ContextFileError(f"{path}:{lineno}: expected {{\"context\", \"response\"}} ({exc})") from exc
    return pairs


def shared_index(path: str | Path = CORPUS) -> BM25Index:
    """The index of a corpus file, built on first use and shared by every conversation of the process."""
    return _index(str(Path(path).resolve()))


@lru_cache(maxsize=8)
def _index(path: str) -> BM25Index:
    return BM25Index(load_pairs(path))


class RetrievalBot(MessageBot):
    def __init__(self, role: str, corpus: str | Path = CORPUS) -> None:
        super().__init__(role)
        self.index = shared_index(corpus)
        self._said: set[str] = set()
        self._fallback = 0

    def act(self) -> Message:
        query = self.last_text()
        for score, pair in self.index.search(query, limit=10):
            if pair.response not in self._said:
                self._said.add(pair.response)
                return self.remember(Message(
                    text=pair.response, sender=self.role,
                    data={"retrieval": {"score": round(score, 3), "matched": pair.context}},
                ))
        text = FALLBACKS[self._fallback % len(FALLBACKS)]
        self._fallback += 1
        return self.remember(Message(text=text, sender=self.role, data={"retrieval": {"score": 0.0}}))
