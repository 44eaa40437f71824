"""Build, publish, load and roll back index versions.

An index version is a directory ``<index_root>/versions/<name>/`` holding:

    manifest.json      knowledge digest, model, dimensions, counts, build time
    units.json         one row per indexed passage: entry id, field, prefix, content hash
    entries.json       the entries (answer text, details, topic, legal basis ...)
    vectors.npy        normalised vectors of the embedded passages (float32)
    dense_units.npy    which passage each vector row belongs to
    dense.faiss        FAISS index over the vectors (exact, or HNSW above ann_threshold)
    bm25_words/        BM25 over segmented words (stop-words removed)
    bm25_folded/       BM25 over accent-folded syllables and syllable bigrams
    lexicon.json       document frequencies of both lexical sides (for query coverage)
    topic_model.*      topic classifiers trained on the knowledge base (indexer/topic_model.py)
    oos.npy, oos.json  vectors and groups of the out-of-scope phrasings (other agencies, small talk)
    diacritics.json.gz the diacritic restorer, updated with the knowledge base's own text

It is written into a temporary directory and published by renaming it into place and then
atomically replacing the ``CURRENT`` pointer file, so a reader never sees half an index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.diacritics import DiacriticRestorer, knowledge_texts
from indexer.embed import Embedder
from indexer.knowledge import Entry, KnowledgeBase, load_knowledge
from indexer.text import Segmenter, TextPipeline
from indexer.topic_model import TopicModel

FORMAT_VERSION = 3
QUERY_LIKE_FIELDS = {"question", "paraphrase", "title", "keywords"}
DENSE_FIELDS = {"question", "paraphrase", "title", "summary"}
"""Passages that are embedded. Answers, keywords and a procedure's sections are lexical only:
they add little to the dense side and would dominate the build time."""
ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RESTORER = ROOT / "data" / "diacritics.json.gz"

Progress = Callable[[str, int, int], None]


class IndexError_(RuntimeError):
    """Base for index problems, with a message meant for an administrator."""


class KnowledgeInvalid(IndexError_):
    def __init__(self, errors: list[Any]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s) in the knowledge base; the index was not built")


class IndexMissing(IndexError_):
    pass


class IndexMismatch(IndexError_):
    pass


@dataclass
class Manifest:
    version: str
    format: int
    knowledge_digest: str
    model: str
    dim: int
    entries: int
    units: int
    built_at: str
    build_seconds: float
    segmented_for_model: bool
    ann: str
    vectors: int = 0
    reused_vectors: int = 0
    policy: str | None = None
    """sha256 (first 12 hex digits) of the answer policy (knowledge/policy.json) published with this version."""


@dataclass
class Unit:
    entry: str
    field: str
    prefix: str
    text: str
    hash: str
    words: list[str] | None = None
    folded: list[str] | None = None


def _unit_hash(model: str, prefix: str, text: str) -> str:
    return hashlib.sha256(f"{model}\0{prefix}\0{text}".encode()).hexdigest()[:32]


def _versions_dir(root: Path) -> Path:
    return root / "versions"


def version_path(root: Path, version: str) -> Path:
    """The folder of one index version."""
    return _versions_dir(root) / version


def current_version(root: Path) -> str | None:
    p = root / "CURRENT"
    return p.read_text().strip() or None if p.exists() else None


def list_versions(root: Path) -> list[Manifest]:
    out = []
    vd = _versions_dir(root)
    if vd.exists():
        for d in sorted(vd.iterdir()):
            mf = d / "manifest.json"
            if d.is_dir() and mf.exists():
                out.append(Manifest(**json.loads(mf.read_text())))
    return out


def version_entries(root: Path, version: str) -> dict[str, dict[str, Any]]:
    """The entries of one index version by id (empty when the version is missing)."""
    path = _versions_dir(root) / version / "entries.json"
    if not path.exists():
        return {}
    return {e["id"]: e for e in json.loads(path.read_text())["entries"]}


def publish(root: Path, version: str) -> None:
    """Point ``CURRENT`` at ``version`` atomically."""
    if not (_versions_dir(root) / version / "manifest.json").exists():
        raise IndexMissing(f"no index version '{version}' under {root}")
    tmp = root / f".CURRENT.{os.getpid()}.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / "CURRENT")


def rollback(root: Path) -> str:
    """Switch to the version built before the current one; returns its name."""
    versions = [m.version for m in list_versions(root)]
    cur = current_version(root)
    if cur not in versions or versions.index(cur) == 0:
        raise IndexMissing("there is no earlier index version to roll back to")
    prev = versions[versions.index(cur) - 1]
    publish(root, prev)
    return prev


def _previous_vectors(root: Path) -> dict[str, np.ndarray]:
    cur = current_version(root)
    if not cur:
        return {}
    d = _versions_dir(root) / cur
    try:
        units = json.loads((d / "units.json").read_text())
        vecs = np.load(d / "vectors.npy")
        rows = np.load(d / "dense_units.npy")
    except (OSError, ValueError):
        return {}
    return {units[u]["hash"]: vecs[i] for i, u in enumerate(rows) if u < len(units)}


def make_units(kb: KnowledgeBase, model: str, query_prefix: str, passage_prefix: str) -> list[Unit]:
    units = []
    for e in kb.entries:
        for field, text in e.passages:
            prefix = query_prefix if field in QUERY_LIKE_FIELDS else passage_prefix
            units.append(Unit(e.id, field, prefix, text, _unit_hash(model, prefix, text)))
    return units


def _entry_json(e: Entry) -> dict[str, Any]:
    d = asdict(e)
    d["valid_from"] = e.valid_from.isoformat()
    d.pop("passages")
    return d


def build_index(
    knowledge_dir: Path,
    root: Path,
    embedder: Embedder,
    *,
    query_prefix: str = "query: ",
    passage_prefix: str = "passage: ",
    segmented_for_model: bool = False,
    ann_threshold: int = 20000,
    segmenter: Segmenter | None = None,
    progress: Progress | None = None,
    publish_now: bool = True,
) -> Manifest:
    """Validate ``knowledge_dir``, build a new version under ``root`` and (by default) publish it."""
    import bm25s
    import faiss

    t0 = time.perf_counter()
    say = progress or (lambda stage, done, total: None)
    kb = load_knowledge(knowledge_dir)
    if kb.errors:
        raise KnowledgeInvalid(kb.errors)
    if not kb.entries:
        raise KnowledgeInvalid(["the knowledge base has no entries"])

    restorer = DiacriticRestorer.load(SHIPPED_RESTORER) if SHIPPED_RESTORER.exists() else \
        DiacriticRestorer.train([])
    restorer.update(knowledge_texts(knowledge_dir))
    pipe = TextPipeline.from_knowledge(knowledge_dir, restorer=None, segmenter=segmenter)
    pipe.warm_up()

    units = make_units(kb, embedder.name, query_prefix, passage_prefix)
    say("text", 0, len(units))
    words: list[list[str]] = []
    folded: list[list[str]] = []
    dense_texts: list[str] = []
    for i, u in enumerate(units):
        p = pipe.process_passage(u.text)
        words.append(p.words or [""])
        folded.append(p.folded or [""])
        u.words, u.folded = p.words, [t for t in p.folded if "_" not in t]
        dense_texts.append(p.dense_text(segmented_for_model))
        if i % 200 == 0:
            say("text", i, len(units))
    say("text", len(units), len(units))

    # Dense side: reuse vectors whose content hash did not change.
    embedder.warm_up()
    old = _previous_vectors(root)
    dense_rows = np.array([i for i, u in enumerate(units) if u.field in DENSE_FIELDS], dtype=np.int64)
    vecs = np.zeros((len(dense_rows), embedder.dim), dtype=np.float32)
    todo: dict[str, list[int]] = {}
    reused = 0
    for row, i in enumerate(dense_rows):
        u = units[i]
        v = old.get(u.hash)
        if v is not None and v.shape[0] == embedder.dim:
            vecs[row] = v
            reused += 1
        else:
            todo.setdefault(u.prefix, []).append(row)
    total = sum(len(v) for v in todo.values())
    done = 0
    say("embed", 0, total)
    for prefix, idxs in todo.items():
        # Longest first, so that each chunk holds texts of about one length: the embedder pads a batch to its
        # longest text, and unit order mixes one-line questions with 500-token answers.
        idxs.sort(key=lambda r: -len(dense_texts[dense_rows[r]]))
        for s in range(0, len(idxs), 64):
            chunk = idxs[s: s + 64]
            vecs[chunk] = embedder.embed([dense_texts[dense_rows[r]] for r in chunk], prefix)
            done += len(chunk)
            say("embed", done, total)

    # Out-of-scope phrasings (other agencies, small talk): embedded once, compared at query time.
    oos_meta = [{"group": g.id, "agency": g.agency, "text": t} for g in kb.out_of_scope for t in g.examples]
    oos_texts = [pipe.process_passage(str(m["text"])).dense_text(segmented_for_model) for m in oos_meta]
    oos_vecs = embedder.embed(oos_texts, query_prefix) if oos_texts else np.zeros((0, embedder.dim), np.float32)

    index: Any
    if len(dense_rows) > ann_threshold:
        index = faiss.IndexHNSWFlat(embedder.dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
        ann = "hnsw32"
    else:
        index = faiss.IndexFlatIP(embedder.dim)
        ann = "flat"
    index.add(vecs)

    say("topics", 0, 1)
    entry_topic = {e.id: e.topic for e in kb.entries}
    topic_model = TopicModel.fit(
        list(kb.topics), [(entry_topic[u.entry], u.text) for u in units], vecs,
        [entry_topic[units[i].entry] for i in dense_rows], [str(m["text"]) for m in oos_meta], oos_vecs)
    say("topics", 1, 1)

    # Names sort in build order (millisecond clock), so "the previous version" is well defined.
    name = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3] + "-" + kb.digest[:8]
    vd = _versions_dir(root)
    vd.mkdir(parents=True, exist_ok=True)
    tmp = vd / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    np.save(tmp / "vectors.npy", vecs)
    np.save(tmp / "dense_units.npy", dense_rows)
    np.save(tmp / "oos.npy", np.asarray(oos_vecs, dtype=np.float32))
    (tmp / "oos.json").write_text(json.dumps(oos_meta, ensure_ascii=False))
    faiss.write_index(index, str(tmp / "dense.faiss"))
    for side, corpus in (("words", words), ("folded", folded)):
        bm = bm25s.BM25()
        bm.index(corpus, show_progress=False)
        bm.save(str(tmp / f"bm25_{side}"))
    lexicon = {
        "n": len(units),
        "words": Counter(t for doc in words for t in set(doc)),
        "folded": Counter(t for doc in folded for t in set(doc)),
    }
    (tmp / "lexicon.json").write_text(json.dumps(lexicon, ensure_ascii=False))
    (tmp / "units.json").write_text(json.dumps([asdict(u) for u in units], ensure_ascii=False))
    (tmp / "entries.json").write_text(
        json.dumps({"topics": kb.topics, "entries": [_entry_json(e) for e in kb.entries]},
                   ensure_ascii=False, indent=0))
    restorer.save(tmp / "diacritics.json.gz")
    topic_model.save(tmp)
    policy_file = knowledge_dir / "policy.json"
    policy_digest = None
    if policy_file.exists():
        shutil.copyfile(policy_file, tmp / "policy.json")
        policy_digest = hashlib.sha256(policy_file.read_bytes()).hexdigest()[:12]
    # The calculators (and the chat abbreviations they read) travel with the version, like the policy: a
    # rollback rolls them back, and an edit of knowledge/calculators takes effect at the next build.
    if (knowledge_dir / "calculators").is_dir():
        shutil.copytree(knowledge_dir / "calculators", tmp / "calculators")
        if (knowledge_dir / "abbreviations.yaml").exists():
            shutil.copyfile(knowledge_dir / "abbreviations.yaml", tmp / "abbreviations.yaml")
    manifest = Manifest(
        version=name, format=FORMAT_VERSION, knowledge_digest=kb.digest, model=embedder.name,
        dim=embedder.dim, entries=len(kb.entries), units=len(units),
        built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - t0, 2), segmented_for_model=segmented_for_model,
        ann=ann, vectors=len(dense_rows), reused_vectors=reused, policy=policy_digest,
    )
    (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
    final = vd / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    if publish_now:
        publish(root, name)
    return manifest


@dataclass
class LoadedIndex:
    manifest: Manifest
    path: Path
    units: list[dict[str, Any]]
    entries: dict[str, dict[str, Any]]
    topics: dict[str, str]
    unit_entry: np.ndarray
    dense_units: np.ndarray
    vectors: np.ndarray
    dense: Any
    bm25_words: Any
    bm25_folded: Any
    df_words: dict[str, int]
    df_folded: dict[str, int]
    restorer: DiacriticRestorer
    oos_vectors: np.ndarray
    oos_meta: list[dict[str, Any]]
    topic_model: TopicModel


def load_index(root: Path, model: str | None = None, version: str | None = None) -> LoadedIndex:
    """Load the current (or the named) version; refuse one built with another model."""
    import bm25s
    import faiss

    version = version or current_version(root)
    if not version:
        raise IndexMissing(f"no index has been built yet under {root}: run `ldtbxh index build`")
    d = _versions_dir(root) / version
    mf = d / "manifest.json"
    if not mf.exists():
        raise IndexMissing(f"index version '{version}' is missing its manifest: rebuild the index")
    manifest = Manifest(**json.loads(mf.read_text()))
    if manifest.format != FORMAT_VERSION:
        raise IndexMismatch(f"index format {manifest.format} is not {FORMAT_VERSION}: run `ldtbxh index build`")
    if model is not None and manifest.model != model:
        raise IndexMismatch(
            f"the index was built with model '{manifest.model}' but '{model}' is configured: "
            "run `ldtbxh index build` (or set LDTBXH_EMBEDDING_MODEL / LDTBXH_EMBEDDING_BACKEND back)")
    units = json.loads((d / "units.json").read_text())
    ej = json.loads((d / "entries.json").read_text())
    entries = {e["id"]: e for e in ej["entries"]}
    order = {eid: i for i, eid in enumerate(entries)}
    lex = json.loads((d / "lexicon.json").read_text())
    dense = faiss.read_index(str(d / "dense.faiss"))
    if dense.d != manifest.dim:
        raise IndexMismatch("the vectors' dimension does not match the manifest: rebuild the index")
    return LoadedIndex(
        manifest=manifest, path=d, units=units, entries=entries, topics=ej["topics"],
        unit_entry=np.array([order[u["entry"]] for u in units], dtype=np.int64),
        dense_units=np.load(d / "dense_units.npy"), vectors=np.load(d / "vectors.npy"), dense=dense,
        bm25_words=bm25s.BM25.load(str(d / "bm25_words")),
        bm25_folded=bm25s.BM25.load(str(d / "bm25_folded")),
        df_words=lex["words"], df_folded=lex["folded"],
        restorer=DiacriticRestorer.load(d / "diacritics.json.gz"),
        oos_vectors=np.load(d / "oos.npy") if (d / "oos.npy").exists() else np.zeros((0, manifest.dim), np.float32),
        oos_meta=json.loads((d / "oos.json").read_text()) if (d / "oos.json").exists() else [],
        topic_model=TopicModel.load(d),
    )
