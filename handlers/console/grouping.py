"""The unanswered-question queue: rows with their channel, and greedy grouping by embedding similarity."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select

from bot.models import ChatIdentity, RequestLog, Unanswered
from bot.runtime import AssistantHolder
from bot.store import Store


@dataclass
class Item:
    id: int
    question: str
    normalized: str | None
    status: str
    created_at: datetime
    channel: str | None
    chat_id: str | None
    source: str
    """fallback (the assistant declined) or feedback ("chưa hữu ích" on an answer / choice)"""
    officer_reply: str | None
    handled_by: str | None
    entry_id: str | None
    answered_entry: str | None
    """The entry the assistant had answered with (feedback rows)."""

    @property
    def text(self) -> str:
        return (self.normalized or self.question).strip()


@dataclass
class Group:
    items: list[Item]
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
    def first(self) -> datetime:
        return min(i.created_at for i in self.items)

    @property
    def last(self) -> datetime:
        return max(i.created_at for i in self.items)

    @property
    def representative(self) -> Item:
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


def load_items(store: Store, *, status: str | None = "new", channel: str | None = None,
               source: str | None = None, since: datetime | None = None, until: datetime | None = None,
               search: str | None = None, ids: list[int] | None = None, limit: int = 2000) -> list[Item]:
    q = (
        select(Unanswered, ChatIdentity.channel, ChatIdentity.external_id, RequestLog.kind, RequestLog.entry_id)
        .outerjoin(ChatIdentity, ChatIdentity.id == Unanswered.identity_id)
        .outerjoin(RequestLog, RequestLog.id == Unanswered.request_id)
        .order_by(Unanswered.created_at.desc(), Unanswered.id.desc())
        .limit(limit)
    )
    if status:
        q = q.where(Unanswered.status == status)
    if channel:
        q = q.where(ChatIdentity.channel == channel)
    if since is not None:
        q = q.where(Unanswered.created_at >= since)
    if until is not None:
        q = q.where(Unanswered.created_at < until)
    if ids is not None:
        q = q.where(Unanswered.id.in_(ids))
    if search:
        like = f"%{search.strip().lower()}%"
        q = q.where(Unanswered.question.ilike(like) | Unanswered.normalized.ilike(like))
    out = []
    with store.session() as s:
        for u, ch, ext, kind, answered_entry in s.execute(q):
            src = "fallback" if kind in (None, "fallback") else "feedback"
            if source and src != source:
                continue
            out.append(Item(id=u.id, question=u.question, normalized=u.normalized, status=u.status,
                            created_at=u.created_at, channel=ch, chat_id=ext, source=src,
                            officer_reply=u.officer_reply, handled_by=u.handled_by, entry_id=u.entry_id,
                            answered_entry=answered_entry if src == "feedback" else None))
    return out


def group_items(items: list[Item], vectors: np.ndarray, threshold: float) -> list[Group]:
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


def build_groups(store: Store, cache: EmbeddingCache, query_prefix: str, threshold: float,
                 **filters: Any) -> list[Group]:
    items = load_items(store, **filters)
    if not items:
        return []
    vectors = cache.embed([i.text for i in items], query_prefix)
    return group_items(items, vectors, threshold)


_CANDIDATES: OrderedDict[tuple[str | None, str, int], list[dict[str, Any]]] = OrderedDict()
_CANDIDATES_LOCK = threading.Lock()


def candidates_for(holder: AssistantHolder, text: str, k: int = 3) -> list[dict[str, Any]]:
    """The best entries the assistant has for ``text`` now (title, topic, fused score); cached per
    index version."""
    key = (holder.version, text, k)
    with _CANDIDATES_LOCK:
        hit = _CANDIDATES.get(key)
    if hit is not None and holder.version is not None:
        return hit
    try:
        a = holder.current
        result = a.retriever.search(text)
    except Exception:
        return []
    out = []
    for cand in result.candidates[:k]:
        e = a.entry(cand.entry_id) or {}
        out.append({"entry_id": cand.entry_id, "topic": cand.topic, "title": e.get("title", cand.entry_id),
                    "score": round(cand.score, 3), "dense": round(cand.dense, 3)})
    with _CANDIDATES_LOCK:
        _CANDIDATES[(a.retriever.index.manifest.version, text, k)] = out
        while len(_CANDIDATES) > 5000:
            _CANDIDATES.popitem(last=False)
    return out
