"""The unanswered-question queue grouped by embedding similarity, and the assistant's best candidates."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from bot.doc_search import vn_date
from bot.runtime import AssistantHolder
from bot.storage.requests import Requests, UnansweredItem

log = logging.getLogger(__name__)


@dataclass
class Group:
    items: list[UnansweredItem]
    vector: np.ndarray
    candidates: list[dict[str, Any]] = field(default_factory=list)
    rep: int = 0

    @property
    def key(self) -> str:
        return "-".join(str(i.id) for i in sorted(self.items, key=lambda x: x.id)[:1])

    @property
    def ids(self) -> list[int]:
        return sorted(i.id for i in self.items)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def citizens(self) -> int:
        return len({(i.channel, i.chat_id) for i in self.items})

    @property
    def channels(self) -> Counter[str]:
        return Counter(i.channel or "?" for i in self.items)

    @property
    def sources(self) -> Counter[str]:
        return Counter(i.source for i in self.items)

    @property
    def assignees(self) -> Counter[str]:
        """Who the questions of this group are assigned to (questions assigned to no one are not counted)."""
        return Counter(i.assigned_to for i in self.items if i.assigned_to)

    @property
    def first(self) -> datetime:
        return min(i.created_at for i in self.items)

    @property
    def last(self) -> datetime:
        return max(i.created_at for i in self.items)

    @property
    def representative(self) -> UnansweredItem:
        """The member closest to the group's centre."""
        return self.items[self.rep]

    def questions(self) -> list[str]:
        """Distinct wordings, most frequent first."""
        counts = Counter(i.question.strip() for i in self.items)
        seen: dict[str, str] = {}
        for q, _n in counts.most_common():
            seen.setdefault(q.casefold(), q)
        return list(seen.values())


class EmbeddingCache:
    """Vectors of unanswered questions, kept across page views (the queue is embedded once)."""

    def __init__(self, holder: AssistantHolder, max_items: int = 50000) -> None:
        self.holder = holder
        self.max_items = max_items
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        emb = self.holder.embedder
        keyed = [f"{emb.name}\0{prefix}\0{t}" for t in texts]
        with self._lock:
            missing = sorted({k for k in keyed if k not in self._cache})
        if missing:
            by_key = dict(zip(keyed, texts, strict=True))
            vecs = emb.embed([by_key[k] for k in missing], prefix)
            with self._lock:
                for k, v in zip(missing, vecs, strict=True):
                    self._cache[k] = np.asarray(v, dtype=np.float32)
                while len(self._cache) > self.max_items:
                    self._cache.popitem(last=False)
        with self._lock:
            out = [self._cache.get(k) for k in keyed]
        if any(v is None for v in out):  # evicted meanwhile (tiny cache): embed directly
            return np.asarray(emb.embed(texts, prefix), dtype=np.float32)
        return np.stack([v for v in out if v is not None]) if out else np.zeros((0, emb.dim), np.float32)


def group_items(items: list[UnansweredItem], vectors: np.ndarray, threshold: float) -> list[Group]:
    """Greedy grouping: each question joins the group whose centre is most similar (cosine ≥ threshold),
    else starts a new group. Groups come out largest first, then most recent."""
    groups: list[Group] = []
    sums: list[np.ndarray] = []
    centres = np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    for item, v in zip(items, vectors, strict=True):
        if len(groups):
            sims = centres @ v
            best = int(np.argmax(sims))
            if float(sims[best]) >= threshold:
                groups[best].items.append(item)
                sums[best] = sums[best] + v
                n = float(np.linalg.norm(sums[best])) or 1.0
                centres[best] = sums[best] / n
                continue
        groups.append(Group(items=[item], vector=v))
        sums.append(v.copy())
        centres = np.vstack([centres, v[None, :]])
    for g, centre in zip(groups, centres, strict=True):
        g.vector = centre
    # representative: the member closest to the centre
    index = {id(i): k for k, i in enumerate(items)}
    for g in groups:
        sims = [float(vectors[index[id(i)]] @ g.vector) for i in g.items]
        g.rep = int(np.argmax(sims))
    groups.sort(key=lambda g: (-g.count, -g.last.timestamp()))
    return groups


def build_groups(requests: Requests, cache: EmbeddingCache, query_prefix: str, threshold: float,
                 **filters: Any) -> list[Group]:
    """The queue in groups; questions an officer split out (same ``group_label``) are grouped apart."""
    items = requests.queue(**filters)
    if not items:
        return []
    vectors = cache.embed([i.text for i in items], query_prefix)
    pools: dict[str | None, list[int]] = {}
    for k, item in enumerate(items):
        pools.setdefault(item.group_label, []).append(k)
    groups: list[Group] = []
    for members in pools.values():
        groups += group_items([items[k] for k in members], vectors[members], threshold)
    groups.sort(key=lambda g: (-g.count, -g.last.timestamp()))
    return groups


_CANDIDATES: OrderedDict[tuple[str | None, str, int], list[dict[str, Any]]] = OrderedDict()
_CANDIDATES_LOCK = threading.Lock()


def candidates_for(holder: AssistantHolder, text: str, k: int = 3) -> list[dict[str, Any]]:
    """The topics the assistant finds most likely for ``text`` now, each with its best entry (title,
    topic, probability); cached per index version."""
    key = (holder.version, text, k)
    with _CANDIDATES_LOCK:
        hit = _CANDIDATES.get(key)
    if hit is not None and holder.version is not None:
        return hit
    try:
        a = holder.current
        likely = a.likely_topics(text, k)
    except Exception:  # no index loaded yet, or the model failed: the queue is still usable without them
        log.warning("could not compute the candidates of an unanswered question", exc_info=True)
        return []
    out = []
    for topic, probability, entry_id in likely:
        e = a.entry(entry_id) or {}
        out.append({"entry_id": entry_id, "topic": topic, "title": e.get("title", entry_id),
                    "score": round(probability, 3)})
    with _CANDIDATES_LOCK:
        _CANDIDATES[(a.retriever.index.manifest.version, text, k)] = out
        while len(_CANDIDATES) > 5000:
            _CANDIDATES.popitem(last=False)
    return out


CITED_RE = re.compile(r"\n\nCăn cứ: (?P<basis>[^\n]+?)(?: \(áp dụng từ (?P<d>\d{2})/(?P<m>\d{2})/(?P<y>\d{4})\))?\.\s*$")
"""The last line of an answer pre-filled from a quoted clause (:func:`document_suggestion`)."""


def cited_basis(answer: str) -> tuple[str, str] | None:
    """(legal basis, ISO date or "") from the last line of an answer :func:`document_suggestion` pre-filled,
    or None: an approval form starts from them."""
    m = CITED_RE.search(answer or "")
    if m is None:
        return None
    return m["basis"], f"{m['y']}-{m['m']}-{m['d']}" if m["y"] else ""


def document_suggestion(holder: AssistantHolder, text: str) -> dict[str, Any] | None:
    """For a question answered from the legal texts: the clause the assistant quotes for it now, and an answer
    an officer can send and turn into a curated entry as it stands: the clause, then its citation and the
    date it holds from. No suggested answer for a clause that is no longer current (its amounts are not)."""
    try:
        hit = holder.current.quoted_clause(text)
    except Exception:  # no index loaded yet, or the model failed: the queue is still usable without it
        log.warning("could not find the clause quoted for an unanswered question", exc_info=True)
        return None
    if hit is None:
        return None
    since = vn_date(hit.effective) if hit.effective else ""
    answer = None
    if not hit.superseded and not hit.older_than_curated:
        answer = f"Theo quy định: {hit.text}\n\nCăn cứ: {hit.citation}" + (f" (áp dụng từ {since})." if since else ".")
    return {"citation": hit.citation, "text": hit.text, "since": since, "topic": hit.topic, "answer": answer}
