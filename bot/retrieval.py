"""Hybrid retrieval over the curated knowledge: entries and topics scored from two views of a question.

A citizen's message is read twice (:mod:`indexer.question`): the **body** (the whole story without
greetings and thanks, for context) and the **core** (the sentences that ask something). Both views go
through the text pipeline (abbreviations, diacritic restoration, segmentation) and are embedded together
in one call of the model. For each view:

* dense: cosine similarity to the embedded passages (FAISS), rescaled from [DENSE_FLOOR, DENSE_CEILING];
* lexical: BM25 over segmented words and over folded syllables (relative to the best passage), and the
  IDF-weighted share of the question's words an entry (or topic) contains ("coverage": absolute, so a
  question whose words the knowledge base does not have scores low);
* classifiers trained on the knowledge base (:mod:`indexer.topic_model`): topic log-probabilities from
  the words and from the vector, and whether the text is about the Department's business at all.

Entries are ranked by a fixed fusion of the dense and lexical scores (which entry of a topic to show);
topics get a feature vector (:data:`TOPIC_FEATURES`) that the fitted answer policy (:mod:`bot.policy`)
turns into probabilities. Every passage counts for its entry; an entry's (topic's) score on each side is
the best of its passages (entries').
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from indexer.embed import Embedder
from indexer.index import LoadedIndex
from indexer.question import ParsedQuestion, parse
from indexer.text import Processed, TextPipeline

DENSE_FLOOR = 0.82
"""Cosine similarity that counts as 0 on the dense side (e5 similarities are compressed)."""
DENSE_CEILING = 0.93
"""Cosine similarity that counts as 1."""
ENTRY_DENSE_WEIGHT = 0.35
"""Weight of the dense side when entries of one topic are ranked against each other."""

TOPIC_FEATURES = (
    "dense_body", "dense_core", "bm25_body", "bm25_core", "coverage_body", "coverage_core",
    "words_body", "words_core", "vector_body", "vector_core",
)
"""Per-topic features, in the order of ``SearchResult.topic_features``' columns."""
QUESTION_FEATURES = (
    "best_cosine", "best_coverage", "domain_body", "domain_core", "oos_gap", "words_top",
    "vdomain_body", "vdomain_core",
)
"""Per-question features (how in scope the question looks), in the order of
``SearchResult.question_features``."""


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
    """The processed body of the question (what is logged as the normalised question)."""
    parsed: ParsedQuestion
    candidates: list[Candidate]
    """Entries, best first (fused dense + lexical score over both views)."""
    topics: list[str]
    """The knowledge base's topics, in the order of ``topic_features``' rows."""
    topic_features: np.ndarray
    """(topics, len(TOPIC_FEATURES))."""
    question_features: np.ndarray
    """(len(QUESTION_FEATURES),)."""
    best_entry: dict[str, Candidate]
    """The best-ranked entry of each topic that has one among the candidates."""
    latency_ms: float
    timings: dict[str, float] = field(default_factory=dict)
    oos_similarity: float = 0.0
    """Cosine similarity to the closest out-of-scope phrasing (other agencies, small talk)."""
    oos_group: dict[str, Any] | None = None
    query_vector: np.ndarray | None = None
    """The embedding of the question's body (unsegmented text, query prefix), for the documents tier to
    reuse; None when the curated index embeds segmented text (then the documents tier embeds again)."""


class _GroupMax:
    """Per-group maximum of a vector whose items belong to groups (passages to entries, entries to topics):
    the items are sorted by group once, so each question costs one ``np.maximum.reduceat`` (the same
    figures as ``np.maximum.at``, which is an order of magnitude slower)."""

    def __init__(self, groups: np.ndarray, n_groups: int) -> None:
        self.order = np.argsort(groups, kind="stable")
        sorted_groups = groups[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]) if len(groups) else \
            np.zeros(0, dtype=np.int64)
        self.present = sorted_groups[self.starts]
        self.n_groups = n_groups

    def __call__(self, values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(self.n_groups, fill)
        if len(self.starts):
            out[self.present] = np.maximum(fill, np.maximum.reduceat(values[self.order], self.starts))
        return out


class _Membership:
    """Which sets (entries or topics) contain each token, as a sparse (vocabulary, sets) matrix, so that the
    IDF-weighted coverage of a question over every set is one sparse product."""

    def __init__(self, sets: list[set[str]]) -> None:
        from scipy import sparse

        vocab = sorted(set().union(*sets)) if sets else []
        self.column = {t: i for i, t in enumerate(vocab)}
        rows = [self.column[t] for s in sets for t in s]
        cols = [j for j, s in enumerate(sets) for _ in s]
        self.matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(vocab), len(sets)))

    def weighted(self, tokens: list[str], weights: np.ndarray) -> np.ndarray:
        """For each set: the sum of the weights of the tokens it contains."""
        hit = [(self.column[t], w) for t, w in zip(tokens, weights, strict=True) if t in self.column]
        n_sets = self.matrix.shape[1]
        if not hit:
            return np.zeros(n_sets)
        # The sets of each token are a slice of the CSR arrays; summing their weights with one bincount
        # avoids slicing the sparse matrix (about 0.5 ms of scipy overhead per call, several calls a question).
        indptr, indices = self.matrix.indptr, self.matrix.indices
        rows = np.array([r for r, _ in hit])
        w = np.array([w for _, w in hit])
        members = np.concatenate([indices[indptr[r]:indptr[r + 1]] for r in rows])
        return np.bincount(members, weights=np.repeat(w, indptr[rows + 1] - indptr[rows]), minlength=n_sets)


def _rescale(cos: np.ndarray) -> np.ndarray:
    return np.clip((cos - DENSE_FLOOR) / (DENSE_CEILING - DENSE_FLOOR), 0.0, 1.0)


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, pipeline: TextPipeline,
                 query_prefix: str = "query: ") -> None:
        self.index = index
        self.embedder = embedder
        self.pipeline = pipeline
        self.query_prefix = query_prefix
        self.entry_ids = list(index.entries)
        self.topics = list(index.topic_model.topics)
        tix = {t: i for i, t in enumerate(self.topics)}
        n_entries = len(self.entry_ids)
        self._n_units = len(index.units)
        self._entry_topic = np.array([tix[index.entries[e]["topic"]] for e in self.entry_ids], dtype=np.int64)
        self._unit_topic = self._entry_topic[index.unit_entry]
        self._dense_entry = index.unit_entry[index.dense_units]
        self._dense_topic = self._unit_topic[index.dense_units]
        # Token sets per entry and per topic, for the coverage feature.
        entry_words: list[set[str]] = [set() for _ in range(n_entries)]
        entry_folded: list[set[str]] = [set() for _ in range(n_entries)]
        for u, ei in zip(index.units, index.unit_entry, strict=True):
            entry_words[ei].update(u.get("words") or [])
            entry_folded[ei].update(u.get("folded") or [])
        topic_words: list[set[str]] = [set() for _ in self.topics]
        topic_folded: list[set[str]] = [set() for _ in self.topics]
        for ei, ti in enumerate(self._entry_topic):
            topic_words[ti] |= entry_words[ei]
            topic_folded[ti] |= entry_folded[ei]
        self._topics_arr = np.array([index.entries[e]["topic"] for e in self.entry_ids])
        n_topics = len(self.topics)
        self._dense_to_entry = _GroupMax(self._dense_entry, n_entries)
        self._dense_to_topic = _GroupMax(self._dense_topic, n_topics)
        self._unit_to_entry = _GroupMax(np.asarray(index.unit_entry), n_entries)
        self._unit_to_topic = _GroupMax(self._unit_topic, n_topics)
        self._entry_members = (_Membership(entry_words), _Membership(entry_folded))
        self._topic_members = (_Membership(topic_words), _Membership(topic_folded))

    def warm_up(self) -> None:
        # The model's own thread pool (ONNX Runtime) owns the cores. numpy's BLAS pool, left at one thread
        # per core, busy-waits after each matrix product beside it: measured here, that doubled the
        # embedding time of a question (dev-v2, p50 31.8 -> 14.8 ms with BLAS on one thread). The products
        # here are small (passages x 384), so one BLAS (and OpenMP) thread loses nothing.
        self.embedder.warm_up()
        self.pipeline.warm_up()
        self.search("trợ cấp thất nghiệp")  # loads every library a search uses, then:
        threadpool_limits(limits=1)

    # --- helpers -----------------------------------------------------------------------------------
    def _idf(self, token: str, df: dict[str, int]) -> float:
        n = self._n_units
        d = df.get(token, 0)
        return math.log(1 + (n - d + 0.5) / (d + 0.5))

    def _coverage(self, q: Processed, members: tuple[_Membership, _Membership],
                  idxs: np.ndarray | None = None) -> np.ndarray:
        """IDF-weighted share of the question's words (or folded syllables) found in each set."""
        best = np.zeros(members[0].matrix.shape[1])
        syl = [t for t in q.folded if "_" not in t]
        for tokens, df, member in ((q.words, self.index.df_words, members[0]),
                                   (syl, self.index.df_folded, members[1])):
            toks = list(dict.fromkeys(t for t in tokens if t))
            if not toks:
                continue
            w = np.array([self._idf(t, df) for t in toks])
            best = np.maximum(best, member.weighted(toks, w) / w.sum())
        return best if idxs is None else best[idxs]

    def _bm25(self, q: Processed) -> np.ndarray:
        """Per unit: mean of word BM25 and folded BM25, each relative to its best unit."""
        n = self._n_units
        bw = np.asarray(self.index.bm25_words.get_scores(q.words)) if q.words else np.zeros(n)
        bf = np.asarray(self.index.bm25_folded.get_scores(q.folded)) if q.folded else np.zeros(n)
        mw, mf = bw.max(), bf.max()
        return 0.5 * (bw / mw if mw > 0 else bw) + 0.5 * (bf / mf if mf > 0 else bf)

    # --- the search --------------------------------------------------------------------------------
    def search(self, text: str, k: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        parsed = parse(text)
        procs = [self.pipeline.process(v) for v in parsed.views]
        timings["text"] = (time.perf_counter() - t0) * 1000

        t1 = time.perf_counter()
        seg = self.index.manifest.segmented_for_model
        qv = self.embedder.embed([p.dense_text(seg) for p in procs], self.query_prefix)
        timings["embed"] = (time.perf_counter() - t1) * 1000

        t1 = time.perf_counter()
        idx, tm = self.index, self.index.topic_model
        n_e = len(self.entry_ids)
        vecs = idx.vectors
        restored = [p.restored for p in procs]
        words_lp, domain = tm.lexical(restored)
        vector_lp = tm.dense_logprob(qv)
        vdomain = tm.vector_domain_logit(qv)
        per_view = []
        entry_dense = np.full(n_e, -1.0)
        entry_lex = np.zeros(n_e)
        for vi, p in enumerate(procs):
            cos = vecs @ qv[vi]
            d_entry = self._dense_to_entry(cos, -1.0)
            d_topic = self._dense_to_topic(cos, -1.0)
            rel = self._bm25(p)
            r_entry = self._unit_to_entry(rel, 0.0)
            r_topic = self._unit_to_topic(rel, 0.0)
            cov_topic = self._coverage(p, self._topic_members)
            per_view.append((d_topic, r_topic, cov_topic))
            entry_dense = np.maximum(entry_dense, d_entry)
            entry_lex += r_entry / len(procs)
        if len(procs) == 1:  # a one-sentence question: both views are the same
            per_view.append(per_view[0])
            words_lp = np.vstack([words_lp, words_lp])
            vector_lp = np.vstack([vector_lp, vector_lp])
            domain = np.r_[domain, domain]
            vdomain = np.r_[vdomain, vdomain]
        (dtb, rtb, ctb), (dtc, rtc, ctc) = per_view
        topic_features = np.stack(
            [_rescale(dtb), _rescale(dtc), rtb, rtc, ctb, ctc, words_lp[0], words_lp[1], vector_lp[0],
             vector_lp[1]], axis=1)

        # Entries: a shortlist on dense + BM25, then coverage of the asking sentences for the shortlist.
        w = ENTRY_DENSE_WEIGHT
        pre = w * _rescale(entry_dense) + (1 - w) * entry_lex
        short = np.argsort(-pre)[: max(k * 3, 30)]
        cov_e = self._coverage(procs[-1], self._entry_members, short)
        lexical = 0.5 * entry_lex[short] + 0.5 * cov_e
        fused = w * _rescale(entry_dense[short]) + (1 - w) * lexical
        order = np.argsort(-fused)
        cands = [
            Candidate(entry_id=self.entry_ids[short[j]], topic=str(self._topics_arr[short[j]]),
                      score=round(float(fused[j]), 4), dense=round(float(entry_dense[short[j]]), 4),
                      lexical=round(float(lexical[j]), 4), coverage=round(float(cov_e[j]), 4))
            for j in order
        ]
        best_entry: dict[str, Candidate] = {}
        for c in cands:
            best_entry.setdefault(c.topic, c)
        for ti, t in enumerate(self.topics):  # topics with no entry on the shortlist
            if t not in best_entry:
                members = np.flatnonzero(self._entry_topic == ti)
                if len(members):
                    ei = int(members[np.argmax(pre[members])])
                    best_entry[t] = Candidate(self.entry_ids[ei], t, round(float(pre[ei]), 4),
                                              round(float(entry_dense[ei]), 4), round(float(entry_lex[ei]), 4),
                                              0.0)

        oos_sim, oos_group = 0.0, None
        if len(idx.oos_vectors):
            sims_oos = idx.oos_vectors @ qv[0]
            j = int(np.argmax(sims_oos))
            oos_sim, oos_group = float(sims_oos[j]), idx.oos_meta[j]
        best_cos = float(max(dtb.max(), dtc.max()))
        question_features = np.array([
            best_cos, float(max(ctb.max(), ctc.max())), float(domain[0]), float(domain[1]),
            oos_sim - float(dtb.max()), float(np.exp(words_lp).max()),
            float(vdomain[0]), float(vdomain[1]),
        ])
        timings["rank"] = (time.perf_counter() - t1) * 1000
        return SearchResult(
            query=procs[0], parsed=parsed, candidates=cands[:k], topics=self.topics,
            topic_features=topic_features, question_features=question_features, best_entry=best_entry,
            latency_ms=(time.perf_counter() - t0) * 1000, timings=timings, oos_similarity=round(oos_sim, 4),
            oos_group=oos_group, query_vector=None if seg else qv[0],
        )

    def entry(self, entry_id: str) -> dict[str, Any]:
        return self.index.entries[entry_id]
