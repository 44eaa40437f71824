"""The documents index (second tier): passages of the shipped legal texts, searchable like the curated
entries — BM25 over segmented words and over accent-folded syllables, plus dense e5 vectors.

A version lives in ``<index_root>/documents/versions/<name>/``:

    manifest.json       counts, model, build time
    passages.json       one row per passage (citation parts, text, dates, status, topic, dense unit)
    documents.json      the catalogue entries of the indexed documents
    vectors.npy         one normalised vector per dense unit (an article, or an annex table row)
    bm25_words/         BM25 over segmented words (stop-words removed)
    bm25_folded/        BM25 over folded syllables and syllable bigrams
    lexicon.json        document frequencies (for the query-coverage feature)
    tokens.json.gz      the passages' tokens, reused by the next build when a passage did not change

Dense vectors are per article, not per passage: ~4,500 vectors instead of ~25,000 keep a cold build
within minutes on two cores; a passage is scored with its article's vector (an annex row with its own).
Written into a temporary directory and published by renaming it and replacing ``CURRENT`` atomically.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from indexer import yamlio
from indexer.documents.catalog import load_catalog, load_supersession
from indexer.documents.corpus import Corpus, Passage, build_corpus
from indexer.embed import Embedder
from indexer.text import _PUNCT, _WS, Segmenter, TextPipeline, nfc, tone_normalize

FORMAT = 1
Progress = Callable[[str, int, int], None]


class DocIndexError(RuntimeError):
    """A problem with the documents index, with a message meant for an administrator."""


class CatalogInvalid(DocIndexError):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} lỗi trong catalog.yaml/supersession.yaml: chỉ mục văn bản không được dựng "
                         "(errors in the catalogue: the documents index was not built)")


@dataclass
class DocManifest:
    version: str
    format: int
    model: str
    dim: int
    documents: int
    articles: int
    passages: int
    units: int
    duplicates: int
    built_at: str
    build_seconds: float
    reused_vectors: int = 0
    reused_tokens: int = 0
    timings: dict[str, float] | None = None


def docs_root(index_root: Path) -> Path:
    return Path(index_root) / "documents"


def current_doc_version(root: Path) -> str | None:
    p = root / "CURRENT"
    return (p.read_text().strip() or None) if p.exists() else None


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


# --- text processing, in worker processes ---------------------------------------------------------
_PIPE: TextPipeline | None = None


@lru_cache(maxsize=1 << 18)
def _tone_chunk(chunk: str) -> str:
    return tone_normalize(chunk)


def passage_tokens(pipe: TextPipeline, text: str) -> tuple[list[str], list[str]]:
    """``pipe.process_passage(text)``'s words and folded tokens, with the tone-mark normalisation cached
    per space-separated chunk: legal texts repeat a small vocabulary, and underthesea's normaliser is
    the slowest step after segmentation. Same output (checked in the tests)."""
    base = _WS.sub(" ", _PUNCT.sub(" ", nfc(text).lower())).strip()
    normalized = _WS.sub(" ", " ".join(_tone_chunk(c) for c in base.split(" ") if c)).strip()
    return pipe.words(normalized), pipe.folded(normalized)


def _init_worker(knowledge_dir: str) -> None:
    global _PIPE
    _PIPE = TextPipeline.from_knowledge(Path(knowledge_dir))
    _PIPE.warm_up()


def _process_chunk(texts: list[str]) -> list[tuple[list[str], list[str]]]:
    assert _PIPE is not None
    return [passage_tokens(_PIPE, t) for t in texts]


def process_texts(texts: list[str], knowledge_dir: Path, segmenter: Segmenter | None, workers: int,
                  say: Progress) -> list[tuple[list[str], list[str]]]:
    """Words and folded tokens of each text with the shared pipeline; several processes when there is
    more than one core (segmentation dominates a cold build)."""
    total = len(texts)
    if not texts:
        return []
    chunk = 200
    chunks = [texts[i: i + chunk] for i in range(0, total, chunk)]
    out: list[tuple[list[str], list[str]]] = []
    if workers <= 1 or segmenter is not None or total < 2 * chunk:
        pipe = TextPipeline.from_knowledge(knowledge_dir, segmenter=segmenter)
        pipe.warm_up()
        for c in chunks:
            out.extend(passage_tokens(pipe, t) for t in c)
            say("text", len(out), total)
        return out
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(str(knowledge_dir),)) as pool:
        for res in pool.map(_process_chunk, chunks):
            out.extend(res)
            say("text", len(out), total)
    return out


def _previous(root: Path) -> tuple[dict[str, np.ndarray], dict[str, tuple[list[str], list[str]]]]:
    cur = current_doc_version(root)
    if not cur:
        return {}, {}
    d = root / "versions" / cur
    vecs: dict[str, np.ndarray] = {}
    toks: dict[str, tuple[list[str], list[str]]] = {}
    try:
        unit_hashes = json.loads((d / "unit_hashes.json").read_text())
        v = np.load(d / "vectors.npy")
        vecs = {h: v[i] for i, h in enumerate(unit_hashes) if i < len(v)}
        with gzip.open(d / "tokens.json.gz", "rt", encoding="utf-8") as f:
            toks = {h: (w, fo) for h, w, fo in json.load(f)}
    except (OSError, ValueError, KeyError):
        pass
    return vecs, toks


def build_doc_index(knowledge_dir: Path, index_root: Path, embedder: Embedder, *,
                    passage_prefix: str = "passage: ", segmenter: Segmenter | None = None,
                    workers: int | None = None, progress: Progress | None = None,
                    publish_now: bool = True, today: dt.date | None = None) -> DocManifest:
    """Build a new documents index version from ``knowledge/documents`` and (by default) publish it."""
    import bm25s

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    say = progress or (lambda stage, done, total: None)
    knowledge_dir = Path(knowledge_dir)
    docs_dir = knowledge_dir / "documents"
    topics = _topic_ids(knowledge_dir)
    catalog = load_catalog(docs_dir, topics)
    sups, sup_errors = load_supersession(docs_dir)
    if catalog.errors or sup_errors:
        raise CatalogInvalid(catalog.errors + sup_errors)
    corpus: Corpus = build_corpus(knowledge_dir, catalog, sups, progress=say, today=today)
    if not corpus.passages:
        raise DocIndexError("không có đoạn văn bản nào để lập chỉ mục (no passages: import documents first)")
    timings["read"] = round(time.perf_counter() - t0, 2)

    root = docs_root(index_root)
    old_vecs, old_toks = _previous(root)

    # Lexical side (reusing the previous build's tokens for unchanged passages).
    t1 = time.perf_counter()
    lex_texts = [p.lexical_text() for p in corpus.passages]
    hashes = [_hash("lex", t) for t in lex_texts]
    todo = [i for i, h in enumerate(hashes) if h not in old_toks]
    cores = os.cpu_count() or 1
    done = process_texts([lex_texts[i] for i in todo], knowledge_dir, segmenter,
                         workers if workers is not None else min(2, cores), say)
    tokens: list[tuple[list[str], list[str]]] = [old_toks.get(h, ([], [])) for h in hashes]
    for i, res in zip(todo, done, strict=True):
        tokens[i] = res
    timings["text"] = round(time.perf_counter() - t1, 2)

    # Dense side: one vector per unit, reused when its text did not change.
    t1 = time.perf_counter()
    embedder.warm_up()
    unit_hashes = [_hash(embedder.name, passage_prefix, u) for u in corpus.units]
    vecs = np.zeros((len(corpus.units), embedder.dim), dtype=np.float32)
    need = []
    reused = 0
    for i, h in enumerate(unit_hashes):
        v = old_vecs.get(h)
        if v is not None and v.shape[0] == embedder.dim:
            vecs[i] = v
            reused += 1
        else:
            need.append(i)
    # A text that several units share (5 % of them: an article repeated across documents, a table row
    # repeated in an annex) is embedded once.
    same: dict[str, list[int]] = {}
    for i in need:
        same.setdefault(corpus.units[i], []).append(i)
    first = [rows[0] for rows in same.values()]
    say("embed", 0, len(first))
    # Longest first, so that each chunk holds units of about one length (the embedder pads a batch to its
    # longest unit; articles run from one line to the model's 512 tokens).
    first.sort(key=lambda i: -len(corpus.units[i]))
    for s in range(0, len(first), 64):
        idx = first[s: s + 64]
        got = embedder.embed([corpus.units[i] for i in idx], passage_prefix)
        for i, v in zip(idx, got, strict=True):
            vecs[same[corpus.units[i]]] = v
        say("embed", min(s + 64, len(first)), len(first))
    timings["embed"] = round(time.perf_counter() - t1, 2)

    t1 = time.perf_counter()
    name = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    vd = root / "versions"
    vd.mkdir(parents=True, exist_ok=True)
    tmp = vd / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    words = [w or [""] for w, _ in tokens]
    folded = [f or [""] for _, f in tokens]
    for side, corp in (("words", words), ("folded", folded)):
        bm = bm25s.BM25()
        bm.index(corp, show_progress=False)
        bm.save(str(tmp / f"bm25_{side}"))
    lexicon = {
        "n": len(tokens),
        "words": Counter(t for doc in words for t in set(doc)),
        "folded": Counter(t for doc in folded for t in set(doc) if "_" not in t),
    }
    (tmp / "lexicon.json").write_text(json.dumps(lexicon, ensure_ascii=False))
    np.save(tmp / "vectors.npy", vecs)
    (tmp / "unit_hashes.json").write_text(json.dumps(unit_hashes))
    with gzip.open(tmp / "tokens.json.gz", "wt", encoding="utf-8") as f:
        json.dump([[h, w, fo] for h, (w, fo) in zip(hashes, tokens, strict=True)], f, ensure_ascii=False)
    (tmp / "passages.json").write_text(json.dumps([p.to_json() for p in corpus.passages], ensure_ascii=False))
    (tmp / "documents.json").write_text(json.dumps(
        {d.number: _doc_json(d) for d in corpus.documents.values()}, ensure_ascii=False, default=str))
    (tmp / "warnings.json").write_text(json.dumps(corpus.warnings, ensure_ascii=False, indent=1))
    timings["write"] = round(time.perf_counter() - t1, 2)
    manifest = DocManifest(
        version=name, format=FORMAT, model=embedder.name, dim=embedder.dim, documents=len(corpus.documents),
        articles=corpus.articles, passages=len(corpus.passages), units=len(corpus.units),
        duplicates=corpus.duplicates, built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - t0, 2), reused_vectors=reused,
        reused_tokens=len(hashes) - len(todo), timings=timings,
    )
    (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
    final = vd / name
    os.replace(tmp, final)
    if publish_now:
        ptmp = root / f".CURRENT.{os.getpid()}.tmp"
        ptmp.write_text(name + "\n")
        os.replace(ptmp, root / "CURRENT")
    return manifest


def _topic_ids(knowledge_dir: Path) -> set[str] | None:

    path = knowledge_dir / "topics.yaml"
    if not path.exists():
        return None
    data = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(t["id"]) for t in data.get("topics") or []}


def _doc_json(d: Any) -> dict[str, Any]:
    return {"number": d.number, "type": d.type, "title": d.title, "issuer": d.issuer,
            "signed": d.signed.isoformat() if d.signed else None,
            "effective": d.effective.isoformat() if d.effective else None, "status": d.status,
            "superseded_by": d.superseded_by, "aliases": d.aliases, "file": d.file, "topics": d.topics}


@dataclass
class LoadedDocIndex:
    manifest: DocManifest
    path: Path
    passages: list[Passage]
    documents: dict[str, dict[str, Any]]
    vectors: np.ndarray
    unit_of: np.ndarray
    bm25_words: Any
    bm25_folded: Any
    df_words: dict[str, int]
    df_folded: dict[str, int]


def load_doc_index(index_root: Path, model: str | None = None, version: str | None = None) -> LoadedDocIndex:
    import bm25s

    root = docs_root(index_root)
    version = version or current_doc_version(root)
    if not version:
        raise DocIndexError(f"chưa có chỉ mục văn bản trong {root}: chạy `ldtbxh documents build` "
                            "(no documents index yet)")
    d = root / "versions" / version
    if not (d / "manifest.json").exists():
        raise DocIndexError(f"chỉ mục văn bản '{version}' thiếu manifest: dựng lại (rebuild the documents index)")
    m = DocManifest(**json.loads((d / "manifest.json").read_text()))
    if m.format != FORMAT:
        raise DocIndexError(f"định dạng chỉ mục văn bản {m.format} khác {FORMAT}: chạy `ldtbxh documents build`")
    if model is not None and m.model != model:
        raise DocIndexError(f"chỉ mục văn bản dựng bằng mô hình '{m.model}', cấu hình là '{model}': "
                            "chạy `ldtbxh documents build`")
    passages = [Passage(**p) for p in json.loads((d / "passages.json").read_text())]
    lex = json.loads((d / "lexicon.json").read_text())
    return LoadedDocIndex(
        manifest=m, path=d, passages=passages, documents=json.loads((d / "documents.json").read_text()),
        vectors=np.load(d / "vectors.npy"), unit_of=np.array([p.unit for p in passages], dtype=np.int64),
        bm25_words=bm25s.BM25.load(str(d / "bm25_words")), bm25_folded=bm25s.BM25.load(str(d / "bm25_folded")),
        df_words=lex["words"], df_folded=lex["folded"],
    )
