"""Hybrid retrieval: dense (FAISS) + lexical (BM25 over words and over folded syllables).

Every passage counts for its entry (a procedure's sections, a Q&A's paraphrases): an entry's score on
each side is the best of its passages. The sides are fused into one score in [0, 1] per entry:

    fused = w * dense + (1 - w) * lexical
    dense   = cosine rescaled from [dense_floor, dense_ceiling] to [0, 1]
    lexical = mean of (BM25 relative to the best entry) and (IDF-weighted share of the question's
              words that the entry contains) — the second is absolute, so a question about the
              weather, whose words the knowledge base does not have, scores low.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.embed import Embedder
from indexer.index import LoadedIndex
from indexer.text import Processed, TextPipeline


@dataclass
class Candidate:
    entry_id: str
    topic: str
    score: float
    dense: float
    lexical: float
    coverage: float


@dataclass
class SearchResult:
    query: Processed
    candidates: list[Candidate]
    latency_ms: float
    timings: dict[str, float] = field(default_factory=dict)
    oos_similarity: float = 0.0
    """Cosine similarity to the closest out-of-scope phrasing (other agencies, small talk)."""
    oos_group: dict[str, Any] | None = None


@dataclass
class FusionParams:
    dense_weight: float = 0.4
    dense_floor: float = 0.82
    dense_ceiling: float = 0.93
    top_k_units: int = 80


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, pipeline: TextPipeline,
                 params: FusionParams | None = None, query_prefix: str = "query: ") -> None:
        self.index = index
        self.embedder = embedder
        self.pipeline = pipeline
        self.params = params or FusionParams()
        self.query_prefix = query_prefix
        self.entry_ids = list(index.entries)
        n_entries = len(self.entry_ids)
        self._n_units = len(index.units)
        # Token sets per entry, for the coverage feature.
        self._entry_words: list[set[str]] = [set() for _ in range(n_entries)]
        self._entry_folded: list[set[str]] = [set() for _ in range(n_entries)]
        for u, ei in zip(index.units, index.unit_entry, strict=True):
            self._entry_words[ei].update(u.get("words") or [])
            self._entry_folded[ei].update(u.get("folded") or [])
        self._topics = np.array([index.entries[e]["topic"] for e in self.entry_ids])

    def warm_up(self) -> None:
        self.embedder.warm_up()
        self.pipeline.warm_up()
        self.search("trợ cấp thất nghiệp")

    def _idf(self, token: str, df: dict[str, int]) -> float:
        n = self._n_units
        d = df.get(token, 0)
        return math.log(1 + (n - d + 0.5) / (d + 0.5))

    def _coverage(self, tokens: list[str], df: dict[str, int], sets: list[set[str]],
                  idxs: np.ndarray) -> np.ndarray:
        toks = list(dict.fromkeys(t for t in tokens if t))
        if not toks:
            return np.zeros(len(idxs))
        w = np.array([self._idf(t, df) for t in toks])
        total = w.sum()
        out = np.zeros(len(idxs))
        for j, ei in enumerate(idxs):
            s = sets[ei]
            out[j] = sum(wi for t, wi in zip(toks, w, strict=True) if t in s) / total
        return out

    def _entry_max(self, unit_scores: np.ndarray) -> np.ndarray:
        out = np.zeros(len(self.entry_ids), dtype=np.float64)  # BM25 scores are never negative
        np.maximum.at(out, self.index.unit_entry, unit_scores)
        return out

    def search(self, text: str, k: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        q = self.pipeline.process(text)
        timings["text"] = (time.perf_counter() - t0) * 1000
        p = self.params
        n_e = len(self.entry_ids)

        t1 = time.perf_counter()
        qv = self.embedder.embed([q.dense_text(self.index.manifest.segmented_for_model)], self.query_prefix)
        timings["embed"] = (time.perf_counter() - t1) * 1000
        oos_sim, oos_group = 0.0, None
        if len(self.index.oos_vectors):
            sims_oos = self.index.oos_vectors @ qv[0]
            j = int(np.argmax(sims_oos))
            oos_sim, oos_group = float(sims_oos[j]), self.index.oos_meta[j]
        t1 = time.perf_counter()
        kk = min(p.top_k_units, len(self.index.dense_units))
        sims, ids = self.index.dense.search(qv.astype(np.float32), kk)
        dense = np.zeros(n_e)
        valid = ids[0] >= 0
        units = self.index.dense_units[ids[0][valid]]
        np.maximum.at(dense, self.index.unit_entry[units], sims[0][valid])

        bw = self.index.bm25_words.get_scores(q.words) if q.words else np.zeros(self._n_units)
        bf = self.index.bm25_folded.get_scores(q.folded) if q.folded else np.zeros(self._n_units)
        ew, ef = self._entry_max(np.asarray(bw)), self._entry_max(np.asarray(bf))
        rel = 0.5 * (ew / ew.max() if ew.max() > 0 else ew) + 0.5 * (ef / ef.max() if ef.max() > 0 else ef)

        # Shortlist on the cheap features, then compute coverage for the shortlist only.
        dn = np.clip((dense - p.dense_floor) / (p.dense_ceiling - p.dense_floor), 0, 1)
        pre = p.dense_weight * dn + (1 - p.dense_weight) * rel
        short = np.argsort(-pre)[: max(k * 3, 30)]
        syl = [t for t in q.folded if "_" not in t]
        cov_w = self._coverage(q.words, self.index.df_words, self._entry_words, short)
        cov_f = self._coverage(syl, self.index.df_folded, self._entry_folded, short)
        cov = np.maximum(cov_w, cov_f)
        lexical = 0.5 * rel[short] + 0.5 * cov
        fused = p.dense_weight * dn[short] + (1 - p.dense_weight) * lexical
        order = np.argsort(-fused)[:k]
        timings["rank"] = (time.perf_counter() - t1) * 1000
        cands = [
            Candidate(
                entry_id=self.entry_ids[short[j]], topic=str(self._topics[short[j]]),
                score=round(float(fused[j]), 4), dense=round(float(dense[short[j]]), 4),
                lexical=round(float(lexical[j]), 4), coverage=round(float(cov[j]), 4),
            )
            for j in order
        ]
        return SearchResult(q, cands, (time.perf_counter() - t0) * 1000, timings, round(oos_sim, 4), oos_group)

    def entry(self, entry_id: str) -> dict[str, Any]:
        return self.index.entries[entry_id]
