"""The embedder as served: concurrent questions embedded together, recent ones remembered."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from indexer.embed import Embedder


class _Pending:
    __slots__ = ("text", "prefix", "vector", "error", "done")

    def __init__(self, text: str, prefix: str) -> None:
        self.text = text
        self.prefix = prefix
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class BatchingEmbedder:
    """Wraps an embedder for the server (an :class:`indexer.embed.Embedder` itself).

    * Questions (calls of at most ``max_question_texts`` texts: a citizen's message is embedded as its
      body and its asking sentences) made while the model is busy wait and are embedded together in the
      next batch ("group commit": no added delay when the server is idle). One forward pass over 16 short
      texts costs far less than 16 passes, so throughput grows with load.
    * The vectors of recent texts are kept in a small LRU keyed on (prefix, text): the same question asked
      again skips the model (retrieval and the answer policy still run on the current index).
    * Larger calls (index builds) go straight to the wrapped embedder.
    """

    def __init__(self, inner: Embedder, *, max_batch: int = 32, cache_size: int = 4096,
                 max_question_texts: int = 4) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.dim: int = int(inner.dim)
        self.max_batch = max_batch
        self.cache_size = cache_size
        self.max_question_texts = max_question_texts
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches = 0
        self.hits = 0

    def warm_up(self) -> None:
        self.inner.warm_up()
        self.dim = int(self.inner.dim)

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts or len(texts) > self.max_question_texts:
            return np.asarray(self.inner.embed(texts, prefix), dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        mine: list[tuple[int, _Pending]] = []
        with self._cv:
            for i, text in enumerate(texts):
                hit = self._cache.get((prefix, text)) if self.cache_size else None
                if hit is not None:
                    self._cache.move_to_end((prefix, text))
                    self.hits += 1
                    out[i] = hit
                else:
                    p = _Pending(text, prefix)
                    mine.append((i, p))
                    self._queue.append(p)
        while True:
            with self._cv:
                while self._busy and not all(p.done for _, p in mine):
                    self._cv.wait()
                todo = [p for _, p in mine if not p.done]
                if not todo:
                    break
                # the model is free: embed what this call still needs, then whatever else is waiting
                taken = set(map(id, todo))
                others = [p for p in self._queue if id(p) not in taken]
                room = max(0, self.max_batch - len(todo))
                batch, self._queue = todo + others[:room], others[room:]
                self._busy = True
            self._run(batch)
        for i, p in mine:
            if p.error is not None:
                raise p.error
            assert p.vector is not None
            out[i] = p.vector
        return out

    def _run(self, batch: list[_Pending]) -> None:
        try:
            for prefix in dict.fromkeys(p.prefix for p in batch):
                group = [p for p in batch if p.prefix == prefix]
                try:
                    vecs = np.asarray(self.inner.embed([p.text for p in group], prefix), dtype=np.float32)
                    for p, v in zip(group, vecs, strict=True):
                        p.vector = v
                except BaseException as exc:
                    for p in group:
                        p.error = exc
        finally:
            with self._cv:
                for p in batch:
                    p.done = True
                    if p.vector is not None:
                        self._cache[(p.prefix, p.text)] = p.vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                self.batches += 1
                self._busy = False
                self._cv.notify_all()
