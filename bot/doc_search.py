"""Search the legal texts (the documents tier): a question in, ranked passages with citations out.

    searcher = DocSearcher.from_settings(settings)        # cheap; heavy parts load in warm_up()
    searcher.warm_up()
    result = searcher.search("thuong binh 85% duoc bao nhieu tien")
    for hit in result.hits:
        hit.citation        # "mục 65 Phụ lục II Nghị định 75/2021/NĐ-CP"
        hit.text            # the matching clause, phone-sized (≤ ~600 characters), with its warning
        hit.superseded      # True when the clause's wording (and any amount in it) is no longer current

The curated tier already processed the question and embedded it: ``search_processed(q, qvec)`` reuses
that work, so the documents tier adds a few milliseconds, not a second embedding. It can also pass
``hints``: the Articles that the curated entries closest to the question cite as their legal basis
(:meth:`bot.assistant.Assistant.legal_hints`). Citizens do not speak in the law's words, but the FAQ's
phrasings do match them, and an entry's legal basis names the Article that holds its rule; a passage of a
cited Article is ranked up.

Scoring mirrors the curated retriever: BM25 over segmented words and over folded syllables, relative
to the best passage, plus the IDF-weighted share of the question's words the passage contains (absolute,
so a question whose words no text has scores low), fused with the dense similarity of the passage's
article (or table row). Hits are grouped by article: each article appears once, with its best clause.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.diacritics import fold
from indexer.documents.corpus import AMOUNT_RE, Passage
from indexer.documents.index import LoadedDocIndex, load_doc_index
from indexer.documents.numbers import citation, number_key, short_article
from indexer.embed import Embedder
from indexer.text import Processed, TextPipeline

MAX_CLAUSE_CHARS = 600
MAX_ARTICLE_CHARS = 3500
""""Xem toàn văn": the Article is shown up to this length (channels split it into messages), then cut."""


BOILERPLATE_TITLE = re.compile(
    r"(?i)^(phạm vi điều chỉnh|đối tượng áp dụng|giải thích từ ngữ|hiệu lực thi hành|trách nhiệm thi hành|"
    r"tổ chức thực hiện|điều khoản thi hành|điều khoản chuyển tiếp|quy định chuyển tiếp|hiệu lực)")
"""Articles every document has and citizens rarely need: they match many words of any question."""


@dataclass
class DocSearchParams:
    dense_weight: float = 0.6
    dense_floor: float = 0.78
    dense_ceiling: float = 0.92
    superseded_factor: float = 0.9
    """A superseded passage ranks below a current one that matches as well."""
    untagged_factor: float = 0.8
    """Passages of documents that serve none of the Department's topics (another ministry's circular)."""
    boilerplate_factor: float = 0.8
    """Passages of scope/definitions/entry-into-force articles."""
    candidates: int = 300
    cited_boost: float = 0.3
    """A passage of an Article cited by a curated entry close to the question scores × (1 + this × the
    hint's weight). Chosen on tests/data/docs-eval.jsonl by scripts/cv_legal_hints.py (5-fold
    cross-validation repeated 10 times; a lift for every passage of a cited document, whatever the Article,
    was tried beside it and chosen at 0)."""
    derived_articles: int = 2
    """An entry that cites a document without naming an Article (about half of them) lifts the Articles of
    that document closest to what the entry says (:meth:`DocSearcher.closest_articles`): this many. Chosen
    with ``cited_boost`` by scripts/cv_legal_hints.py; 0 turns it off."""


@dataclass(frozen=True, eq=False)
class EntryText:
    """What a curated entry says, as the documents tier matches it to the Articles of a document it cites:
    its answer's (or a procedure's summary's) processed tokens and its question's vector."""

    id: str
    words: tuple[str, ...]
    folded: tuple[str, ...]
    vector: np.ndarray | None


@dataclass(frozen=True)
class LegalHint:
    """A document (and the Articles of it) that a curated entry close to the question cites."""

    document: str
    """Its number, as cited (compared through :func:`number_key` and the catalogue's aliases)."""
    articles: frozenset[str] | None
    """:func:`short_article` labels ("Điều 24", "Phụ lục I"), or None when the entry names no Article."""
    weight: float
    """1 for the closest entry, less for the next ones."""
    entry: EntryText | None = None
    """The citing entry's text: with no Article named, the document's Articles closest to it are lifted."""


@dataclass
class PassageHit:
    id: str
    score: float
    citation: str
    document: str
    doc_type: str
    doc_title: str
    article: str
    article_title: str
    clause: str | None
    text: str
    """The matching clause, at most ~600 characters, prefixed by a warning when it is not current."""
    effective: str | None
    """The date the passage's wording holds from (ISO)."""
    status: str
    superseded: bool
    superseded_by: str | None
    superseded_from: str | None
    older_than_curated: bool
    warning: str | None
    topic: str | None
    source_file: str
    partial: bool
    dense: float = 0.0
    lexical: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class ArticleText:
    """The whole Article (or annex) a passage belongs to, as "Xem toàn văn" shows it."""

    citation: str
    """The Article's citation ("Điều 3 Quyết định 123/QĐ-SLĐTBXH")."""
    title: str
    text: str
    """Its passages in order; a warning line before the passages it concerns; cut at the length limit."""
    effective: str | None
    cut: bool
    """True when the Article was longer than the limit and its end left out."""


@dataclass
class DocSearchResult:
    query: Processed
    hits: list[PassageHit]
    latency_ms: float
    timings: dict[str, float] = field(default_factory=dict)


def vn_date(iso: str | None) -> str:
    """``2025-03-15`` -> ``15/03/2025`` ("?" for none; an unreadable value as it is)."""
    if not iso:
        return "?"
    try:
        d = dt.date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


def warning_for(p: Passage, older_than_curated: bool, curated_from: str | None = None) -> str | None:
    """The warning a citizen must see with this passage, in Vietnamese, or None."""
    if p.superseded_by:
        scope = f" ({p.superseded_scope})" if p.superseded_scope else ""
        since = f" từ {vn_date(p.superseded_from)}" if p.superseded_from else ""
        tail = " Các mức tiền trong đoạn này không còn áp dụng." if p.has_amount else ""
        return f"Lưu ý: quy định này đã được thay thế bởi {p.superseded_by}{since}{scope}.{tail}"
    if p.status in ("superseded", "expired"):
        return "Lưu ý: văn bản này không còn hiệu lực; không dùng làm căn cứ hiện hành."
    if older_than_curated:
        return (f"Lưu ý: đoạn này áp dụng từ {vn_date(p.text_date)}; mức mới hơn áp dụng từ "
                f"{vn_date(curated_from)} — xem câu trả lời của Sở hoặc hỏi cán bộ.")
    return None


def clause_snippet(p: Passage, query_folded: set[str], limit: int = MAX_CLAUSE_CHARS) -> str:
    """The part of the passage that answers: the whole clause when it fits, else its first line and the
    lines (points) sharing the most words with the question, in their order, cut at ``limit``."""
    text = p.text.strip()
    if p.kind == "row":
        # A table row means little alone: name the table (its title, else the annex's title).
        frame = p.lead or p.title
        if len(frame) > 160:
            frame = frame[:159].rsplit(" ", 1)[0] + "…"
        text = f"{frame}: {text}" if frame else text
    if len(text) <= limit:
        return text
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) <= 1:
        cut = text[: limit - 1]
        return cut[: cut.rfind(" ")] + "…" if " " in cut else cut + "…"

    def overlap(line: str) -> int:
        return len(set(re.findall(r"\w+", fold(line))) & query_folded)

    keep = {0}
    budget = limit - len(lines[0])
    for i in sorted(range(1, len(lines)), key=lambda j: (-overlap(lines[j]), j)):
        if len(lines[i]) + 2 <= budget:
            keep.add(i)
            budget -= len(lines[i]) + 2
    out: list[str] = []
    prev = -1
    for i in sorted(keep):
        if prev >= 0 and i != prev + 1:
            out.append("…")
        out.append(lines[i])
        prev = i
    if prev != len(lines) - 1:
        out.append("…")
    snippet = "\n".join(out)
    if len(snippet) > limit:
        snippet = snippet[: limit - 1].rsplit(" ", 1)[0] + "…"
    return snippet


class DocSearcher:
    def __init__(self, index: LoadedDocIndex, embedder: Embedder | None, pipeline: TextPipeline,
                 params: DocSearchParams | None = None, query_prefix: str = "query: ",
                 curated_from: dict[str, str] | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.pipeline = pipeline
        self.params = params or DocSearchParams()
        self.query_prefix = query_prefix
        self.curated_from = curated_from or {}
        """topic -> the latest date a curated figure of that topic holds from (ISO)."""
        self._n = len(index.passages)
        self._sup = np.array([p.superseded for p in index.passages])
        groups: dict[tuple[str, str], int] = {}
        self._groups = np.array([groups.setdefault((p.document, p.article or p.id), len(groups))
                                 for p in index.passages], dtype=np.int64)
        self._position = {p.id: i for i, p in enumerate(index.passages)}
        self.aliases: dict[str, str] = {}
        """number key -> the canonical number's key, for every document and alias in the index."""
        for num, d in index.documents.items():
            for name in [num, *(d.get("aliases") or [])]:
                self.aliases[number_key(name)] = number_key(num)
        self._doc_key = [self.key(p.document) for p in index.passages]
        """Per passage, its document's key (:meth:`key`)."""
        self._in_article: dict[tuple[str, str], list[int]] = {}
        in_document: dict[str, list[int]] = {}
        by: dict[str, set[str | None]] = {}
        for i, p in enumerate(index.passages):
            key = self._doc_key[i]
            by.setdefault(key, set()).add(p.superseded_by)
            if p.article:
                self._in_article.setdefault((key, short_article(p.article)), []).append(i)
                in_document.setdefault(key, []).append(i)
        self._in_document = {k: np.array(v, dtype=np.int64) for k, v in in_document.items()}
        self._replaces: dict[str, list[str]] = {}
        """A document -> the documents the supersession map says it supersedes as a whole (every passage
        flagged by it: Luật Việc làm 2025 -> 2013): an entry citing a text that is not shipped is matched
        to the Articles of the text it replaced."""
        for old, new in by.items():
            if len(new) == 1 and (successor := next(iter(new))) is not None:
                self._replaces.setdefault(number_key(successor), []).append(old)
        self._closest: dict[tuple[str, str, int], tuple[tuple[str, str], ...]] = {}
        prm = self.params
        tagged = {num for num, d in index.documents.items() if d.get("topics")}
        self._prior = np.array([
            (1.0 if p.document in tagged else prm.untagged_factor)
            * (prm.boilerplate_factor if BOILERPLATE_TITLE.match(p.title or "") else 1.0)
            * (prm.superseded_factor if p.superseded else 1.0)
            for p in index.passages])

    @classmethod
    def from_settings(cls, settings: Any, embedder: Embedder | None = None,
                      pipeline: TextPipeline | None = None, params: DocSearchParams | None = None,
                      ) -> DocSearcher:
        """The documents tier for ``settings``: the current documents index, the configured embedder, the
        text pipeline with the curated index's diacritic restorer (or the shipped one)."""
        from bot.embedder import settings_embedder
        from indexer.diacritics import DiacriticRestorer
        from indexer.index import SHIPPED_RESTORER, current_version

        index = load_doc_index(settings.index_root, model=None)
        if embedder is None:
            embedder = settings_embedder(settings)
        if embedder.name != index.manifest.model:
            raise RuntimeError(f"chỉ mục văn bản dựng bằng '{index.manifest.model}', cấu hình là "
                               f"'{embedder.name}': chạy `ldtbxh documents build`")
        if pipeline is None:
            restorer_path = SHIPPED_RESTORER
            cur = current_version(settings.index_root)
            if cur and (settings.index_root / "versions" / cur / "diacritics.json.gz").exists():
                restorer_path = settings.index_root / "versions" / cur / "diacritics.json.gz"
            restorer = DiacriticRestorer.load(restorer_path) if Path(restorer_path).exists() else None
            pipeline = TextPipeline.from_knowledge(settings.knowledge_dir, restorer=restorer)
        return cls(index, embedder, pipeline, params, settings.query_prefix,
                   curated_from=curated_dates(settings.knowledge_dir))

    def warm_up(self) -> None:
        if self.embedder is not None:
            self.embedder.warm_up()
        self.pipeline.warm_up()
        self.search("trợ cấp thất nghiệp")

    # --- scoring ----------------------------------------------------------------------------------
    def _lexical(self, bm: Any, tokens: list[str], df: dict[str, int], cov_tokens: list[str]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 of the tokens and the IDF-weighted share of ``cov_tokens`` each passage contains, read
        straight from the BM25 postings (one pass, no per-token score arrays)."""
        n = self._n
        vocab = bm.vocab_dict
        data, indices, indptr = bm.scores["data"], bm.scores["indices"], bm.scores["indptr"]
        ids = [vocab[t] for t in dict.fromkeys(tokens) if t in vocab]
        if ids:
            pos = np.concatenate([np.arange(indptr[i], indptr[i + 1]) for i in ids])
            score: np.ndarray = np.bincount(indices[pos], weights=data[pos], minlength=n).astype(np.float64)
        else:
            score = np.zeros(n)
        toks = [t for t in dict.fromkeys(cov_tokens) if t]
        cov: np.ndarray = np.zeros(n)
        if toks:
            weights = np.array([math.log(1 + (n - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in toks])
            weights /= weights.sum()
            present = [(vocab[t], w) for t, w in zip(toks, weights, strict=True) if t in vocab]
            if present:
                spans = [(indptr[i], indptr[i + 1], w) for i, w in present]
                pos = np.concatenate([np.arange(a, b) for a, b, _ in spans])
                wts = np.concatenate([np.full(b - a, w) for a, b, w in spans])
                cov = np.bincount(indices[pos], weights=wts, minlength=n).astype(np.float64)
        return score, cov

    def key(self, number: str) -> str:
        """A document number's key, an alias resolved to the document it names."""
        return self.aliases.get(number_key(number), number_key(number))

    def _fused(self, words: list[str], folded: list[str], vector: np.ndarray | None,
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fused score (before priors and hints), the dense similarity and the lexical score of every
        passage (of ``rows`` only, when given: BM25 is then relative to the best of those)."""
        idx, p = self.index, self.params
        bw, cw = self._lexical(idx.bm25_words, words, idx.df_words, words)
        bf, cf = self._lexical(idx.bm25_folded, folded, idx.df_folded, [t for t in folded if "_" not in t])
        if rows is not None:
            bw, bf, cw, cf = bw[rows], bf[rows], cw[rows], cf[rows]
        rel = 0.5 * (bw / bw.max() if bw.max() > 0 else bw) + 0.5 * (bf / bf.max() if bf.max() > 0 else bf)
        lexical = 0.5 * rel + 0.5 * np.maximum(cw, cf)
        if vector is None or not len(idx.vectors):
            return lexical, np.zeros(len(lexical)), lexical
        # einsum, not BLAS: a threaded matrix-vector product stalls on a busy two-core machine.
        sims = np.einsum("ij,j->i", idx.vectors, np.asarray(vector, dtype=np.float32).reshape(-1))
        dense = sims[idx.unit_of if rows is None else idx.unit_of[rows]]
        dn = np.clip((dense - p.dense_floor) / (p.dense_ceiling - p.dense_floor), 0, 1)
        return p.dense_weight * dn + (1 - p.dense_weight) * lexical, dense, lexical

    def closest_articles(self, document: str, entry: EntryText) -> tuple[tuple[str, str], ...]:
        """The ``derived_articles`` Articles (document key, label) of ``document`` — or, when it is not
        shipped, of the shipped documents it supersedes as a whole — whose passages best match what
        ``entry`` says (the same lexical and dense scores as a question; cached per entry, document and
        number of Articles)."""
        key = self.key(document)
        cached = self._closest.get((entry.id, key, self.params.derived_articles))
        if cached is not None:
            return cached
        targets = [key] if key in self._in_document else [k for k in self._replaces.get(key, [])
                                                            if k in self._in_document]
        found: list[tuple[str, str]] = []
        if targets and self.params.derived_articles > 0:
            rows = np.concatenate([self._in_document[k] for k in targets])
            score, _, _ = self._fused(list(entry.words), list(entry.folded), entry.vector, rows)
            for i in rows[np.argsort(-score, kind="stable")]:
                art = (self._doc_key[int(i)], short_article(self.index.passages[int(i)].article))
                if art not in found:
                    found.append(art)
                    if len(found) >= self.params.derived_articles:
                        break
        self._closest[(entry.id, key, self.params.derived_articles)] = out = tuple(found)
        return out

    def _hint_factor(self, hints: Sequence[LegalHint]) -> np.ndarray | None:
        """Per passage, × (1 + boost × the best weight of a hint citing its Article)."""
        art = np.zeros(self._n)
        for h in hints:
            key = self.key(h.document)
            if h.articles:
                cited = [(key, a) for a in h.articles]
            elif h.entry is not None:
                cited = list(self.closest_articles(h.document, h.entry))
            else:
                continue
            for c in cited:
                rows = self._in_article.get(c)
                if rows:
                    art[rows] = np.maximum(art[rows], h.weight)
        return 1 + self.params.cited_boost * art if art.any() else None

    def search(self, text: str, k: int = 10, hints: Sequence[LegalHint] = ()) -> DocSearchResult:
        """Rank passages for ``text``; ``hints``: what the curated entries closest to it cite."""
        t0 = time.perf_counter()
        q = self.pipeline.process(text)
        t_text = (time.perf_counter() - t0) * 1000
        qv = None
        if self.embedder is not None:
            qv = self.embedder.embed([q.dense_text()], self.query_prefix)[0]
        t_embed = (time.perf_counter() - t0) * 1000 - t_text
        t1 = time.perf_counter()
        hits = self.search_processed(q, qv, k, hints)
        t_rank = (time.perf_counter() - t1) * 1000
        return DocSearchResult(q, hits, (time.perf_counter() - t0) * 1000,
                               {"text": t_text, "embed": t_embed, "rank": t_rank})

    def search_processed(self, q: Processed, qvec: np.ndarray | None, k: int = 10,
                         hints: Sequence[LegalHint] = ()) -> list[PassageHit]:
        """Rank passages for a question the curated tier already processed and embedded."""
        p = self.params
        idx = self.index
        fused, dense, lexical = self._fused(q.words, q.folded, qvec)
        fused = fused * self._prior
        factor = self._hint_factor(hints)
        if factor is not None:
            fused = fused * factor
        m = min(p.candidates, self._n)
        top = np.argpartition(-fused, m - 1)[:m] if m < self._n else np.arange(self._n)
        top = top[np.argsort(-fused[top])]
        seen: set[int] = set()
        qf = {t for t in q.folded if "_" not in t}
        hits: list[PassageHit] = []
        for i in top:
            g = int(self._groups[i])
            if g in seen:
                continue
            seen.add(g)
            hits.append(self._hit(idx.passages[i], float(fused[i]), float(dense[i]), float(lexical[i]), qf))
            if len(hits) >= k:
                break
        return hits

    def article_text(self, passage_id: str, limit: int = MAX_ARTICLE_CHARS) -> ArticleText | None:
        """The Article ``passage_id`` belongs to, whole (up to ``limit`` characters), with the warnings of its
        passages; None when this index has no such passage (a newer index replaced it)."""
        pos = self._position.get(passage_id)
        if pos is None:
            return None
        first = self.index.passages[pos]
        lines: list[str] = []
        size, cut, last_warning, last_lead = 0, False, None, None
        for i in np.flatnonzero(self._groups == self._groups[pos]):
            p = self.index.passages[int(i)]
            cur = self.curated_from.get(p.topic or "")
            warning = warning_for(p, bool(cur and p.has_amount and p.text_date and p.text_date < cur), cur)
            block = []
            if warning and warning != last_warning:
                block.append(warning)
            if p.kind == "row" and p.lead and p.lead != last_lead:
                block.append(p.lead)  # a table's header, once
            block.append(p.text.strip())
            piece = "\n".join(block)
            if lines and size + len(piece) + 1 > limit:
                cut = True
                break
            lines.append(piece if len(piece) <= limit else piece[: limit - 1].rsplit(" ", 1)[0] + "…")
            size += len(lines[-1]) + 1
            last_warning, last_lead = warning or last_warning, p.lead
        head = citation(first.doc_type, first.document, first.article, None, None, None)
        return ArticleText(citation=head, title=first.title, text="\n".join(lines), effective=first.text_date,
                           cut=cut)

    def _hit(self, ps: Passage, score: float, dense: float, lexical: float, qf: set[str]) -> PassageHit:
        doc = self.index.documents.get(ps.document, {})
        cur = self.curated_from.get(ps.topic or "")
        older = bool(cur and ps.has_amount and ps.text_date and ps.text_date < cur)
        warning = warning_for(ps, older, cur)
        snippet = clause_snippet(ps, qf, MAX_CLAUSE_CHARS - (len(warning) + 1 if warning else 0))
        return PassageHit(
            id=ps.id, score=round(score, 4), citation=ps.citation, document=ps.document, doc_type=ps.doc_type,
            doc_title=str(doc.get("title") or ""), article=ps.article, article_title=ps.title,
            clause=ps.clause, text=f"{warning}\n{snippet}" if warning else snippet, effective=ps.text_date,
            status=ps.status, superseded=ps.superseded, superseded_by=ps.superseded_by,
            superseded_from=ps.superseded_from, older_than_curated=older, warning=warning, topic=ps.topic,
            source_file=ps.source_file, partial=ps.partial, dense=round(dense, 4), lexical=round(lexical, 4),
        )


def curated_dates(knowledge_dir: Path) -> dict[str, str]:
    """topic -> the latest ``valid_from`` of the curated entries of that topic that state an amount."""
    from indexer.knowledge import load_knowledge

    try:
        kb = load_knowledge(Path(knowledge_dir))
    except Exception:  # noqa: BLE001 - the documents tier must work even if the curated base is broken
        return {}
    out: dict[str, str] = {}
    for e in kb.entries:
        if AMOUNT_RE.search(e.answer or ""):
            d = e.valid_from.isoformat()
            if d > out.get(e.topic, ""):
                out[e.topic] = d
    return out
